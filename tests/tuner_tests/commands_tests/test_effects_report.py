"""The report's Effects section on real Optuna studies: ``effects.md`` beside report.html.

A study tuned with Hyperband (most trials pruned) is compared at its common rung, named
in the file; trials built by hand with a known effect show it in the table, and a null
parameter's interval includes 0; a study with nothing finished gives one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from support import run_cli

from tuner.commands.effects import NO_EFFECT
from tuner.commands.effects_report import (
    FILE_NAME,
    effects_markdown,
    study_effects,
    write_effects,
)

STEPS = (1000, 2000, 4000)


def _objective(trial: optuna.Trial) -> float:
    """``big`` is 0.2 better at every evaluation; the learning rate does nothing."""
    arch = trial.suggest_categorical("arch", ["small", "big"])
    trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
    rng = np.random.default_rng(trial.number)
    base = 0.3 + (0.2 if arch == "big" else 0.0)
    for i, step in enumerate(STEPS):
        # the same evaluation a few steps apart, as rollouts of different sizes land
        trial.report(base + 0.05 * i + rng.normal(0, 0.05), step + 8 * (trial.number % 3))
        if trial.should_prune():
            raise optuna.TrialPruned()
    return base + 0.1 + rng.normal(0, 0.05)


@pytest.fixture(scope="module")
def hyperband_study(tmp_path_factory: pytest.TempPathFactory) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = tmp_path_factory.mktemp("hyperband") / "db.sqlite"
    study = optuna.create_study(
        study_name="hyperband",
        storage=f"sqlite:///{db}",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=STEPS[0], max_resource=STEPS[-1], reduction_factor=3
        ),
    )
    study.optimize(_objective, n_trials=40)
    return study


def test_a_pruned_study_is_compared_at_its_common_rung(hyperband_study, tmp_path: Path) -> None:
    states = [t.state for t in hyperband_study.trials]
    n_pruned, n_complete = states.count(TrialState.PRUNED), states.count(TrialState.COMPLETE)
    assert n_pruned > n_complete >= 6  # Hyperband pruned most

    section = write_effects(hyperband_study, tmp_path)
    text = (tmp_path / FILE_NAME).read_text()
    assert section.path == tmp_path / FILE_NAME
    assert (
        "## At the common rung: the 1st evaluation (step 1,008; 1,000 to 1,016 across trials)"
        in text
    )
    assert "40 of the 40 finished trials" in text
    assert f"The final value of each of the {n_complete} completed trials" in text
    assert section.summary.startswith("effects at the 1st evaluation (step 1,008; ")
    assert "40 trials" in section.summary

    rung_part = text.split("## Completed")[0]
    big = next(line for line in rung_part.splitlines() if line.startswith("| arch | big (best)"))
    assert "big better than small" in big
    small = next(line for line in rung_part.splitlines() if line.startswith("|  | small |"))
    assert "(includes 0)" not in small
    lr = next(line for line in rung_part.splitlines() if line.startswith("| learning_rate (log)"))
    assert lr.endswith(f"| {NO_EFFECT} |")
    assert '<h2 id="effects">' in section.html and "<table>" in section.html


def test_hand_built_trials_show_the_effect_and_the_null(tmp_path: Path) -> None:
    """A choice worth +0.15 excludes 0; a parameter with no effect includes it."""
    dists = {
        "activation": CategoricalDistribution(["tanh", "relu"]),
        "gamma": FloatDistribution(0.9, 0.999),
    }
    rng = np.random.default_rng(7)
    study = optuna.create_study(direction="maximize")
    for i in range(30):
        act = "relu" if i % 2 else "tanh"
        value = 0.5 + (0.15 if act == "tanh" else 0.0) + rng.normal(0, 0.04)
        study.add_trial(
            create_trial(
                params={"activation": act, "gamma": float(rng.uniform(0.9, 0.999))},
                distributions=dists,
                value=value,
                intermediate_values={1000: value - 0.1, 2000: value},
            )
        )
    text = effects_markdown(study_effects(study))
    tables = text.split("## Completed")
    assert len(tables) == 2  # the rung and the final values: both show the same
    for part in tables:
        lines = part.splitlines()
        tanh = next(line for line in lines if line.startswith("| activation | tanh (best) | 15 |"))
        assert "tanh better than relu" in tanh
        relu = next(line for line in lines if line.startswith("|  | relu | 15 |"))
        diff = relu.split(" | ")[4]  # best minus this: +0.15 [low > 0, high]
        low = float(diff.split("[")[1].split(",")[0])
        assert 0 < low < 0.15 and "(includes 0)" not in relu
        gamma = next(line for line in lines if line.startswith("| gamma | 30 |"))
        assert "(includes 0)" in gamma.split(" | ")[2]  # rho's interval
        assert gamma.endswith(f"| {NO_EFFECT} |")


def test_report_of_a_study_with_no_completed_trial_says_so_in_one_line(runs: Path) -> None:
    runs.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name="nothing_yet", storage=f"sqlite:///{runs / 'optuna.db'}", direction="maximize"
    )
    study.add_trial(create_trial(state=TrialState.FAIL))
    study.enqueue_trial({"gamma": 0.95})
    running = study.ask({"gamma": FloatDistribution(0.9, 0.999)})  # running, nothing reported
    assert running.params == {"gamma": 0.95}

    out = runs / "report"
    done = run_cli("report", "nothing_yet", "--out", str(out), runs_path=runs, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "effects.md: no finished trial has reported an intermediate value yet"
        in done.stdout.splitlines()
    )
    assert (out / FILE_NAME).read_text().count("\n") == 1
    assert (
        "no finished trial has reported an intermediate value yet"
        in (out / "report.html").read_text()
    )
