"""The study file and what it builds.

- ``spec``: the pydantic models of a study file (a leaf: no env, torch or optuna).
- ``renamed``: keys renamed so that one word has one meaning (old -> new).
- ``checks``: the checks of a file that touch the world (MaskablePPO's signature,
  opponent policy files, the reference ladder).
- ``loading``: study YAML -> validated spec; a study's name (one key); the spec
  stored on a study.
- ``space``: spec + trial -> sampled values -> MaskablePPO keyword arguments and the
  game options (``env.options.GameOptions``).
- ``samplers``: spec -> Optuna sampler and pruner.
- ``study``: spec -> the Optuna study, created or loaded.
"""
