"""The watchdog on a run's step counter (tuner/trial/watchdog.py): a run that makes no
progress while its process is alive (and its heartbeat fresh) is stopped with a reason.

Hardening (issue 25): ``batch_size: 0`` spun in the PPO update at full CPU forever, the
first SIGTERM was never honoured, and the re-queued trial hung the next worker too.
"""

from __future__ import annotations

import threading
import time

from env.options import GameOptions
from tuner.config.spec import EvaluationSpec
from tuner.trial.training import TrainingRun, train
from tuner.trial.watchdog import StallWatchdog, TrainingStalled

AGAINST_RANDOM = EvaluationSpec(opponents=["random"], games=4, opening_plies=0)


def test_a_run_stuck_in_its_update_is_stopped_as_stalled(one_torch_thread):
    """``batch_size: 0`` (past the file checks, as a hand-built config would be): SB3's
    minibatch loop never ends. The run stops within the watchdog's limit, with a reason."""
    runs: list[TrainingRun] = []

    def run() -> None:
        runs.append(
            train(
                {"n_steps": 16, "batch_size": 0, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}},
                GameOptions(opponents=("random",)),
                total_timesteps=64,
                n_envs=2,
                n_evaluations=1,
                evaluation=AGAINST_RANDOM,
                seed=0,
                device="cpu",
                stall_seconds=1.0,
            )
        )

    # In a thread of its own, so that without the watchdog the test fails instead of hanging.
    worker = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the run hung in its update"
    assert time.monotonic() - start < 30
    (stuck,) = runs
    assert stuck.state.stalled is not None and "no training progress" in stuck.state.stalled
    assert not stuck.state.evaluations, "the final evaluation is not played after a stall"


def test_an_evaluation_is_not_a_stall_and_a_finished_run_is_never_interrupted():
    """A slow evaluation pauses the watchdog; leaving the block disarms it for good."""
    watchdog = StallWatchdog(seconds=0.2)
    slow = watchdog.pausing(lambda _model: time.sleep(0.6) or 1.0)
    with watchdog:
        assert slow(None) == 1.0
    time.sleep(0.5)  # after the block: nothing may land in this thread any more
    watchdog = StallWatchdog(seconds=0.2)
    try:
        with watchdog:
            time.sleep(2)
    except TrainingStalled:
        assert watchdog.reason is not None and "no env step" in watchdog.reason
    else:
        raise AssertionError("a block with no step for 2 s was not stopped")
