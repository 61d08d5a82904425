"""``tuner tune NAME``: which study a worker runs, and in which role.

A study file's name is tuned: the worker samples and trains new trials until the
study's budget is spent (:data:`~tuner.commands.worker.TUNING`). A companion's
name, ``NAME:verify``, runs the jobs ``tuner verify NAME`` queued, in the role
:data:`~tuner.commands.verify.jobs.VERIFYING`. This is the one place that tells
the two apart; the worker then asks only its role.
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
    return load_spec(name, settings.studies_dir), TUNING
