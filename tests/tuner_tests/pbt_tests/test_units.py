"""A population trained for real, in units: exploit copies weights and optimizer, replay follows.

One worker runs a two-member, two-interval population on SQLite (tiny net, 512 steps an
interval). Everything is real but the evaluation's value, which is the member's learning
rate here: an agent's score after 512 steps is a coin toss, and this test is about what
exploit and explore do once the ranking is known, not about the ranking (the PostgreSQL
test, tests/tuner_tests/test_pbt_faults.py, runs the real evaluation). The export of
the population's winner is then replayed by `tuner train`'s own function.
"""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from optuna_dashboard import get_note
from support import REPO_ROOT

from tuner.commands.export import export_document, load_export, train_from_export, write_export
from tuner.commands.report import write_report
from tuner.commands.tune import population_role
from tuner.commands.verify.export_choice import select_for_export
from tuner.commands.worker import Worker
from tuner.config.loading import parse_spec
from tuner.config.spec import StudySpec
from tuner.pbt.checkpoint import download_state
from tuner.pbt.population import Population
from tuner.pbt.summary import status_lines
from tuner.storage.record import TrialAttr
from tuner.strength.evaluate import Strength
from tuner.trial import training

PBT_STUDY = REPO_ROOT / "tests" / "tuner_tests" / "studies" / "pbt.yaml"
INTERVAL = 512


def small_spec(**pbt) -> StudySpec:
    """The test study with two members and two intervals of 512 steps (2 rollouts each)."""
    data = yaml.safe_load(PBT_STUDY.read_text())
    data["pbt"] |= {"population": 2, "interval": INTERVAL, "quantile": 0.5,
                    "resample_probability": 0.0, **pbt}  # fmt: skip
    data["budget"]["total_timesteps"] = 2 * INTERVAL
    data["n_trials"] = 4
    return parse_spec(data, "pbt-small")


def ranked_by_learning_rate(evaluation, env_kwargs, seed):
    """The evaluation, with the member's learning rate as its value (see the docstring)."""
    return lambda model: Strength(float(model.learning_rate), {}, None)


def adam_steps(state) -> int:
    """How many optimizer steps the checkpoint's Adam state has taken."""
    return int(next(iter(state.optimizer["state"].values()))["step"])


@pytest.fixture(scope="module")
def population_study(tmp_path_factory):
    """(spec, study, runs folder) of a finished population; trained once for the module."""
    import torch

    tmp = tmp_path_factory.mktemp("pbt")
    runs = tmp / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(training, "make_evaluator", ranked_by_learning_rate)
            spec = small_spec()
            url = f"sqlite:///{tmp / 'db.sqlite'}"
            worker = Worker.open(
                spec, url, worker_index=0, device="cpu", runs_dir=runs, role=population_role(spec)
            )
            summary = worker.run()
            assert [s for _, s, _ in summary.finished] == ["COMPLETE"] * 4, summary
            yield spec, optuna.load_study(study_name="pbt", storage=url), runs
    finally:
        torch.set_num_threads(threads)


def test_a_bottom_member_goes_on_from_the_top_members_weights_and_optimizer(population_study):
    spec, study, runs = population_study
    population = Population.of(study.get_trials(), spec)
    top, bottom = sorted((population.unit(m, 0) for m in (0, 1)), key=lambda t: -t.value)
    top_m, bottom_m = (t.user_attrs[TrialAttr.PBT_MEMBER] for t in (top, bottom))
    copier, keeper = population.unit(bottom_m, 1), population.unit(top_m, 1)

    # exploit: the bottom member starts from the top member's checkpoint
    assert copier.user_attrs[TrialAttr.PBT_PARENT] == top.number
    assert (
        copier.user_attrs[TrialAttr.PBT_WEIGHTS_START] == top.user_attrs[TrialAttr.PBT_WEIGHTS_END]
    )
    assert (
        copier.user_attrs[TrialAttr.PBT_WEIGHTS_START]
        != bottom.user_attrs[TrialAttr.PBT_WEIGHTS_END]
    )
    decision = copier.user_attrs[TrialAttr.PBT_DECISION]
    assert decision["action"] == "exploit" and decision["donor"] == top_m
    # ... with its optimizer: two intervals of Adam steps, the donor's and its own
    donor_state = download_state(top.user_attrs[TrialAttr.PBT_CHECKPOINT_ID], runs)
    copier_state = download_state(copier.user_attrs[TrialAttr.PBT_CHECKPOINT_ID], runs)
    assert adam_steps(copier_state) == 2 * adam_steps(donor_state) > 0
    assert copier_state.num_timesteps == copier.user_attrs[TrialAttr.PBT_TIMESTEP] == 2 * INTERVAL

    # explore: the donor's learning rate times 0.5 or 2 (within the range), clip moved by one
    lr, donor_lr = copier.params["learning_rate"], top.params["learning_rate"]
    assert any(math.isclose(lr, min(donor_lr * f, 3.0e-3)) for f in (0.5, 2.0)), (lr, donor_lr)
    clips = [0.1, 0.2, 0.3]
    assert (
        abs(clips.index(copier.params["clip_range"]) - clips.index(top.params["clip_range"])) <= 1
    )
    assert copier.user_attrs[TrialAttr.REAL_PARAMS]["learning_rate"] == lr

    # the top member goes on from its own checkpoint with its own parameters
    assert keeper.user_attrs[TrialAttr.PBT_PARENT] == top.number
    assert keeper.params == top.params
    assert keeper.user_attrs[TrialAttr.PBT_DECISION]["action"] == "continue"

    # lineage and schedule: the copier's weights were trained by the top member, then by it
    schedule = copier.user_attrs[TrialAttr.PBT_SCHEDULE]
    assert [(e["timestep"], e["member"]) for e in schedule] == [(0, top_m), (INTERVAL, bottom_m)]
    assert schedule[1]["values"]["learning_rate"] == lr
    lines = "\n".join(status_lines(study, study.get_trials()))
    assert "exploits so far: 1" in lines and f"m{top_m}@0 m{bottom_m}@1" in lines, lines
    assert "Population-based training" in get_note(study)


def test_the_export_holds_the_winners_schedule_and_train_replays_it(
    population_study, tmp_path, monkeypatch
):
    spec, study, runs = population_study
    monkeypatch.setattr(training, "make_evaluator", ranked_by_learning_rate)
    chosen = select_for_export(study)
    assert chosen.rule.startswith("pbt: the best member at interval 1")
    population = Population.of(study.get_trials(), spec)
    finals = [population.unit(m, 1) for m in (0, 1)]
    assert chosen.trial.number == max(finals, key=lambda t: t.value).number
    path = write_export(
        {**export_document(spec, chosen.trial), **chosen.record()}, tmp_path / "x.yaml"
    )
    doc = load_export(path)
    schedule = doc["pbt"]["schedule"]
    assert schedule == chosen.trial.user_attrs[TrialAttr.PBT_SCHEDULE]
    run, out = train_from_export(doc, device="cpu", runs_dir=runs)
    assert run.timesteps == 2 * INTERVAL and out.exists()
    assert [e.timestep for e in run.state.evaluations] == [INTERVAL, 2 * INTERVAL]
    assert [e.value for e in run.state.evaluations] == [
        s["values"]["learning_rate"] for s in schedule
    ]

    report = write_report(study, tmp_path / "report")
    assert "population" in [f.key for f in report.figures if f.png is not None]
    assert "Population members" in report.html.read_text()
