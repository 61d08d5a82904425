"""Envs and MaskablePPO from a config, trained with evaluations (tuner/trial/training.py):
a short run and what it measures, a bad configuration as a configuration error, the
device a worker trains on, and the final evaluation that no pruner is asked about."""

from __future__ import annotations

import socket

import optuna
import pytest
from fault_support import FAULTS
from optuna.trial import TrialState
from support import run_cli

import tuner.trial.training as training
from env.options import GameOptions
from tuner.base.errors import ConfigError, UserError
from tuner.commands.worker import Worker
from tuner.config.loading import load_spec, parse_spec
from tuner.config.spec import EvaluationSpec
from tuner.storage.record import TrialAttr
from tuner.trial.training import distribution_checks_off, resolve_device, train

TINY_PPO = {"n_steps": 16, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
AGAINST_RANDOM = EvaluationSpec(opponents=["random"], games=4, opening_plies=0)


def test_a_short_run_trains_its_budget_and_evaluates_evenly(one_torch_thread):
    """64 steps, 2 evaluations: one at half the budget, the last once it is all trained."""
    run = train(
        TINY_PPO,
        GameOptions(opponents=("random",)),
        total_timesteps=64,
        n_envs=2,
        n_evaluations=2,
        evaluation=AGAINST_RANDOM,
        seed=0,
        device="cpu",
    )
    assert run.timesteps == run.model.num_timesteps == 64
    assert [e.timestep for e in run.state.evaluations] == [32, 64]
    assert all(set(e.results) == {"random"} for e in run.state.evaluations)
    assert not (run.state.pruned or run.state.diverged or run.state.stopped)
    assert run.device == "cpu" and run.steps_per_second > 0
    assert run.eval_seconds == run.state.eval_seconds > 0


def test_a_model_that_cannot_be_built_is_a_configuration_error():
    """Nothing has trained yet, so the configuration is wrong, not the trial unlucky: the
    worker records it without spending the budget."""
    bad = {**TINY_PPO, "policy_kwargs": {"optimizer_kwargs": {"epsilon": 1.0e-5}}}
    with pytest.raises(ConfigError, match="MaskablePPO cannot be built from ppo_kwargs: TypeError"):
        train(
            bad,
            GameOptions(opponents=("random",)),
            total_timesteps=32,
            n_envs=2,
            n_evaluations=1,
            evaluation=AGAINST_RANDOM,
            seed=0,
            device="cpu",
        )


def test_distribution_checks_are_off_while_training_and_restored_after():
    """Validating the masked distribution's arguments cost up to a fifth of training."""
    from torch.distributions import Distribution

    before = Distribution._validate_args
    with pytest.raises(RuntimeError), distribution_checks_off():
        assert Distribution._validate_args is False
        raise RuntimeError("training failed")
    assert Distribution._validate_args == before, "restored, also after an error"


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_the_final_evaluation_is_never_pruned(runs, tiny_spec):
    """A pruner that always says prune stops a trial at its first in-budget evaluation,
    but the evaluation after the whole budget is reported without asking it: pruning a
    finished trial saves nothing and loses a complete result."""
    quick = {"total_timesteps": 768, "n_envs": 4}  # three rollouts of 64 steps x 4 envs
    url = f"sqlite:///{runs / 'final.db'}"
    one_eval = tiny_spec(n_trials=1, budget={**quick, "n_evaluations": 1})
    worker = Worker.open(parse_spec(one_eval), url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.pruner = AlwaysPrune()
    worker.run()
    (finished,) = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert finished.state == TrialState.COMPLETE
    assert list(finished.intermediate_values) == [finished.user_attrs[TrialAttr.TIMESTEPS]]

    url = f"sqlite:///{runs / 'inline.db'}"
    three_evals = tiny_spec(n_trials=1, budget={**quick, "n_evaluations": 3})
    worker = Worker.open(parse_spec(three_evals), url, worker_index=0, device="cpu", runs_dir=runs)
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


OUT_OF_MEMORY = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total)"


def _no_memory(*args, **kwargs):
    """MaskablePPO's constructor as it fails on a full GPU: torch's RuntimeError."""
    raise RuntimeError(OUT_OF_MEMORY)


def test_a_constructor_runtime_error_is_raised_as_it_is_not_as_divergence(monkeypatch):
    """Before the model exists nothing has trained: the RuntimeError of the constructor
    (CUDA out of memory) leaves ``train`` as it is, where it once became "training
    diverged" and sent a capacity problem to the study as a bad configuration."""
    monkeypatch.setattr(training, "MaskablePPO", _no_memory)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        training.train(
            {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
            GameOptions(opponents=("random",)),
            total_timesteps=256,
            n_envs=2,
            n_evaluations=1,
            evaluation=EvaluationSpec(opponents=["random"], games=4),
            seed=0,
            device="cpu",
        )


def test_the_trial_records_the_constructor_error_as_what_it_is(monkeypatch, runs):
    """The worker fails the trial with the error's own name and message, not a divergence."""
    monkeypatch.setattr(training, "MaskablePPO", _no_memory)
    spec = load_spec(FAULTS).model_copy(update={"n_trials": 1})
    url = f"sqlite:///{runs / 'optuna.db'}"
    runs.mkdir(parents=True, exist_ok=True)
    summary = Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs).run()
    assert [state for _, state, _ in summary.finished] == ["FAIL"]
    (trial,) = optuna.load_study(study_name="faults", storage=url).get_trials()
    reason = trial.user_attrs[TrialAttr.FAIL_REASON]
    assert trial.state == TrialState.FAIL
    assert reason == f"RuntimeError: {OUT_OF_MEMORY}", reason
    assert "diverged" not in reason
