"""Every use of Optuna's private API, in one place, each pinned by a test.

Optuna has moved its internals before (``storages/rdb`` -> ``storages/_rdb``,
``cached_storage`` -> ``_cached_storage``) and ``optuna>=5,<6`` lets a minor
release do it again. The tuner touches them only through this module, and
``tests/tuner_tests/test_optuna_compat.py`` names the Optuna behaviour each
access relies on; CI runs those tests against the newest Optuna 5.x as well
(``make compat-latest``). The private modules are imported when first used, so a
moved path breaks the one feature that needs it, with a message saying so,
rather than every command at import.

This module imports nothing from the tuner (and not torch), so that its tests
run in a bare environment with only Optuna and SQLAlchemy installed.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.study import Study
from optuna.trial import FrozenTrial, Trial, TrialState

if TYPE_CHECKING:  # what get_all_studies returns; Optuna exports it from no public module
    from optuna.study._frozen import FrozenStudy

T = TypeVar("T")


class OptunaInternalsChanged(RuntimeError):
    """This Optuna release moved or renamed an internal the tuner relies on."""


def _private(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise OptunaInternalsChanged(
            f"Optuna {optuna.__version__} has no module {module!r}, which kalaha-tuner's "
            "tuner/storage/optuna_compat.py relies on; pin the Optuna version that the tests "
            f"pass with, or update optuna_compat ({err})"
        ) from None


def _models() -> ModuleType:
    """``optuna.storages._rdb.models``: the SQLAlchemy tables of an RDB storage."""
    return _private("optuna.storages._rdb.models")


def _scoped_session(storage: RDBStorage) -> Any:
    """``_create_scoped_session``: a session that commits on success and rolls back on error,
    wrapping SQLAlchemy errors in ``StorageInternalError`` as Optuna's own calls do."""
    create = _private("optuna.storages._rdb.storage")._create_scoped_session
    return create(storage.scoped_session)


# --- ids and the storage behind a study --------------------------------------------------


def study_id(study: Study | FrozenStudy) -> int:
    """The storage's id of a study (``Study._study_id``, ``FrozenStudy._study_id``)."""
    return study._study_id


def trial_id(trial: Trial | FrozenTrial) -> int:
    """The storage's id of a trial (``Trial._trial_id``, ``FrozenTrial._trial_id``)."""
    return trial._trial_id


def storage_of(study: Study) -> BaseStorage:
    """The storage a study reads and writes through (``Study._storage``: for an RDB
    storage, Optuna's ``_CachedStorage`` around it)."""
    return study._storage


def backend_of(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's ``_CachedStorage`` (its ``_backend``); others as they are."""
    return getattr(storage, "_backend", storage)


# --- an RDB storage whose every database call goes through one method ----------------------


@dataclass(frozen=True)
class RunningHeartbeats:
    """Each RUNNING trial's last heartbeat (None: none yet), and the server's clock."""

    now: dt.datetime
    last: dict[int, dt.datetime | None]


# Backend methods that touch no database, or whose caller retries on its own (a
# heartbeat thread tries again at its next beat): not routed through ``_call``.
NOT_ROUTED = ("get_heartbeat_interval", "get_heartbeat_stale_trial_callback", "record_heartbeat")


class RoutedRDBStorage(RDBStorage):
    """``RDBStorage`` whose database calls all go through :meth:`_call`, written out.

    A subclass decides what a call does around it (``tuner.storage.rdb`` retries it).
    Every method is spelled out in this class body, rather than generated or
    patched on afterwards, so that the list is readable and a type checker sees
    it. It includes the private methods that Optuna's ``_CachedStorage`` (which
    wraps every RDB storage a ``Study`` uses) calls on its backend instead of the
    public ones; a test compares the list with what ``_CachedStorage`` calls.
    """

    def _call(self, name: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run one storage call; the place for a subclass to retry it."""
        return fn(*args, **kwargs)

    # The public BaseStorage API.
    def create_new_study(self, *args: Any, **kwargs: Any) -> int:
        return self._call("create_new_study", super().create_new_study, *args, **kwargs)

    def delete_study(self, *args: Any, **kwargs: Any) -> None:
        return self._call("delete_study", super().delete_study, *args, **kwargs)

    def set_study_user_attr(self, *args: Any, **kwargs: Any) -> None:
        return self._call("set_study_user_attr", super().set_study_user_attr, *args, **kwargs)

    def set_study_system_attr(self, *args: Any, **kwargs: Any) -> None:
        return self._call("set_study_system_attr", super().set_study_system_attr, *args, **kwargs)

    def get_study_id_from_name(self, *args: Any, **kwargs: Any) -> int:
        return self._call("get_study_id_from_name", super().get_study_id_from_name, *args, **kwargs)

    def get_study_name_from_id(self, *args: Any, **kwargs: Any) -> str:
        return self._call("get_study_name_from_id", super().get_study_name_from_id, *args, **kwargs)

    def get_study_directions(self, *args: Any, **kwargs: Any) -> list[Any]:
        return self._call("get_study_directions", super().get_study_directions, *args, **kwargs)

    def get_study_user_attrs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_study_user_attrs", super().get_study_user_attrs, *args, **kwargs)

    def get_study_system_attrs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_study_system_attrs", super().get_study_system_attrs, *args, **kwargs)

    def get_trial_user_attrs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_trial_user_attrs", super().get_trial_user_attrs, *args, **kwargs)

    def get_trial_system_attrs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_trial_system_attrs", super().get_trial_system_attrs, *args, **kwargs)

    def get_all_studies(self, *args: Any, **kwargs: Any) -> list[FrozenStudy]:
        return self._call("get_all_studies", super().get_all_studies, *args, **kwargs)

    def create_new_trial(self, *args: Any, **kwargs: Any) -> int:
        return self._call("create_new_trial", super().create_new_trial, *args, **kwargs)

    def set_trial_param(self, *args: Any, **kwargs: Any) -> None:
        return self._call("set_trial_param", super().set_trial_param, *args, **kwargs)

    def get_trial_param(self, *args: Any, **kwargs: Any) -> float:
        return self._call("get_trial_param", super().get_trial_param, *args, **kwargs)

    def set_trial_state_values(self, *args: Any, **kwargs: Any) -> bool:
        return self._call("set_trial_state_values", super().set_trial_state_values, *args, **kwargs)

    def set_trial_intermediate_value(self, *args: Any, **kwargs: Any) -> None:
        fn = super().set_trial_intermediate_value
        return self._call("set_trial_intermediate_value", fn, *args, **kwargs)

    def set_trial_user_attr(self, *args: Any, **kwargs: Any) -> None:
        return self._call("set_trial_user_attr", super().set_trial_user_attr, *args, **kwargs)

    def set_trial_system_attr(self, *args: Any, **kwargs: Any) -> None:
        return self._call("set_trial_system_attr", super().set_trial_system_attr, *args, **kwargs)

    def get_trial_id_from_study_id_trial_number(self, *args: Any, **kwargs: Any) -> int:
        fn = super().get_trial_id_from_study_id_trial_number
        return self._call("get_trial_id_from_study_id_trial_number", fn, *args, **kwargs)

    def get_trial(self, *args: Any, **kwargs: Any) -> FrozenTrial:
        return self._call("get_trial", super().get_trial, *args, **kwargs)

    def get_all_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        return self._call("get_all_trials", super().get_all_trials, *args, **kwargs)

    def get_n_trials(self, *args: Any, **kwargs: Any) -> int:
        return self._call("get_n_trials", super().get_n_trials, *args, **kwargs)

    def get_best_trial(self, *args: Any, **kwargs: Any) -> FrozenTrial:
        return self._call("get_best_trial", super().get_best_trial, *args, **kwargs)

    # Private methods that Optuna's _CachedStorage calls on its backend.
    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        return self._call("_get_trials", super()._get_trials, *args, **kwargs)

    def _create_new_trial(self, *args: Any, **kwargs: Any) -> FrozenTrial:
        return self._call("_create_new_trial", super()._create_new_trial, *args, **kwargs)

    def _set_trial_param(self, *args: Any, **kwargs: Any) -> None:
        return self._call("_set_trial_param", super()._set_trial_param, *args, **kwargs)

    def _get_best_trial_id(self, *args: Any, **kwargs: Any) -> int:
        return self._call("_get_best_trial_id", super()._get_best_trial_id, *args, **kwargs)

    def _get_stale_trial_ids(self, *args: Any, **kwargs: Any) -> list[int]:
        return self._call("_get_stale_trial_ids", super()._get_stale_trial_ids, *args, **kwargs)

    # The tuner's own queries, on Optuna's tables.
    def stale_trial_ids(self, study_id: int) -> list[int]:
        """RUNNING trials whose last heartbeat is older than the grace period.

        Optuna's ``_get_stale_trial_ids``; a trial that never sent a heartbeat is
        not stale (see :meth:`running_heartbeats` for those).
        """
        return self._get_stale_trial_ids(study_id)

    def fail_if_running(self, trial_id: int, user_attrs: dict[str, Any]) -> bool:
        """RUNNING -> FAIL with ``user_attrs`` set, in one transaction, the row locked.

        False when the trial was no longer RUNNING. Optuna's ``set_trial_state_values``
        cannot set attrs in the same transaction, and a trial failed first and given
        its reason afterwards could be seen (and retried) without one.
        """
        return self._call("fail_if_running", self._fail_if_running, trial_id, user_attrs)

    def _fail_if_running(self, trial_id: int, user_attrs: dict[str, Any]) -> bool:
        models = _models()
        with _scoped_session(self) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
            if trial.state != TrialState.RUNNING:
                return False
            for key, value in user_attrs.items():
                self._set_trial_attr_without_commit(
                    session, models.TrialUserAttributeModel, trial_id, key, value
                )
            trial.state = TrialState.FAIL
            trial.datetime_complete = dt.datetime.now()
        return True

    def running_heartbeats(self, study_id: int) -> RunningHeartbeats:
        """Every RUNNING trial of the study with its last heartbeat, on the server's clock."""
        return self._call("running_heartbeats", self._running_heartbeats, study_id)

    def _running_heartbeats(self, study_id: int) -> RunningHeartbeats:
        models = _models()
        beats = models.TrialHeartbeatModel
        with _scoped_session(self) as session:
            now = session.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
            assert now is not None
            rows = (
                session.query(models.TrialModel.trial_id, beats.heartbeat)
                .outerjoin(beats, beats.trial_id == models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .all()
            )
        # Naive, as Optuna's own stale check makes it: PostgreSQL's now() is aware.
        return RunningHeartbeats(now.replace(tzinfo=None), {tid: beat for tid, beat in rows})


def routed_methods() -> Sequence[str]:
    """The database calls :class:`RoutedRDBStorage` routes through ``_call``."""
    return sorted(
        name
        for name, value in vars(RoutedRDBStorage).items()
        if callable(value) and name != "_call" and hasattr(RDBStorage, name)
    )
