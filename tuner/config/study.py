"""Spec -> the Optuna study: create or load it, with this worker's sampler and pruner.

Samplers and pruners are not stored in the database: every worker rebuilds them
from the study file (:mod:`tuner.config.samplers`), each worker with its own sampler seed
(with one seed, all workers would propose the same first trials).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import optuna

from tuner.base.errors import UserError
from tuner.config.loading import stored_spec, stored_spec_data
from tuner.config.samplers import build_pruner, build_sampler
from tuner.config.spec import StudySpec
from tuner.storage.record import StudyAttr, TrialAttr


def worker_seed(spec: StudySpec, worker_index: int | None) -> int:
    """Deterministic per worker index; drawn at random when there is none (scaled replicas)."""
    if worker_index is None:
        return int.from_bytes(os.urandom(4), "little")
    return (spec.seed + 7919 * (worker_index + 1)) % 2**32


def spec_changes(old: Any, new: Any, where: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two JSON-like specs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{where}.{key}" if where else str(key)
            if key not in new:
                out.append(f"{path}: {_short(old[key])} -> (removed)")
            elif key not in old:
                out.append(f"{path}: (absent) -> {_short(new[key])}")
            else:
                out.extend(spec_changes(old[key], new[key], path))
        return out
    return [] if old == new else [f"{where}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _stored_spec(study: optuna.Study) -> dict[str, Any] | None:
    """The spec recorded at creation, with the defaults of today's schema filled in, so
    that a field added to the schema since is not taken for a change of the file."""
    stored = stored_spec_data(study)
    if not stored:
        return None
    try:
        spec = stored_spec(study)
    except UserError:
        return stored  # compared as it is; the differences are named
    return spec.model_dump(mode="json") if spec is not None else stored


def _check_drift(study: optuna.Study, spec: StudySpec, accept_changes: bool) -> None:
    """Compare the file with the spec stored at creation: go on, record, or refuse."""
    stored = _stored_spec(study)
    new = spec.model_dump(mode="json")
    if stored is None:
        study.set_user_attr(StudyAttr.SPEC, new)
        study.set_user_attr(StudyAttr.N_TRIALS, spec.n_trials)
        return
    changes = spec_changes(stored, new)
    if not changes:
        return
    compatible = [
        c
        for c in changes
        if c.split(":")[0] == "description"
        or (c.split(":")[0] == "n_trials" and spec.n_trials > stored.get("n_trials", 0))
    ]
    others = [c for c in changes if c not in compatible]
    # A file whose every trial failed on a configuration error never built a model:
    # fixing it changes nothing that ran, so the fix goes on (and is recorded).
    trials = study.get_trials(deepcopy=False)
    never_built = bool(trials) and all(t.user_attrs.get(TrialAttr.CONFIG_ERROR) for t in trials)
    needs_flag = bool(others) and not never_built
    if needs_flag and not accept_changes:
        shown = "; ".join(others[:5]) + (f"; and {len(others) - 5} more" if len(others) > 5 else "")
        raise UserError(
            f"study {spec.study_name!r} was created from a different study file ({shown}): "
            "its trials would mix two configurations. Use a new study_name, restore the "
            "file, or pass --accept-changes to record the change and go on"
        )
    history = list(study.user_attrs.get(StudyAttr.SPEC_CHANGES, []))
    history.append(
        {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "changes": changes,
            "accepted_by_flag": needs_flag,
        }
    )
    study.set_user_attr(StudyAttr.SPEC_CHANGES, history)
    study.set_user_attr(StudyAttr.SPEC, new)
    study.set_user_attr(StudyAttr.N_TRIALS, spec.n_trials)


def create_study(
    spec: StudySpec, storage: optuna.storages.BaseStorage, *, accept_changes: bool = False
) -> optuna.Study:
    """Create the study if it is missing (idempotent); record the spec on it.

    An existing study's stored spec is compared with the file (see ``_check_drift``).
    Looks before it inserts: ``create_study(load_if_exists=True)`` on an existing study
    lets the INSERT fail first, and PostgreSQL logs a unique-violation ERROR for it at
    every ``tuner create`` and worker start (compose reruns ``create-study`` on each `up`).
    """
    with signals_deferred():  # a study is never left without its recorded spec
        try:
            study = optuna.load_study(study_name=spec.study_name, storage=storage)
        except KeyError:
            study = optuna.create_study(  # load_if_exists: another worker may create it meanwhile
                study_name=spec.study_name,
                storage=storage,
                direction=spec.direction,
                load_if_exists=True,
            )
        if study.direction.name.lower() != spec.direction:
            raise UserError(
                f"study {spec.study_name!r} exists with direction "
                f"{study.direction.name.lower()}, but the study file says {spec.direction}; "
                "rename the study or fix the file"
            )
        _check_drift(study, spec, accept_changes)
        _name_the_metric(study, spec)
    return study


def metric_name(spec: StudySpec) -> str:
    """What the study's value is, for optuna-dashboard's axes and best-trial card."""
    names = {"rating": "rating (Elo)", "perfect": "minus regret (seeds per move)"}
    return names.get(spec.evaluation.objective, "score")


def _name_the_metric(study: optuna.Study, spec: StudySpec) -> None:
    """Name the objective once (studies created before this are named on their next load),
    so that the dashboard says "rating (Elo)" instead of "Objective 0"."""
    if study.metric_names == [metric_name(spec)]:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            study.set_metric_names([metric_name(spec)])
        except optuna.exceptions.StorageInternalError:
            # Two workers starting at once: the other one's insert won. Same name.
            if study.metric_names != [metric_name(spec)]:
                raise


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done; they are delivered after it.

    For the few storage writes that belong together (a new study and its spec): a
    Ctrl-C between them left a study that later commands could not check.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals
        return
    pending: list[int] = []
    # A handler that notes the signal, not a blocked mask: the kernel would hand a
    # blocked signal to another thread (torch's, SQLAlchemy's), and Python runs its
    # handler in the main thread at once.
    previous = {
        s: signal.signal(s, lambda signum, _frame: pending.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in pending:
            signal.raise_signal(signum)  # now, to the handler that was there before


def load_study(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    seed: int,
    *,
    accept_changes: bool = False,
) -> optuna.Study:
    """Create or load the study with this worker's sampler and pruner."""
    create_study(spec, storage, accept_changes=accept_changes)
    return optuna.load_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=build_sampler(spec, seed),
        pruner=build_pruner(spec),
    )
