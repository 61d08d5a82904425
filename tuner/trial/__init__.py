"""One trial: its life in a shared study and its training.

- ``lifecycle``: claim, record, fail and retry trials; adopt late results.
- ``heartbeat``: the heartbeat thread.
- ``objective``: sample, build, learn with evaluations, record.
- ``training``: envs and MaskablePPO from a config; ``train``.
- ``callbacks``: the SB3 callbacks (evaluate, prune, stop on a signal).
- ``progress``: the progress bar and the line per finished trial.
"""
