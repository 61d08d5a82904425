"""Fault tolerance against the real PostgreSQL: killed workers, signals, a restarted server.

Each test runs workers as separate ``python -m tuner tune`` processes on the
tiny ``faults`` study (six trials of a few seconds each, no pruner), with a 1 s
heartbeat and a 3 s grace period. What must hold whatever the timing: no
finished trial is lost or changed, no trial stays RUNNING, and the study ends
with exactly ``n_trials`` trials counted.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from fault_support import (
    FAST_HEARTBEAT,
    FAULTS,
    PrivatePostgres,
    by_state,
    finish,
    load_trials,
    pg_bindir,
    reaping,
    running_trial_of,
    spawn_worker,
    unused_port,
    wait_for,
)
from optuna.trial import FrozenTrial, TrialState
from support import run_cli

from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.trial.lifecycle import budget_used

pytestmark = pytest.mark.postgres
N_TRIALS = 6


def assert_intact(trial: FrozenTrial) -> None:
    """A finished trial with everything a trial records."""
    assert trial.state == TrialState.COMPLETE
    assert trial.value is not None
    for key in ("real_params", "config", "scores", "timesteps", "model_artifact_id", "worker"):
        assert key in trial.user_attrs, (trial.number, key, sorted(trial.user_attrs))


def assert_study_done(trials: list[FrozenTrial]) -> None:
    """The budget is spent exactly, every counted trial completed, nothing left behind."""
    assert not by_state(trials, TrialState.RUNNING), "a trial was left RUNNING"
    assert not by_state(trials, TrialState.WAITING), "a retry was left WAITING"
    assert budget_used(trials) == N_TRIALS
    complete = by_state(trials, TrialState.COMPLETE)
    assert len(complete) == N_TRIALS
    for t in complete:
        assert_intact(t)


def retry_of(
    trials: list[FrozenTrial], failed: FrozenTrial, may_lack_params: bool = False
) -> FrozenTrial:
    """The trial that retried ``failed``: same parameters, and it says so.

    A trial stopped while it trained has its parameters, and its retry repeats them.
    Only a trial that lost the database before its first parameter was stored (the
    restart test, ``may_lack_params``) has none to repeat: its retry samples afresh.
    """
    retries = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == failed.number]
    assert len(retries) == 1, [(t.number, t.user_attrs.get(TrialAttr.RETRY_OF)) for t in trials]
    retry = retries[0]
    assert retry.system_attrs[TrialSystemAttr.RETRY_HISTORY][-1] == failed.number
    assert failed.params or may_lack_params, f"trial {failed.number} failed without parameters"
    if failed.params:
        assert retry.params == failed.params
    return retry


def run_one_more_trial(url: str, runs) -> list[FrozenTrial]:
    """A fresh worker runs one trial (a waiting retry comes first); the study's trials after."""
    result = run_cli(
        "tune", FAULTS, "--storage", url, "--n-trials", "1", "--device", "cpu",
        runs_path=runs, **FAST_HEARTBEAT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return load_trials(url)


def assert_clean_exit(proc, out: str, err: str) -> None:
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "worker done:" in out, out


def test_sigkill_one_of_three_workers_mid_trial(runs, pg_url):
    """The killed worker's trial is failed after the grace period and retried; the rest go on."""
    with reaping([spawn_worker(pg_url, runs, i) for i in range(3)]) as procs:
        victim = procs[1]
        killed = wait_for(
            lambda: running_trial_of(pg_url, victim.pid), 120, "worker 1 to be training a trial"
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        survivors = [procs[0], procs[2]]
        outputs = finish(survivors, timeout=240)

    for proc, (out, err) in zip(survivors, outputs, strict=True):
        assert_clean_exit(proc, out, err)
        assert "COMPLETE" in out, "each surviving worker went on running trials"
    trials = load_trials(pg_url)
    failed = by_state(trials, TrialState.FAIL)
    assert [t.number for t in failed] == [killed.number]
    reason = failed[0].user_attrs[TrialAttr.FAIL_REASON]
    assert reason.startswith("heartbeat stale: no heartbeat for more than 3s"), reason
    retry = retry_of(trials, failed[0])
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs[TrialAttr.RETRY_REASON] == "heartbeat stale"
    assert_study_done(trials)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_worker_cleanly_and_its_trial_is_retried(runs, pg_url, sig):
    """SIGTERM/SIGINT: the running trial is FAIL with the reason, re-queued; a clean exit."""
    with reaping([spawn_worker(pg_url, runs, 0)]) as procs:
        worker = procs[0]
        stopped = wait_for(
            lambda: running_trial_of(pg_url, worker.pid), 120, "the worker to be training"
        )
        worker.send_signal(sig)
        if sig == signal.SIGINT:  # Ctrl-C pressed twice: still no trial left RUNNING
            time.sleep(0.05)
            worker.send_signal(sig)
        ((out, err),) = finish([worker], timeout=60)

    assert_clean_exit(worker, out, err)
    assert f"stopped by {sig.name}" in out
    trials = load_trials(pg_url)
    assert not by_state(trials, TrialState.RUNNING)
    failed = {t.number: t for t in by_state(trials, TrialState.FAIL)}
    assert list(failed) == [stopped.number]
    reason = failed[stopped.number].user_attrs[TrialAttr.FAIL_REASON]
    assert reason.startswith(f"worker stopped: {sig.name} received"), reason
    (waiting,) = by_state(trials, TrialState.WAITING)
    assert waiting.user_attrs[TrialAttr.RETRY_OF] == stopped.number
    assert waiting.params == failed[stopped.number].params

    if sig == signal.SIGTERM:
        # The next worker runs the retry first, with the stopped trial's parameters.
        trials = run_one_more_trial(pg_url, runs)
        retry = retry_of(trials, failed[stopped.number])
        assert retry.number == waiting.number
        assert_intact(retry)


def test_status_flags_a_stale_running_trial_then_a_worker_retries_it(runs, pg_url):
    def status() -> str:
        result = run_cli("status", FAULTS, "--storage", pg_url, runs_path=runs, **FAST_HEARTBEAT)
        assert result.returncode == 0, result.stderr
        return result.stdout

    with reaping([spawn_worker(pg_url, runs, 0)]) as procs:
        worker = procs[0]

        def lists_worker() -> str | None:
            text = status()
            return text if f":{worker.pid}  " in text else None

        # status lists the worker's pooled connections (leaving out its own)
        alive = wait_for(lists_worker, 120, "tuner status to list the worker's connections")
        assert "connections: " in alive and "tuner processes" in alive, alive
        lost = wait_for(lambda: running_trial_of(pg_url, worker.pid), 120, "a running trial")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)

    line = f"trial {lost.number:4d}  running for"

    def stale_status() -> str | None:
        text = status()
        return text if "STALE" in text else None

    stale = wait_for(stale_status, 60, "tuner status to say STALE", every=1.0)
    flagged = [s for s in stale.splitlines() if s.startswith(f"  {line}")]
    assert flagged and "STALE heartbeat" in flagged[0], stale
    assert re.search(r"last heartbeat \d+s ago", flagged[0]), flagged[0]
    assert f"on {lost.user_attrs['worker']}" in flagged[0]

    trials = run_one_more_trial(pg_url, runs)
    failed = next(t for t in trials if t.number == lost.number)
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[TrialAttr.FAIL_REASON].startswith("heartbeat stale")
    assert_intact(retry_of(trials, failed))
    after = status()
    assert "STALE" not in after and "running:" not in after, after


@pytest.mark.postgres  # psycopg2 connects, to a port where no server listens
def test_unreachable_postgres_at_start_is_a_clear_error(runs):
    with unused_port() as port:  # nothing listens there, and nothing can while we hold it
        check_unreachable_postgres(runs, port)


def check_unreachable_postgres(runs, port: int) -> None:
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/kalaha"
    for command in (["tune", FAULTS], ["status", FAULTS]):
        result = run_cli(
            *command, "--storage", url, runs_path=runs, timeout=120, KALAHA_CONNECT_ATTEMPTS="2"
        )
        assert result.returncode == 2, (command, result.stderr)
        assert f"127.0.0.1:{port}" in result.stderr
        assert "after 2 attempts" in result.stderr
        assert "Traceback" not in result.stderr
    # The compose way: the URL from the environment.
    result = run_cli(
        "create",
        FAULTS,
        runs_path=runs,
        timeout=120,
        OPTUNA_STORAGE=url,
        KALAHA_CONNECT_ATTEMPTS="1",
    )
    assert result.returncode == 2 and f"127.0.0.1:{port}" in result.stderr, result.stderr


@pytest.fixture
def private_pg():
    if pg_bindir() is None:
        message = (
            "no PostgreSQL server binaries (initdb, pg_ctl) in `pg_config --bindir` or "
            "/usr/lib/postgresql/*/bin; install the server package (apt-get install postgresql)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)  # under CI a missing dependency is a failure, not a skip
        pytest.skip(message)
    cluster = PrivatePostgres()
    try:
        cluster.init_and_start()
        yield cluster
    finally:
        cluster.cleanup()


def test_postgres_restart_mid_study(runs, private_pg):
    """The server goes away for two seconds with trials in flight; the workers carry on."""
    url = private_pg.create_database("kalaha_restart")
    with reaping([spawn_worker(url, runs, i) for i in range(2)]) as procs:

        def in_flight() -> list[FrozenTrial] | None:
            trials = load_trials(url)
            running = by_state(trials, TrialState.RUNNING)
            if by_state(trials, TrialState.COMPLETE) and running:
                return trials
            return None

        before = wait_for(in_flight, 180, "a finished trial and one in flight")
        pid = private_pg.postmaster_pid()
        private_pg.stop("fast")  # terminates every worker connection
        time.sleep(2.0)
        private_pg.start()
        assert private_pg.postmaster_pid() != pid
        outputs = finish(procs, timeout=240)

    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert_clean_exit(proc, out, err)
    logs = "".join(err for _, err in outputs)
    assert "heartbeat failed" in logs or "database connection lost" in logs, "no outage seen"
    trials = load_trials(url)
    assert_study_done(trials)
    # What was finished before the restart is untouched.
    now = {t.number: t for t in trials}
    for t in by_state(before, TrialState.COMPLETE):
        assert now[t.number].state == TrialState.COMPLETE and now[t.number].value == t.value
    # At most the trials in flight (one per worker) were failed, and each was retried.
    failed = by_state(trials, TrialState.FAIL)
    assert len(failed) <= len(procs), [
        (t.number, t.user_attrs.get(TrialAttr.FAIL_REASON)) for t in failed
    ]
    for t in failed:
        assert retry_of(trials, t, may_lack_params=True).state == TrialState.COMPLETE
