"""A population trained for real, in units: exploit copies weights and optimizer, replay follows.

One worker runs a two-member, two-interval population on SQLite (tiny net, 512 steps an
interval). Everything is real but the evaluation's value, which is the member's learning
rate here: an agent's score after 512 steps is a coin toss, and this test is about what
exploit and explore do once the ranking is known, not about the ranking (the PostgreSQL
test, test_pbt_faults.py, runs the real evaluation). The replay test trains a hand-made
schedule and watches the optimizer's learning rate change at the recorded step.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import yaml
from optuna_dashboard import get_note
from stable_baselines3.common.callbacks import BaseCallback
from support import REPO_ROOT

from tuner.commands.export import export_document, load_export, train_from_export, write_export
from tuner.commands.report import write_report
from tuner.commands.tune import population_role
from tuner.commands.verify.export_choice import select_for_export
from tuner.commands.worker import Worker
from tuner.config.spec import EvaluationSpec, StudySpec, parse_spec
from tuner.pbt.checkpoint import download_state
from tuner.pbt.population import Population
from tuner.pbt.replay import PbtExport, replay
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


class LearningRates(BaseCallback):
    """(timestep, the optimizer's learning rate) at each rollout start and at the end:
    the rate the update that ended at that timestep used."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, float]] = []

    def _record(self) -> None:
        self.seen.append((self.num_timesteps, self.model.policy.optimizer.param_groups[0]["lr"]))

    def _on_rollout_start(self) -> None:
        self._record()

    def _on_training_end(self) -> None:
        self._record()

    def _on_step(self) -> bool:
        return True


def test_a_replayed_schedule_changes_the_learning_rate_at_the_recorded_steps(
    runs, one_torch_thread
):
    spec = small_spec()
    pbt = PbtExport(
        population=2,
        interval=INTERVAL,
        schedule=[
            {"timestep": 0, "seed": 1, "values": {"learning_rate": 1.0e-3}},
            {"timestep": INTERVAL, "seed": 2, "values": {"learning_rate": 1.0e-5}},
        ],
    )
    watch = LearningRates()
    run = replay(
        pbt,
        {"n_steps": 64, "batch_size": 128, "n_epochs": 2, "policy_kwargs": {"net_arch": [16]}},
        {"opponent": ["random"]},
        budget=spec.budget,
        evaluation=EvaluationSpec(opponents=["random"], games=4, opening_plies=2),
        study="replay",
        device="cpu",
        runs_dir=runs,
        callbacks=[watch],
    )
    updates = [(t, lr) for t, lr in watch.seen if t > 0]
    assert {t for t, _ in updates} == {256, 512, 768, 1024}, watch.seen
    for t, lr in updates:
        assert lr == pytest.approx(1.0e-3 if t <= INTERVAL else 1.0e-5), (t, lr)
    # Adam's state went on across the change: 4 updates x 2 epochs x 2 minibatches
    optimizer = run.model.policy.optimizer
    assert int(next(iter(optimizer.state.values()))["step"]) == 16
    assert run.timesteps == 2 * INTERVAL and len(run.state.evaluations) == 2


def test_replay_with_a_fresh_seed_gives_each_segment_its_own(runs, one_torch_thread, monkeypatch):
    seeds: list[int] = []
    real_train = training.train

    def spy(*args, **kwargs):
        seeds.append(kwargs["seed"])
        return real_train(*args, **kwargs)

    import tuner.pbt.replay as replay_module

    monkeypatch.setattr(replay_module, "train", spy)
    pbt = PbtExport(
        population=2,
        interval=256,
        schedule=[
            {"timestep": 0, "seed": 5, "values": {}},
            {"timestep": 256, "seed": 9, "values": {}},
        ],
    )
    spec = small_spec()
    kwargs = dict(
        budget=spec.budget.model_copy(update={"total_timesteps": 512}),
        evaluation=EvaluationSpec(opponents=["random"], games=2, opening_plies=2),
        study="replay",
        device="cpu",
        runs_dir=runs,
    )
    ppo = {"n_steps": 64, "batch_size": 128, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
    replay(pbt, ppo, {"opponent": ["random"]}, **kwargs)
    replay(pbt, ppo, {"opponent": ["random"]}, seed=100, **kwargs)
    assert seeds == [5, 9, 100, 1100]


def test_shipped_pbt_study_validates_and_pairs_the_exploration_space():
    from tuner.config.spec import load_spec

    pbt = load_spec(Path(REPO_ROOT / "studies" / "exploration_pbt.yaml"))
    tpe = load_spec(Path(REPO_ROOT / "studies" / "exploration.yaml"))
    assert pbt.pbt is not None and pbt.pruner.type == "none"
    assert set(pbt.search_space) == set(tpe.search_space) - {"lr_schedule"}
    assert pbt.env == tpe.env and pbt.evaluation == tpe.evaluation
