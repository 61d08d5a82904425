"""Envs and MaskablePPO from a config, trained with evaluations (tuner/trial/training.py):
the device a worker trains on, and the final evaluation that no pruner is asked about."""

from __future__ import annotations

import socket

import optuna
import pytest
from optuna.trial import TrialState
from support import run_cli

from tuner.base.errors import UserError
from tuner.commands.worker import Worker
from tuner.config.spec import parse_spec
from tuner.storage.record import TrialAttr
from tuner.trial.training import resolve_device


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_the_final_evaluation_is_never_pruned(runs, tiny_spec):
    """A pruner that always says prune stops a trial at its first in-budget evaluation,
    but the evaluation after the whole budget is reported without asking it: pruning a
    finished trial saves nothing and loses a complete result."""
    url = f"sqlite:///{runs / 'final.db'}"
    one_eval = tiny_spec(n_trials=1)
    one_eval["budget"] = {**one_eval["budget"], "n_evaluations": 1}
    worker = Worker.open(parse_spec(one_eval), url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.pruner = AlwaysPrune()
    worker.run()
    (finished,) = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert finished.state == TrialState.COMPLETE
    assert list(finished.intermediate_values) == [finished.user_attrs[TrialAttr.TIMESTEPS]]

    url = f"sqlite:///{runs / 'inline.db'}"
    worker = Worker.open(
        parse_spec(tiny_spec(n_trials=1)), url, worker_index=0, device="cpu", runs_dir=runs
    )
    worker.study.pruner = AlwaysPrune()
    worker.run()
    (pruned,) = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert pruned.state == TrialState.PRUNED and len(pruned.intermediate_values) == 1


# --- devices ------------------------------------------------------------------------------


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


@pytest.mark.slow
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
