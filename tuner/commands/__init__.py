"""One module per command of the CLI, the top layer below ``tuner.cli``.

- ``tune``: ``tuner tune NAME``: which study a worker runs, and in which role.
- ``worker``: load or create the study, run trials until the budget is spent.
- ``verify`` (a package, one module per job): re-train the top trials with fresh seeds;
  the export's choice, the dashboard note and the report's section that follow.
- ``export``: best trial -> YAML; ``tuner train`` retrains it.
- ``report``: the HTML report and PNGs.
- ``status``: counts per state, best trial, running trials.
- ``dashboard``: optuna-dashboard over the tuner's storage.
- ``play``: a person plays a saved agent in the terminal.
"""
