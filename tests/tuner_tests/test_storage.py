"""Storage and worker internals, in process, against the real PostgreSQL.

The multi-process faults are in test_faults.py; here are the pieces they rest
on: a pool that survives its connections being killed, orphaned and stale
trials, a result that arrives after its trial was failed, GPU placement and
threads. Which errors are retried, and how: test_retry.py.
"""

from __future__ import annotations

import socket
import time

import optuna
import psycopg2
import pytest
import sqlalchemy
from fault_support import by_state
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from support import run_cli

from tuner.base.errors import UserError
from tuner.base.settings import Settings
from tuner.commands.worker import Worker
from tuner.config.spec import parse_spec
from tuner.storage.optuna_compat import backend_of, study_id, trial_id
from tuner.storage.rdb import (
    ResilientRDBStorage,
    StorageSettings,
    application_name,
    engine_kwargs,
    make_storage,
)
from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.storage.retry import raised_at
from tuner.trial.lifecycle import budget_used, fail_running_trial, orphan_trial_ids, requeue_trial
from tuner.trial.training import resolve_device

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tiny_spec(**overrides) -> object:
    data = {
        "study_name": "store",
        "n_trials": 3,
        "sampler": {"type": "random"},
        "pruner": {"type": "none"},
        "budget": {"total_timesteps": 8, "n_evaluations": 1},
        "search_space": {"gamma": {"type": "float", "low": 0.9, "high": 0.999}},
    }
    data.update(overrides)
    return parse_spec(data, "test")


def trivial(trial, _spec, **_):
    """An objective without training: the worker's bookkeeping is what is tested."""
    x = trial.suggest_float("gamma", 0.9, 0.999)
    trial.report(x, step=1)
    return x


def admin(url: str):
    u = make_url(url)
    conn = psycopg2.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, dbname="postgres"
    )
    conn.autocommit = True
    return conn


def test_engine_settings_per_backend(monkeypatch):
    monkeypatch.setenv("KALAHA_POOL_SIZE", "3")
    settings = Settings.from_env().storage
    pg = engine_kwargs("postgresql+psycopg2://u@h/db", settings)
    assert pg["pool_pre_ping"] is True and pg["pool_size"] == 3 and pg["max_overflow"] == 3
    assert pg["connect_args"]["application_name"] == application_name()
    assert application_name().startswith("kalaha-tuner ") and len(application_name()) <= 63
    assert engine_kwargs("sqlite:///x.db", settings) == {"connect_args": {"timeout": 60}}


# --- a real server ---------------------------------------------------------------------


@pytest.mark.postgres
def test_storage_survives_its_connections_being_killed(pg_url):
    storage = make_storage(pg_url)
    assert isinstance(storage, ResilientRDBStorage)
    study = optuna.create_study(study_name="killed", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    dbname = make_url(pg_url).database
    conn = admin(pg_url)
    try:
        with conn.cursor() as cur:  # what a server restart or a network cut does to a pool
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                (dbname, application_name()),
            )
            (killed,) = cur.fetchone()
    finally:
        conn.close()
    assert killed >= 1
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(storage.get_all_trials(study._study_id)) == 4


@pytest.mark.postgres
def test_a_suggest_that_loses_its_connection_is_retried(pg_url):
    """The first parameter of a trial is written through Optuna's cached storage; a
    connection lost at that moment is retried, not turned into a failed trial."""
    storage = make_storage(pg_url)
    study = optuna.create_study(study_name="suggest", storage=storage)
    trial = study.ask()
    dropped: list[str] = []

    @sqlalchemy.event.listens_for(storage.engine, "before_cursor_execute")
    def drop_once(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO trial_params" in statement and not dropped:
            dropped.append(statement)
            raise sqlalchemy.exc.OperationalError(
                statement, parameters, Exception("server closed the connection unexpectedly")
            )

    x = trial.suggest_float("x", 0.0, 1.0)
    assert dropped, "the fault was never injected"
    study.tell(trial, x)
    (done,) = storage.get_all_trials(study._study_id)
    assert done.params == {"x": x} and done.state == TrialState.COMPLETE


@pytest.mark.postgres
def test_orphaned_trial_is_failed_and_retried(runs, pg_url):
    """A worker killed between ask and its first heartbeat leaves a RUNNING trial without one."""
    spec = tiny_spec()
    worker = Worker.open(spec, pg_url, worker_index=0, device="cpu", objective_fn=trivial)
    orphan = worker.study.ask()  # a claim whose worker died before its first heartbeat
    orphan.suggest_float("gamma", 0.9, 0.999)
    assert orphan_trial_ids(worker.trials.storage, study_id(worker.study)) == [trial_id(orphan)]
    report = worker.run()
    trials = worker.study.get_trials()
    failed = trials[orphan.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[TrialAttr.FAIL_REASON].startswith("orphaned")
    (retry,) = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == orphan.number]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    assert budget_used(trials) == spec.n_trials == len(report.finished)
    assert len(by_state(trials, TrialState.COMPLETE)) == spec.n_trials


@pytest.mark.postgres
def test_stale_trial_reason_and_retry_limit(runs, pg_url):
    settings = StorageSettings(heartbeat_interval=1, grace_period=1, max_retry=1)
    spec = tiny_spec(n_trials=1)
    worker = Worker.open(
        spec, pg_url, worker_index=0, device="cpu", settings=settings, objective_fn=trivial
    )
    storage, study = worker.trials.storage, worker.study
    dead = study.ask()
    dead.suggest_float("gamma", 0.9, 0.999)
    storage.record_heartbeat(dead._trial_id)  # then its worker dies
    time.sleep(2.5)
    assert worker.trials.fail_stale(with_orphans=False) == [dead.number]
    again = study.ask()  # the retry, claimed by a worker that dies too
    assert again.user_attrs[TrialAttr.RETRY_OF] == dead.number
    storage.record_heartbeat(again._trial_id)
    time.sleep(2.5)
    assert worker.trials.fail_stale(with_orphans=False) == [again.number]
    trials = study.get_trials()
    assert all(t.state == TrialState.FAIL for t in trials), "max_retry=1: no second retry"
    assert trials[1].system_attrs[TrialSystemAttr.RETRY_HISTORY] == [dead.number]
    assert all(t.user_attrs[TrialAttr.FAIL_REASON].startswith("heartbeat stale") for t in trials)
    assert budget_used(trials) == 1
    assert worker.run().finished == [], "the budget is spent: one trial, retried once, failed"


@pytest.mark.postgres
def test_result_after_being_failed_as_stale_is_kept_by_its_retry(runs, pg_url):
    """The database was away longer than the grace period; another worker failed the trial."""
    spec = tiny_spec(n_trials=1)

    def late(trial, _spec, **_):
        x = trial.suggest_float("gamma", 0.9, 0.999)
        trial.set_user_attr(TrialAttr.SCORES, {"random": 0.75})
        # Meanwhile, another worker saw no heartbeat: it fails the trial and queues a retry.
        backend = backend_of(trial.storage)
        assert fail_running_trial(backend, trial_id(trial), "heartbeat stale: test")
        requeue_trial(trial.study, backend.get_trial(trial_id(trial)), 2, "heartbeat stale")
        return x

    worker = Worker.open(spec, pg_url, worker_index=0, device="cpu", objective_fn=late)
    report = worker.run()
    trials = worker.study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    first, kept = trials
    assert kept.value == pytest.approx(first.params["gamma"])
    assert kept.params == first.params
    assert kept.user_attrs[TrialAttr.ADOPTED_RESULT_OF] == first.number
    assert kept.user_attrs[TrialAttr.RETRY_OF] == first.number
    assert kept.user_attrs[TrialAttr.SCORES] == {"random": 0.75}
    assert report.finished[0][1] == "COMPLETE"
    assert budget_used(trials) == 1


@pytest.mark.postgres  # psycopg2 connects, to a port where no server listens
def test_unreachable_storage_names_host_and_port(monkeypatch):
    monkeypatch.setenv("KALAHA_CONNECT_ATTEMPTS", "2")
    with pytest.raises(UserError, match=r"127\.0\.0\.1:1 .*after 2 attempts"):
        make_storage(
            "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", Settings.from_env().storage
        )
    with pytest.raises(UserError, match="not a valid SQLAlchemy URL"):
        make_storage("no url at all")


# --- devices and threads -----------------------------------------------------------------


@pytest.fixture
def gpus(monkeypatch):
    import torch

    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return set_count


def test_resolve_device_spreads_workers_over_gpus(gpus, monkeypatch):
    gpus(4)
    assert [resolve_device("auto", i) for i in range(6)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1",
    ]  # fmt: skip
    assert resolve_device("cuda", 6) == "cuda:2"
    assert resolve_device("cuda:3") == "cuda:3" and resolve_device("CPU") == "cpu"
    with pytest.raises(UserError, match=r"only 4 GPU\(s\) visible"):
        resolve_device("cuda:4")
    # Replicas without an index (docker compose --scale) spread by host and process.
    picked = set()
    for host in ("a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8"):
        monkeypatch.setattr(socket, "gethostname", lambda h=host: h)
        device = resolve_device("auto")
        assert device == resolve_device("auto"), "stable for one process"
        picked.add(device)
    assert len(picked) > 1 and picked <= {f"cuda:{i}" for i in range(4)}


def test_resolve_device_without_gpus(gpus):
    gpus(0)
    assert resolve_device("auto", 3) == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(UserError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UserError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0")


def test_device_cuda_trains_on_a_gpu_or_is_a_clear_error_without_one(runs):
    """On a GPU host a trial really trains on the GPU; on a CPU host ``--device cuda``
    is one error line (exit code 2) and ``auto`` is the CPU. Nothing mocked."""
    import torch

    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        result = run_cli("tune", "smoke", "--device", "cuda", runs_path=runs, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "sees no CUDA GPU" in result.stderr and "Traceback" not in result.stderr
        return
    n = torch.cuda.device_count()
    assert resolve_device("auto", 0) == "cuda:0" and resolve_device("auto", n) == "cuda:0"
    result = run_cli(
        "tune", "smoke", "--device", "cuda", "--n-trials", "1", "--worker-index", "0",
        runs_path=runs, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "device cuda:0" in result.stdout, result.stdout
    (trial,) = optuna.load_study(
        study_name="smoke", storage=f"sqlite:///{runs / 'optuna.db'}"
    ).get_trials()
    assert trial.user_attrs[TrialAttr.DEVICE] == "cuda:0", trial.user_attrs


def test_one_torch_thread_per_worker_by_default(monkeypatch):
    import torch

    from tuner.cli import _thread_count, _threads, build_parser

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("KALAHA_TORCH_THREADS", raising=False)
        args = build_parser().parse_args(["tune", "smoke"])
        threads = _thread_count(args, Settings.from_env())
        _threads(threads)
        assert threads == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("KALAHA_TORCH_THREADS", "2")
        args = build_parser().parse_args(["tune", "smoke"])
        threads = _thread_count(args, Settings.from_env())
        _threads(threads)
        assert threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_raised_at_names_the_last_optuna_or_tuner_frame():
    """The worker's "lost the database" line says where, without a traceback."""

    def set_param() -> None:
        raise sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("server closed"))

    try:
        set_param()
    except sqlalchemy.exc.OperationalError as err:
        where = raised_at(err)
    assert where.startswith("test_storage.set_param:"), where
