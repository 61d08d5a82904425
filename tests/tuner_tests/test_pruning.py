"""Pruning, trial by trial: known score curves in, the pruned trials and their steps out.

A real worker trains real (tiny) MaskablePPO models, but the strength evaluation
is scripted: trial k scores ``CURVES[k]`` at its evaluations (timesteps 256, 512,
768 and, after the whole budget, 1024). With known curves the right answer is
known, so each test asserts exactly which trials each pruner the study files
offer stops, at which timestep, and that every other trial completes. That is
the whole path: the study file's pruner options (steps in timesteps), the
callback reporting at each evaluation with the timestep as step, stopping
``learn()``, the objective turning that into PRUNED, and the final evaluation
never being put to the pruner.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from support import REPO_ROOT

import tuner.trial.training
from tuner.commands.worker import Worker
from tuner.config.spec import parse_spec
from tuner.storage.record import TrialAttr
from tuner.strength.evaluate import Strength

STEPS = (256, 512, 768, 1024)  # budget 1024 timesteps, 4 evaluations, 4 envs
CURVES = [
    [0.50, 0.55, 0.60, 0.65],  # 0
    [0.30, 0.35, 0.40, 0.45],  # 1
    [0.10, 0.20, 0.30, 0.40],  # 2 hopeless
    [0.45, 0.42, 0.20, 0.20],  # 3 fair, then falls
    [0.90, 0.90, 0.90, 0.90],  # 4 strong
    [0.60, 0.75, 0.30, 0.30],  # 5 peaks, then falls
    [0.35, 0.36, 0.37, 0.38],  # 6 mediocre
    [0.05, 0.05, 0.05, 0.05],  # 7 hopeless
]

# pruner -> (its options in the study file, {trial: the timestep it is pruned at}).
# Trials not listed complete. Why, with Optuna's rules (maximize):
CASES: dict[str, tuple[dict[str, Any], dict[int, int]]] = {
    # Median of the COMPLETE trials at that step, against the trial's best value so
    # far; no pruning before 2 trials completed, nor before timestep 300: so trials 2
    # and 7 go at 512, not 256 (a warmup counted in evaluations would never end).
    # Trial 3 (best 0.45) falls below the median 0.5 at 768; trial 5 falls too, but its
    # best so far (0.75) stays above 0.6, so it completes.
    "median": ({"n_startup_trials": 2, "n_warmup_steps": 300}, {2: 512, 3: 768, 6: 512, 7: 512}),
    # Keep the top 25 %: prune below the 75th percentile of the completed trials, after
    # 3 completed (so trial 2 completes), from the first evaluation on.
    "percentile": ({"percentile": 25.0, "n_startup_trials": 3}, {3: 768, 6: 256, 7: 256}),
    # Rungs at 256 and 512 timesteps (min_resource defaults to one evaluation's
    # worth): at each, a trial must be in the top half of all trials seen there.
    "successive_halving": ({"reduction_factor": 2}, {1: 256, 2: 256, 3: 512, 6: 256, 7: 256}),
    # Three brackets (256 -> 1024 timesteps, factor 2), a trial's bracket fixed by a
    # hash of "smoke_<number>": trials 1, 2, 3, 6 race from 256 (so only 2 and 6 lose:
    # trial 1 was first there, and 3 beats them at both rungs); 0 and 4 from 512; 5 and
    # 7 only at 1024, the final evaluation, which is never pruned (so 7 completes).
    "hyperband": ({"reduction_factor": 2}, {2: 256, 6: 512}),
}


def pruning_spec(pruner: str, options: dict[str, Any]):
    data = yaml.safe_load((REPO_ROOT / "studies" / "smoke.yaml").read_text())
    data.update(
        n_trials=len(CURVES),
        pruner={"type": pruner, "options": options},
        budget={"total_timesteps": STEPS[-1], "n_evaluations": len(STEPS), "n_envs": 4},
    )
    data["evaluation"]["value_from"] = "final"
    return parse_spec(data, f"pruning test ({pruner})")


@pytest.fixture
def scripted_evaluation(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Trial k's evaluations score CURVES[k] in turn; returns the timesteps each was asked at.

    ``train`` builds one evaluator per trial, and one worker runs its trials in order,
    so the k-th evaluator built belongs to trial k.
    """
    asked: list[list[int]] = []

    def make_evaluator(evaluation: Any, env_kwargs: Any, seed: int):
        curve = iter(CURVES[len(asked)])
        steps: list[int] = []
        asked.append(steps)

        def evaluate(model: Any) -> Strength:
            steps.append(int(model.num_timesteps))
            return Strength(value=next(curve), results={})

        return evaluate

    monkeypatch.setattr(tuner.trial.training, "make_evaluator", make_evaluator)
    return asked


@pytest.mark.parametrize("pruner", list(CASES))
def test_each_pruner_stops_exactly_the_trials_its_rules_say(
    pruner, runs, scripted_evaluation, one_torch_thread
):
    options, expected = CASES[pruner]
    spec = pruning_spec(pruner, options)
    url = f"sqlite:///{runs / 'pruning.db'}"
    runs.mkdir(parents=True, exist_ok=True)
    worker = Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs)
    worker.run()

    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert len(trials) == len(CURVES)
    pruned_at = {t.number: max(t.intermediate_values) for t in trials if t.state.name == "PRUNED"}
    assert pruned_at == expected, [(t.number, t.state.name, t.intermediate_values) for t in trials]
    for t in trials:
        stop = expected.get(t.number)
        steps = [s for s in STEPS if stop is None or s <= stop]
        assert scripted_evaluation[t.number] == steps, (t.number, scripted_evaluation[t.number])
        assert t.intermediate_values == {s: CURVES[t.number][i] for i, s in enumerate(steps)}
        assert t.user_attrs[TrialAttr.TIMESTEPS] == steps[-1]
        if stop is None:
            assert t.state == TrialState.COMPLETE and t.value == CURVES[t.number][-1]
        else:
            assert t.user_attrs[TrialAttr.PRUNE_REASON].startswith(f"pruned at timestep {stop} ")
