"""Running verify jobs: ``tuner tune STUDY:verify`` workers, and the one job's objective.

A verify worker is the study's own loop (the claim under the lock, heartbeats, a
killed worker's job failed and re-queued with the same seed) in the role
:data:`VERIFYING`: queued jobs only, each trained with the seed it was queued with,
and the verification table at the end.
"""

from __future__ import annotations

from typing import Any

import optuna

from tuner.base.errors import UserError
from tuner.base.settings import StorageSettings
from tuner.commands.verify.companion import base_name, companion_spec, study_spec
from tuner.commands.verify.dashboard_note import conclude
from tuner.commands.worker import WorkerRole
from tuner.config.spec import StudySpec
from tuner.storage.optuna_compat import trial_id
from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.trial.objective import TrialFailed, objective


def verify_objective(trial: optuna.Trial, spec: StudySpec, **kwargs: Any) -> float:
    """One verify job: the study's own objective, with the seed the job was queued with."""
    attrs = trial.storage.get_trial_system_attrs(trial_id(trial))
    if TrialSystemAttr.VERIFY_SEED not in attrs:
        raise TrialFailed("not a verify job (no verify_seed): queue jobs with `tuner verify`")
    # User attrs are not copied to a retry: set them again from the system attrs.
    seed = attrs[TrialSystemAttr.VERIFY_SEED]
    trial.set_user_attr(TrialAttr.VERIFY_OF, attrs[TrialSystemAttr.VERIFY_OF])
    trial.set_user_attr(TrialAttr.VERIFY_SEED, seed)
    return objective(trial, spec, seed=int(seed), **kwargs)


# What makes a worker a verify worker: queued jobs, their seeds, the table at the end.
VERIFYING = WorkerRole(queue_only=True, objective_fn=verify_objective, conclude=conclude)


def companion_worker_spec(
    name: str, url: str, settings: StorageSettings | None = None
) -> StudySpec:
    """``tuner tune STUDY:verify``: the companion spec, once its jobs are known to exist.

    ``url`` is the resolved storage URL (``Settings.storage_url_for``).
    """
    from tuner.storage.rdb import describe, make_storage, require_existing, study_names

    base = base_name(name)
    if base is None:
        raise ValueError(f"expected the name of a verify companion study, but got {name!r}")
    require_existing(url)
    storage = make_storage(url, settings)
    names = study_names(storage)
    if base not in names:
        raise UserError(
            f"no study named {base!r} in {describe(url)} to verify; "
            f"expected one of {[n for n in names if base_name(n) is None]}"
        )
    if name not in names:
        raise UserError(
            f"no verify jobs for study {base!r} in {describe(url)}; "
            f"queue them first with `tuner verify {base} --top K --fresh-seeds S`"
        )
    return companion_spec(study_spec(optuna.load_study(study_name=base, storage=storage)))
