"""A PBT study on the real PostgreSQL with two worker processes, one killed mid-interval.

The ``pbt`` test study (three members, three intervals of 512 steps, real evaluation
against random) runs in two ``tuner tune`` processes with a 1 s heartbeat and a 3 s grace
period. One is SIGKILLed while it trains a unit that started from a checkpoint. What must
hold whatever the timing: the killed unit is failed as stale and retried from the same
checkpoint (same parent, same params), every member's every interval completed exactly
once, each unit's starting weights are its parent's final weights, and no member trained
a step more or less than its budget.
"""

from __future__ import annotations

import math
import signal

import pytest
from fault_support import by_state, finish, load_trials, reaping, running_trial_of, spawn_worker
from fault_support import wait_for as poll
from optuna.trial import FrozenTrial, TrialState
from support import REPO_ROOT

from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.trial.lifecycle import budget_used

pytestmark = pytest.mark.postgres
PBT = str(REPO_ROOT / "tests" / "tuner_tests" / "studies" / "pbt.yaml")
MEMBERS, INTERVALS, INTERVAL = 3, 3, 512


def unit_of(t: FrozenTrial) -> tuple[int, int]:
    return t.system_attrs[TrialSystemAttr.PBT_MEMBER], t.system_attrs[TrialSystemAttr.PBT_INTERVAL]


def resumed_unit_of(url: str, pid: int) -> FrozenTrial | None:
    """Worker ``pid``'s running unit once it trains from a checkpoint (interval 1 or later)."""
    t = running_trial_of(url, pid, name="pbt")
    return t if t is not None and unit_of(t)[1] >= 1 else None


def test_sigkill_of_one_worker_mid_interval_loses_nothing_and_repeats_nothing(runs, pg_url):
    with reaping([spawn_worker(pg_url, runs, i, study=PBT) for i in range(2)]) as procs:
        victim, survivor = procs
        killed = poll(lambda: resumed_unit_of(pg_url, victim.pid), 180, "a unit from a checkpoint")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        ((out, err),) = finish([survivor], timeout=300)

    assert survivor.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert "worker done:" in out, out
    trials = load_trials(pg_url, "pbt")
    assert not by_state(trials, TrialState.RUNNING) and not by_state(trials, TrialState.WAITING)
    assert budget_used(trials) == MEMBERS * INTERVALS
    complete = {unit_of(t): t for t in by_state(trials, TrialState.COMPLETE)}
    assert len(by_state(trials, TrialState.COMPLETE)) == len(complete), "a unit ran twice"
    assert sorted(complete) == [(m, k) for m in range(MEMBERS) for k in range(INTERVALS)]

    # the killed unit: failed as stale, retried from the same checkpoint with its params
    (failed,) = by_state(trials, TrialState.FAIL)
    assert failed.number == killed.number
    assert failed.user_attrs[TrialAttr.FAIL_REASON].startswith("heartbeat stale"), failed.user_attrs
    retry = complete[unit_of(failed)]
    assert retry.user_attrs[TrialAttr.RETRY_OF] == failed.number
    assert retry.params == failed.params
    parent = failed.system_attrs[TrialSystemAttr.PBT_PARENT]
    assert parent is not None and retry.user_attrs[TrialAttr.PBT_PARENT] == parent

    # every unit went on from its parent's final weights, and trained exactly one interval
    by_number = {t.number: t for t in complete.values()}
    for (m, k), unit in complete.items():
        attrs = unit.user_attrs
        assert attrs[TrialAttr.PBT_TIMESTEP] == (k + 1) * INTERVAL, (m, k)
        assert attrs[TrialAttr.TIMESTEPS] == INTERVAL
        assert math.isfinite(unit.value) and attrs[TrialAttr.SCORES]
        assert TrialAttr.MODEL_ARTIFACT_ID in attrs and TrialAttr.PBT_CHECKPOINT_ID in attrs
        schedule = attrs[TrialAttr.PBT_SCHEDULE]
        assert [e["interval"] for e in schedule] == list(range(k + 1))
        if k == 0:
            assert attrs[TrialAttr.PBT_PARENT] is None
            continue
        parent = by_number[attrs[TrialAttr.PBT_PARENT]]
        assert unit_of(parent)[1] == k - 1
        assert attrs[TrialAttr.PBT_WEIGHTS_START] == parent.user_attrs[TrialAttr.PBT_WEIGHTS_END]
        assert schedule[:-1] == parent.user_attrs[TrialAttr.PBT_SCHEDULE]
