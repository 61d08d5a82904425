"""Population-based training on Optuna: a population trained in units, exploited and explored.

- :mod:`tuner.pbt.scheduler`: exploit/explore decisions, pure (truncation selection,
  perturbation, resampling, the noise test).
- :mod:`tuner.pbt.population`: a PBT study's trials read as members and intervals.
- :mod:`tuner.pbt.checkpoint`: a member's weights, optimizer state and self-play pool,
  through Optuna's artifact store.
- :mod:`tuner.pbt.units`: the planner that queues units under the claim lock, and the
  objective that runs one.
- :mod:`tuner.pbt.replay`: the best member's schedule, exported and replayed by
  ``tuner train``.
- :mod:`tuner.pbt.summary`: what status, report, export and the dashboard show of a
  population; :mod:`tuner.pbt.figure`: the report's population figure.
"""
