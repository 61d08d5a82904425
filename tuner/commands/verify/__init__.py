"""``tuner verify``: re-train the K best configurations with S fresh seeds each.

Why: a study ranks its trials by one training run each, and one RL run is a noisy
draw. The best trial is therefore partly the luckiest one (the winner's curse),
and exporting it as "the best configuration" promises more than was measured.

How: ``tuner verify STUDY --top K --fresh-seeds S`` queues K x S jobs as WAITING trials of
the companion study ``STUDY:verify`` in the same storage. Any number of ``tuner tune
STUDY:verify`` workers run them with the study's own loop (the claim under the
lock, heartbeats, a killed worker's job failed and re-queued with the same seed);
they run queued jobs only and never sample new ones. The score of a job is the
trial's objective value, whatever the study's objective is; the same seed index
gives the same seed to every configuration, so their comparison is paired.

One module per job (importing this package imports none of them):

- ``companion``: the companion study: its name, its spec, what a job carries.
- ``queue``: ``tuner verify``: a job per (top configuration, fresh seed), each queued once.
- ``jobs``: running a job: the study's objective with the job's seed; the worker's role.
- ``statistics``: one configuration over its seeds (mean, interval), the rankings compared.
- ``summary``: the companion's jobs -> the verification; its table as text.
- ``export_choice``: which trial ``tuner export`` takes: the verified best, else the best trial.
- ``dashboard_note``: the table as the companion study's note in optuna-dashboard.
- ``report_section``: the verification's section of the study's HTML report.
"""
