"""What tuner/storage/optuna_compat.py relies on in Optuna's private API, one test per behaviour.

These tests import only the compatibility module, Optuna and SQLAlchemy (no torch),
so that CI also runs them against the newest Optuna 5.x in a bare environment
(``make compat-latest``). A failure here names the internal that moved.
"""

from __future__ import annotations

import inspect
import re
import threading
import time
import warnings
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from tuner.storage import optuna_compat
from tuner.storage.optuna_compat import (
    NOT_ROUTED,
    OptunaInternalsChanged,
    RoutedRDBStorage,
    backend_of,
    routed_methods,
    storage_of,
    study_id,
    trial_id,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
# The tuner's own methods on RoutedRDBStorage; every other one overrides Optuna's.
OWN = {
    "_call",
    "stale_trial_ids",
    "fail_if_running",
    "_fail_if_running",
    "running_heartbeats",
    "_running_heartbeats",
}


class Counting(RoutedRDBStorage):
    """Notes, per thread, whether a statement runs inside ``_call``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.depth = threading.local()
        self.calls: list[str] = []
        super().__init__(*args, **kwargs)

    def _call(self, name, fn, /, *args, **kwargs):
        self.calls.append(name)
        self.depth.n = getattr(self.depth, "n", 0) + 1
        try:
            return fn(*args, **kwargs)
        finally:
            self.depth.n -= 1


def make(url: str, cls: type[RDBStorage] = RoutedRDBStorage, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(url, **kwargs)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'compat.db'}"
    return request.getfixturevalue("pg_url")


def test_cached_storage_calls_on_its_backend_are_all_routed():
    """Optuna's ``_CachedStorage`` (around every RDB storage a Study uses) calls some
    private backend methods (``_set_trial_param`` for each suggest, ``_get_trials``):
    each must be overridden, or a lost connection there is not retried."""
    from optuna.storages import _cached_storage

    source = inspect.getsource(_cached_storage)
    called = set(re.findall(r"self\._backend\.(\w+)\(", source))
    assert "_set_trial_param" in called  # the check reads the right source
    missing = called - set(routed_methods()) - set(NOT_ROUTED)
    assert not missing, f"backend calls without retry: {sorted(missing)}"


def test_every_routed_method_still_exists_on_rdb_storage():
    """An override of a method Optuna renamed or dropped would route nothing."""
    ours = {n for n, v in vars(RoutedRDBStorage).items() if callable(v) and not n.startswith("__")}
    gone = sorted(n for n in ours - OWN if not hasattr(RDBStorage, n))
    assert not gone, f"RDBStorage has no {gone}"
    assert set(routed_methods()) == ours - OWN


def test_every_statement_a_study_runs_goes_through_call(tmp_path):
    """Behaviourally: ask, suggest, report, tell, enqueue, attrs and the tuner's queries
    issue no SQL outside ``_call`` (the heartbeat write, not routed, is left out)."""
    storage = make(f"sqlite:///{tmp_path / 'calls.db'}", Counting, heartbeat_interval=60)
    outside: list[str] = []

    @sqlalchemy.event.listens_for(storage.engine, "before_cursor_execute")
    def note(conn, cursor, statement, parameters, context, executemany):
        if getattr(storage.depth, "n", 0) == 0:
            outside.append(statement)

    study = optuna.create_study(study_name="calls", storage=storage)
    study.set_user_attr("n_trials", 2)
    study.enqueue_trial({"x": 0.5})
    for _ in range(2):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, step=1)
        trial.set_user_attr("seen", True)
        study.tell(trial, x)
    running = study.ask()
    assert storage.fail_if_running(trial_id(running), {"fail_reason": "test"})
    storage.running_heartbeats(study_id(study))
    storage.stale_trial_ids(study_id(study))
    assert study.best_trial.number in (0, 1) and study.user_attrs == {"n_trials": 2}
    assert len(study.get_trials()) == 3 and optuna.get_all_study_names(storage) == ["calls"]
    assert not outside, f"statements outside _call: {outside[:3]}"
    assert {"_set_trial_param", "_create_new_trial", "_get_trials"} <= set(storage.calls)


def test_ids_and_the_storage_behind_a_study(tmp_path):
    """``Study._study_id``, ``FrozenStudy._study_id``, ``Trial._trial_id`` and
    ``FrozenTrial._trial_id`` are the storage's ids; ``Study._storage`` is Optuna's
    ``_CachedStorage`` whose ``_backend`` is the storage the study was given."""
    storage = make(f"sqlite:///{tmp_path / 'ids.db'}")
    study = optuna.create_study(study_name="ids", storage=storage)
    trial = study.ask()
    study.tell(trial, 1.0)
    assert study_id(study) == storage.get_study_id_from_name("ids")
    (frozen_study,) = storage.get_all_studies()
    assert study_id(frozen_study) == study_id(study)
    (frozen,) = study.get_trials()
    assert trial_id(trial) == trial_id(frozen)
    assert storage.get_trial(trial_id(frozen)).number == frozen.number
    assert backend_of(storage_of(study)) is storage
    assert backend_of(trial.storage) is storage
    memory = optuna.create_study()
    assert backend_of(storage_of(memory)) is storage_of(memory)


def test_fail_if_running_sets_attrs_and_state_in_one_transaction(url):
    """Relies on ``_create_scoped_session``, ``models.TrialModel.find_or_raise_by_id(...,
    for_update=True)`` and ``RDBStorage._set_trial_attr_without_commit``."""
    storage = make(url)
    study = optuna.create_study(study_name="fail", storage=storage)
    running, done = study.ask(), study.ask()
    study.tell(done, 1.0)
    assert storage.fail_if_running(trial_id(running), {"fail_reason": "gone", "n": 2})
    failed = storage.get_trial(trial_id(running))
    assert failed.state == TrialState.FAIL and failed.datetime_complete is not None
    assert failed.user_attrs == {"fail_reason": "gone", "n": 2}
    assert not storage.fail_if_running(trial_id(running), {"fail_reason": "again"})
    assert storage.get_trial(trial_id(running)).user_attrs["fail_reason"] == "gone"
    assert not storage.fail_if_running(trial_id(done), {"fail_reason": "x"})
    assert storage.get_trial(trial_id(done)).state == TrialState.COMPLETE


def test_running_heartbeats_and_stale_trials(url):
    """Relies on ``models.TrialHeartbeatModel`` (one row per trial, its ``heartbeat``
    set from the server's ``now()``) and ``RDBStorage._get_stale_trial_ids``, which
    counts a trial without a heartbeat as not stale."""
    storage = make(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="beats", storage=storage)
    beating, silent, done = study.ask(), study.ask(), study.ask()
    study.tell(done, 0.0)
    storage.record_heartbeat(trial_id(beating))
    beats = storage.running_heartbeats(study_id(study))
    assert set(beats.last) == {trial_id(beating), trial_id(silent)}
    assert beats.last[trial_id(silent)] is None
    age = (beats.now - beats.last[trial_id(beating)]).total_seconds()
    assert 0 <= age < 30 and beats.now.tzinfo is None
    assert storage.stale_trial_ids(study_id(study)) == []
    time.sleep(2.5)
    assert storage.stale_trial_ids(study_id(study)) == [trial_id(beating)]


def test_a_moved_internal_is_one_clear_error():
    """The private modules are imported on first use, with a message naming the version."""
    with pytest.raises(OptunaInternalsChanged, match=re.escape(optuna.__version__)):
        optuna_compat._private("optuna.storages._no_such_module")
    models = optuna_compat._models()
    for name in ("TrialModel", "TrialHeartbeatModel", "TrialUserAttributeModel"):
        assert hasattr(models, name), f"optuna.storages._rdb.models has no {name}"
    assert callable(RDBStorage._set_trial_attr_without_commit)
    assert callable(RDBStorage._get_stale_trial_ids)
