"""Optuna storage and what the tuner keeps in it.

- ``rdb``: storage URL -> Optuna storage, with heartbeats, retries and pool settings.
- ``retry``: which database errors are retried, and the one retry policy.
- ``optuna_compat``: every use of Optuna's private API, each pinned by a test.
- ``artifacts``: a trial's model in the artifact store.
- ``record``: the names of the study's and trials' attrs.

Importing this package imports none of its modules: ``make compat-latest`` runs the
compat tests in a venv without torch.
"""
