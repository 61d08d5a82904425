"""``train`` and the trial around it: what an error that is no divergence becomes."""

from __future__ import annotations

import optuna
import pytest
from fault_support import FAULTS
from optuna.trial import TrialState

import tuner.trial.training as training
from env.options import GameOptions
from tuner.commands.worker import Worker
from tuner.config.loading import load_spec
from tuner.config.spec import EvaluationSpec
from tuner.storage.record import TrialAttr

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
