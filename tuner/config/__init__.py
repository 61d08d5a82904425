"""The study file and what it builds.

- ``spec``: study YAML -> validated spec (pydantic models).
- ``space``: spec + trial -> sampled values -> MaskablePPO keyword arguments.
- ``samplers``: spec -> Optuna sampler and pruner.
- ``study``: spec -> the Optuna study, created or loaded.
"""
