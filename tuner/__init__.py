"""The tuning service: Optuna studies of MaskablePPO agents for Kalah.

The packages are layers, each importing only those below it (``make lint`` checks
it with import-linter):

- ``tuner.cli``: the command line, thin: parse, call a command, print, exit.
- ``tuner.commands``: one module per command (tune's worker loop, verify, export and
  train, report, status, dashboard, play).
- ``tuner.trial``: one trial's life (claim, heartbeat, record) and its training
  (objective, MaskablePPO, SB3 callbacks, progress).
- ``tuner.config``: the study file and what it builds (spec, search space, the
  Optuna study, sampler and pruner).
- ``tuner.strength``: measuring an agent (scores, the rating, the ladder, the league).
- ``tuner.storage``: Optuna storage (URL -> storage, retries, artifacts, the record's
  keys, every private Optuna access).
- ``tuner.base``: what every layer may use (the user error, settings, the runs folder).

``tuner.policies`` stays where it is: models pickled before 2025 name it.
"""
