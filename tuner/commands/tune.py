"""``tuner tune NAME``: which study a worker runs, and in which role.

A study file's name is tuned: the worker samples and trains new trials until the
study's budget is spent (:data:`~tuner.commands.worker.TUNING`); a study file with
a ``pbt`` block trains a population in units instead (:func:`population_role`). A
companion's name, ``NAME:verify``, runs the jobs ``tuner verify NAME`` queued, in the
role :data:`~tuner.commands.verify.jobs.VERIFYING`. This is the one place that tells
them apart; the worker then asks only its role.
"""

from __future__ import annotations

from tuner.base.settings import Settings
from tuner.commands.verify.companion import base_name
from tuner.commands.verify.jobs import VERIFYING, companion_worker_spec
from tuner.commands.worker import TUNING, WorkerRole
from tuner.config.loading import load_spec
from tuner.config.spec import StudySpec


def study_to_run(name: str, url: str, settings: Settings) -> tuple[StudySpec, WorkerRole]:
    """The spec and the role of a worker on ``name`` (a study file, or ``STUDY:verify``).

    ``url`` is the resolved storage URL (``Settings.storage_url_for``).
    """
    if base_name(name) is not None:
        return companion_worker_spec(name, url, settings.storage), VERIFYING
    spec = load_spec(name, settings.studies_dir)
    return spec, population_role(spec) if spec.pbt is not None else TUNING


def population_role(spec: StudySpec) -> WorkerRole:
    """A worker of a population-based study: it runs the units the planner queues under
    the claim lock (``tuner.pbt.units``), and updates the dashboard note at each interval."""
    from tuner.pbt.summary import save_note
    from tuner.pbt.units import Planner, run_unit

    return WorkerRole(
        queue_only=True, objective_fn=run_unit, planner=Planner(spec, on_generation=save_note)
    )
