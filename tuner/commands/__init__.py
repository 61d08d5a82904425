"""One module per command of the CLI, the top layer below ``tuner.cli``.

- ``worker``: ``tuner tune``: load or create the study, run trials until the budget is spent.
- ``verify`` and ``verify_report``: re-train the top trials with fresh seeds; the report's section.
- ``export``: best trial -> YAML; ``tuner train`` retrains it.
- ``report``: the HTML report and PNGs.
- ``status``: counts per state, best trial, running trials.
- ``dashboard``: optuna-dashboard over the tuner's storage.
- ``play``: a person plays a saved agent in the terminal.
"""
