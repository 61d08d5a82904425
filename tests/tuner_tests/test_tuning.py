"""The tuning core end to end: study files, trials, pruning, storage, workers, export.

Every test trains real MaskablePPO models (tiny ones, a few thousand steps) and
uses real storage: a SQLite file, or a fresh database on the real PostgreSQL.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from sb3_contrib import MaskablePPO
from support import REPO_ROOT, run_cli, spawn_cli

from tuner.base.settings import Settings
from tuner.cli import main
from tuner.commands.export import load_export
from tuner.commands.worker import Worker
from tuner.config.space import lookahead_plies, materialize, sample, to_config
from tuner.config.spec import ACTIVATIONS, load_spec, parse_spec
from tuner.storage.record import TrialAttr
from tuner.trial.training import make_training_env

STUDY_FILES = sorted((REPO_ROOT / "studies").glob("*.yaml"))
RECORDED_ATTRS = {
    "real_params",
    "config",
    "scores",
    "eval_results",
    "timesteps",
    "steps_per_second",
    "train_seconds",
    "eval_seconds",
    "device",
    "evaluations",
}


def tiny_spec(**overrides) -> dict:
    """A study small enough to run several trials in seconds."""
    data = yaml.safe_load((REPO_ROOT / "studies" / "smoke.yaml").read_text())
    data["evaluation"]["games"] = 20
    for key, value in overrides.items():
        data[key] = value
    return data


def load_trials(name: str, url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def assert_recorded(trial: optuna.trial.FrozenTrial) -> None:
    assert set(trial.user_attrs) >= RECORDED_ATTRS, set(trial.user_attrs)
    assert 0.0 <= trial.value <= 1.0
    assert set(trial.user_attrs[TrialAttr.SCORES]) == {"random", "greedy"}
    for result in trial.user_attrs[TrialAttr.EVAL_RESULTS].values():
        assert result["ci_low"] <= result["score"] <= result["ci_high"]
        assert result["distinct_openings"] > 1
    assert trial.user_attrs[TrialAttr.TIMESTEPS] >= 3072
    assert trial.user_attrs[TrialAttr.DEVICE] == "cpu"
    assert trial.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
    # n_evaluations reports, the last one once the whole budget is trained
    steps = sorted(trial.intermediate_values)
    assert len(steps) == 3 and steps[-1] == trial.user_attrs[TrialAttr.TIMESTEPS]
    assert trial.value == trial.intermediate_values[steps[-1]]


# --- study files -------------------------------------------------------------------


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_shipped_study_validates_and_builds_a_model(path: Path):
    """Every shipped study parses, and a randomly sampled trial builds a MaskablePPO."""
    spec = load_spec(path)
    assert spec.study_name == path.stem
    assert path.read_text().startswith("#"), "each study says in a comment what it tunes"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        trial = study.ask()
        config = to_config(spec, sample(spec, trial))
        plies = lookahead_plies(config.ppo_kwargs)
        vec = make_training_env(config.env_kwargs, spec.budget.n_envs, seed=0, lookahead=plies)
        model = MaskablePPO("MlpPolicy", vec, device="cpu", **materialize(config.ppo_kwargs))
        assert model.batch_size <= model.n_steps * spec.budget.n_envs
        vec.close()
        study.tell(trial, 0.0)


BROKEN = [
    ("n_trials: many", "n_trials", "expected a valid integer", "'many'"),
    (
        "budget: {total_timesteps: 100, n_envs: 0}",
        "budget.n_envs",
        "greater than or equal to 1",
        "0",
    ),
    ("direction: sideways", "direction", "expected 'maximize' or 'minimize'", "'sideways'"),
    (
        "sampler: {type: grid}",
        "sampler.type",
        "expected 'tpe', 'random', 'cmaes' or 'qmc'",
        "'grid'",
    ),
    ("ppo: {learning_rate: 3e-4}", "ppo.learning_rate", "expected a number", "'3e-4'"),
    ("ppo: {lerning_rate: 0.001}", "lerning_rate", "unknown setting", "MaskablePPO argument"),
    ("env: {opponents: [minimax:0]}", "env.opponents", "an opponent is one of", "'minimax:0'"),
    (
        "search_space: {gamma: {type: float, low: 0.99, high: 0.9}}",
        "search_space.gamma",
        "expected low < high",
        "low=0.99",
    ),
    (
        "search_space: {gamma: {type: gaussian, low: 0.9, high: 0.99}}",
        "search_space.gamma",
        "expected",
        "gaussian",
    ),
    (
        "search_space: {learning_rate: {type: float, low: 0.0, high: 0.1, log: true}}",
        "learning_rate",
        "expected low > 0 with log: true",
        "low=0.0",
    ),
    ("evaluation: {games: 1}", "evaluation.games", "greater than or equal to 2", "1"),
    ("evaluation: {games: 21}", "evaluation.games", "expected an even number", "21"),
    (
        "evaluation: {objective: final}",
        "evaluation.objective",
        "expected 'score' or 'rating'",
        "value_from: final",
    ),
    (
        "evaluation: {objective: rating}",
        "evaluation.opponents",
        "expected no opponents with objective: rating",
        "'random'",
    ),
    (
        "{env: {seeds: 5}, evaluation: {objective: rating, opponents: null, combine: null}}",
        "env",
        "expected seeds 4 and empty_capture false",
        "seeds 5",
    ),
    (
        "{direction: minimize, evaluation: {objective: rating, opponents: null, combine: null}}",
        "direction",
        "expected maximize with evaluation.objective: rating",
        "minimize",
    ),
    (
        "ppo: {n_steps: 8, batch_size: 4096}",
        "ppo.batch_size",
        "expected at most n_steps * n_envs",
        "4096",
    ),
    ("budgett: {total_timesteps: 10}", "budgett", "unknown key", ""),
    (
        "sampler: {type: tpe, options: {n_startup: 3}}",
        "sampler.options",
        "unexpected keyword",
        "n_startup",
    ),
    (
        "evaluation: {opening_plies: 21}",
        "evaluation.opening_plies",
        "less than or equal to 20",
        "21",
    ),
    (
        "pruner: {type: median, options: {warmup: 3}}",
        "pruner.options",
        "unexpected keyword",
        "warmup",
    ),
    # Hardening (issue 12): each of these passed validation and failed every trial, or
    # was a traceback.
    (
        "ppo: {policy_kwargs: {ortho_int: false}}",
        "ppo.policy_kwargs.ortho_int",
        "unknown policy setting",
        "ortho_init",
    ),
    ("ppo: {policy_kwargs: [1, 2]}", "ppo.policy_kwargs", "expected a mapping", "[1, 2]"),
    ("ppo: {learning_rate: .nan}", "ppo.learning_rate", "expected a finite number", "nan"),
    (
        "search_space: {n_epochs: {type: int, low: 3, high: 9, step: 0}}",
        "search_space.n_epochs",
        "expected step >= 1",
        "step=0",
    ),
    (
        "search_space: {gamma: {type: float, low: 0.9, high: 0.99, step: -0.01}}",
        "search_space.gamma",
        "expected 0 < step",
        "step=-0.01",
    ),
    (
        "search_space: {gamma: {type: float, low: 0.9, high: .inf}}",
        "search_space.gamma.high",
        "finite number",
        "inf",
    ),
    (
        "search_space: {gamma: {type: float, low: 0.9, high: 0.99, condition: {lr_schedule: "
        "linear}}, lr_schedule: {type: categorical, choices: [constant, linear]}}",
        "search_space.gamma.condition",
        "expected a parameter searched before",
        "'lr_schedule'",
    ),
    (
        "search_space: {activation_fn: {type: categorical, choices: [tanh, relu]}, gamma: "
        "{type: float, low: 0.9, high: 0.99, condition: {activation_fn: sigmoid}}}",
        "search_space.gamma.condition.activation_fn",
        "expected values among its choices",
        "sigmoid",
    ),
    (
        "evaluation: {opponents: [random, greedy], combine: weighted, weights: {random: 1.0, "
        "greedy: -1.0}}",
        "evaluation",
        "expected weights >= 0",
        "-1.0",
    ),
    ("env: {opponents: ['policy:nosuch.zip']}", "env.opponents", "does not exist", "nosuch.zip"),
    (
        "pruner: {type: median, options: {n_warmup_steps: -5}}",
        "pruner.options",
        "cannot be negative",
        "-5",
    ),
]


@pytest.mark.parametrize(
    "patch,key,expected,found", BROKEN, ids=[b[1] + ":" + b[0][:12] for b in BROKEN]
)
def test_broken_study_file_is_one_clear_error(tmp_path, runs, capsys, patch, key, expected, found):
    """A bad file: exit code 2, one line naming file, key, expectation and finding; nothing written."""
    data = tiny_spec()
    for k, v in yaml.safe_load(patch).items():
        if (
            isinstance(v, dict)
            and isinstance(data.get(k), dict)
            and k not in ("search_space", "ppo")
        ):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data).replace("'3e-4'", "3e-4"))
    db = tmp_path / "nothing.db"
    code = main(["tune", str(path), "--storage", f"sqlite:///{db}"])
    message = capsys.readouterr().err.strip()
    assert code == 2, message
    assert len(message.splitlines()) == 1, message
    assert str(path) in message and key in message and expected in message and found in message
    assert not db.exists(), "a bad study file must not touch storage"


def test_every_accepted_activation_name_builds_a_torch_activation():
    import torch.nn as nn

    for name in ACTIVATIONS:
        built = materialize({"policy_kwargs": {"activation_fn": name}})
        activation = built["policy_kwargs"]["activation_fn"]
        assert issubclass(activation, nn.Module) and activation.__name__.lower().replace(
            "_", ""
        ) == name.replace("_", ""), (name, activation)


def test_a_fixed_policy_setting_lands_in_policy_kwargs_as_a_searched_one_does():
    spec = parse_spec(
        tiny_spec(ppo={"n_steps": 16, "lookahead": 2, "net_arch": [8]}, search_space={})
    )
    config = to_config(spec, {})
    assert "lookahead" not in config.ppo_kwargs and "net_arch" not in config.ppo_kwargs
    assert config.ppo_kwargs["policy_kwargs"] == {"lookahead": 2, "net_arch": [8]}


def test_conversion_is_pure_and_resolves_named_choices():
    spec = parse_spec(
        tiny_spec(
            ppo={"n_steps": 16, "policy_kwargs": {"activation_fn": "relu"}},
            search_space={
                "net_arch": {"type": "categorical", "choices": {"split": {"pi": [8], "vf": [32]}}},
                "batch_size": {"type": "categorical", "choices": [32, 512]},
                "store_diff_coef": {"type": "float", "low": 0.0, "high": 1.0},
                "target_kl": {
                    "type": "float",
                    "low": 0.01,
                    "high": 0.1,
                    "condition": {"batch_size": 512},
                },
            },
        )
    )
    values = {"net_arch": "split", "batch_size": 512, "store_diff_coef": 0.5, "target_kl": 0.02}
    first = to_config(spec, values)
    assert first == to_config(spec, dict(values)), "same input, same output"
    assert values["net_arch"] == "split", "the input is not modified"
    assert first.ppo_kwargs["policy_kwargs"] == {
        "activation_fn": "relu",
        "net_arch": {"pi": [8], "vf": [32]},
    }
    assert first.env_kwargs["store_diff_coef"] == 0.5
    assert first.ppo_kwargs["batch_size"] == 64, "cut to n_steps * n_envs = 16 * 4"
    assert "batch_size" in first.adjustments
    assert "target_kl" in first.ppo_kwargs
    # the condition: target_kl is only sampled when batch_size is 512
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        sampled = sample(spec, trial)
        seen.add(("target_kl" in sampled) == (sampled["batch_size"] == 512))
        study.tell(trial, 0.0)
    assert seen == {True}


# --- trials on real storage --------------------------------------------------------


def test_smoke_study_on_sqlite_via_the_cli(runs):
    """`tuner tune smoke` on the embedded default fills the study with recorded trials."""
    result = run_cli("tune", "smoke", "--worker-index", "0", runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert "worker done: 6 trials" in result.stdout
    trials = load_trials("smoke", f"sqlite:///{runs / 'optuna.db'}")
    assert len(trials) == 6
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    for trial in complete:
        assert_recorded(trial)
        run_dirs = list((runs / "tensorboard" / "smoke").glob(f"trial_{trial.number:04d}*"))
        assert run_dirs and any(p.name.startswith("events.") for p in run_dirs[0].iterdir())
    assert any((runs / "artifacts").iterdir())


@pytest.mark.postgres
def test_smoke_study_on_postgres(runs, pg_url):
    spec = parse_spec(tiny_spec(n_trials=3))
    report = Worker.open(spec, pg_url, worker_index=0, device="cpu", runs_dir=runs).run()
    assert len(report.finished) == 3
    trials = load_trials("smoke", pg_url)
    assert [t.number for t in trials] == [0, 1, 2]
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if trial.state == TrialState.COMPLETE:
            assert_recorded(trial)
        else:
            assert trial.user_attrs[TrialAttr.PRUNE_REASON].startswith("pruned at timestep")


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_the_final_evaluation_is_never_pruned(runs):
    """A pruner that always says prune stops a trial at its first in-budget evaluation,
    but the evaluation after the whole budget is reported without asking it: pruning a
    finished trial saves nothing and loses a complete result."""
    url = f"sqlite:///{runs / 'final.db'}"
    one_eval = tiny_spec(n_trials=1)
    one_eval["budget"] = {**one_eval["budget"], "n_evaluations": 1}
    worker = Worker.open(parse_spec(one_eval), url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.pruner = AlwaysPrune()
    worker.run()
    (finished,) = load_trials("smoke", url)
    assert finished.state == TrialState.COMPLETE
    assert list(finished.intermediate_values) == [finished.user_attrs[TrialAttr.TIMESTEPS]]

    url = f"sqlite:///{runs / 'inline.db'}"
    worker = Worker.open(
        parse_spec(tiny_spec(n_trials=1)), url, worker_index=0, device="cpu", runs_dir=runs
    )
    worker.study.pruner = AlwaysPrune()
    worker.run()
    (pruned,) = load_trials("smoke", url)
    assert pruned.state == TrialState.PRUNED and len(pruned.intermediate_values) == 1


def test_diverging_trial_fails_with_a_reason_and_the_worker_goes_on(runs):
    spec = parse_spec(
        tiny_spec(
            n_trials=2,
            search_space={
                "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e30, "log": True}
            },
        )
    )
    url = f"sqlite:///{runs / 'diverge.db'}"
    worker = Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.enqueue_trial({"learning_rate": 1.0e30})
    worker.study.enqueue_trial({"learning_rate": 1.0e-3})
    report = worker.run()
    assert [s for _, s, _ in report.finished] == ["FAIL", "COMPLETE"]
    failed, complete = load_trials("smoke", url)
    assert (
        failed.state == TrialState.FAIL and "diverged" in failed.user_attrs[TrialAttr.FAIL_REASON]
    )
    assert complete.state == TrialState.COMPLETE and not math.isnan(complete.value)


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study_exactly(runs, pg_url, tmp_path):
    """Two worker processes: n_trials in total, each trial run once, different proposals."""
    procs = [
        spawn_cli("tune", "smoke", "--storage", pg_url, "--worker-index", str(i), runs_path=runs)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    trials = load_trials("smoke", pg_url)
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    seeds = {t.user_attrs[TrialAttr.WORKER_SEED] for t in trials}
    assert len(seeds) == 2, "each worker seeds its sampler differently"
    ran = [
        int(line.split()[1])
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("trial ")
    ]
    assert sorted(ran) == list(range(6)), "every trial ran exactly once, in one of the workers"


# --- export and retraining -----------------------------------------------------------


# Env options that differ from every KalahaEnv default, so a retraining that drops them
# builds another env; the trial's seed differs from the study's, so one that trains
# with the study seed (or 0) trains another agent.
ROUND_TRIP_ENV = {
    # a self-play league: past selves (a snapshot every 512 steps, 2 kept, drawn
    # uniformly) beside fixed opponents, in shares
    "opponents": {"pool": 0.5, "random": 0.25, "greedy": 0.25},
    "snapshot_every": 512,
    "pool_size": 2,
    "pool_sampling": "uniform",
    "seeds": 5,
    "opening_plies": 2,
    "store_diff_coef": 0.25,
    "extra_turn_coef": 0.1,
}


def policy_weights(path: Path) -> dict:
    return MaskablePPO.load(path, device="cpu").policy.state_dict()


def test_export_then_train_round_trip(runs, tmp_path, one_torch_thread):
    """`tuner train` on the export builds the best trial's agent again, bit for bit.

    The best trial is trial 1 (trial 0 diverges), trained with seed 11 + 1 on env
    options that are not KalahaEnv's defaults. Same config, same env, same seed and
    one torch thread: the retrained weights equal the trial's uploaded model, which
    no retraining with other env options or another seed reproduces.
    """
    data = tiny_spec(n_trials=2, seed=11, pruner={"type": "none"}, env=ROUND_TRIP_ENV)
    data["search_space"]["learning_rate"]["high"] = 1.0e30  # room for trial 0 to diverge
    spec = parse_spec(data)
    url = f"sqlite:///{runs / 'optuna.db'}"
    worker = Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.enqueue_trial({"learning_rate": 1.0e30, "gamma": 0.95, "net_arch": "tiny"})
    worker.study.enqueue_trial({"learning_rate": 2.0e-3, "gamma": 0.93, "net_arch": "small"})
    worker.run()
    study = optuna.load_study(study_name="smoke", storage=url)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    best = study.best_trial
    assert best.number == 1

    out = tmp_path / "best.yaml"
    result = run_cli("export", "smoke", "--out", str(out), runs_path=runs)
    assert result.returncode == 0, result.stderr
    doc = load_export(out)
    assert doc["trial"] == best.number and doc["value"] == pytest.approx(best.value)
    assert {"ppo_kwargs": doc["ppo_kwargs"], "env_kwargs": doc["env_kwargs"]} == best.user_attrs[
        "config"
    ]
    assert doc["params"] == best.params
    assert doc["seed"] == 12
    assert {"optuna", "stable-baselines3", "sb3-contrib", "torch"} <= set(doc["versions"])
    assert doc["scores"] == best.user_attrs[TrialAttr.SCORES]
    expected_env = {**ROUND_TRIP_ENV, "empty_capture": False}
    expected_env["opponent"] = expected_env.pop("opponents")
    assert doc["env_kwargs"] == expected_env
    assert best.user_attrs[TrialAttr.LEAGUE]["snapshots_taken"] >= 2, (
        "it trained against past selves"
    )

    model = tmp_path / "agent.zip"
    result = run_cli("train", str(out), "--out", str(model), "--device", "cpu", runs_path=runs)
    assert result.returncode == 0, result.stderr

    # What `tuner train` built: the model's settings and seed are the export's ...
    built = MaskablePPO.load(model, device="cpu")
    assert built.seed == doc["seed"] == spec.seed + best.number
    assert built.num_timesteps == doc["budget"]["total_timesteps"]
    assert built.gamma == pytest.approx(0.93) and built.learning_rate == pytest.approx(2.0e-3)
    for key in ("n_steps", "batch_size", "n_epochs"):
        assert getattr(built, key) == doc["ppo_kwargs"][key], key
    assert (
        built.policy_kwargs["net_arch"]
        == [32, 32]
        == doc["ppo_kwargs"]["policy_kwargs"]["net_arch"]
    )
    # ... and it trained on the same env with the same seed: the trial's very weights.
    trial_model = runs / "artifacts" / best.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
    expected, retrained = policy_weights(trial_model), policy_weights(model)
    assert expected.keys() == retrained.keys()
    differ = [k for k in expected if not torch.equal(expected[k], retrained[k])]
    assert not differ, f"retrained weights differ from trial {best.number}'s model: {differ}"
    # Same evaluation seeds too: the same scores, printed per opponent.
    for name, rate in best.user_attrs[TrialAttr.SCORES].items():
        assert f"vs {name:<12s} score {rate:.3f}" in result.stdout, result.stdout


def test_export_without_a_completed_trial_or_study_is_a_clear_error(runs, tmp_path):
    db = runs / "optuna.db"
    for command in ("export", "status", "report"):
        result = run_cli(command, "smoke", runs_path=runs)
        assert result.returncode == 2 and "expected an existing SQLite file" in result.stderr
        assert not db.exists(), f"`tuner {command}` created the storage it was to read"
    runs.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="other", storage=url, direction="maximize")
    result = run_cli("export", "smoke", runs_path=runs)
    assert result.returncode == 2 and "no study named 'smoke'" in result.stderr
    optuna.create_study(study_name="smoke", storage=url, direction="maximize")
    result = run_cli("export", "smoke", runs_path=runs)
    assert result.returncode == 2 and "no completed trial" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("train", str(tmp_path / "missing.yaml"), runs_path=runs)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_storage_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KALAHA_GRACE_PERIOD", "7")
    assert Settings.from_env().storage.grace_period == 7


def test_the_readme_study_example_is_a_valid_study():
    """The study file shown in README.md validates as it stands."""
    text = (REPO_ROOT / "README.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = parse_spec(yaml.safe_load(block), "README.md")
    assert spec.search_space["target_kl"].condition == {"lr_schedule": ["linear"]}


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "qmc"])
@pytest.mark.parametrize(
    "pruner", ["median", "percentile", "successive_halving", "hyperband", "none"]
)
def test_every_sampler_and_pruner_is_built_from_the_file(sampler, pruner):
    from tuner.config.samplers import build_pruner, build_sampler

    spec = parse_spec(tiny_spec(sampler={"type": sampler}, pruner={"type": pruner}))
    assert type(build_sampler(spec, seed=3)).__name__.lower().startswith(sampler[:3])
    built = build_pruner(spec)
    assert (
        type(built).__name__
        == {
            "median": "MedianPruner",
            "percentile": "PercentilePruner",
            "successive_halving": "SuccessiveHalvingPruner",
            "hyperband": "HyperbandPruner",
            "none": "NopPruner",
        }[pruner]
    )


def test_a_bad_study_file_exits_2_without_a_traceback_as_a_process(tmp_path, runs):
    """The same check through a real process: exit status 2, one line on stderr."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(n_trials="many")))
    result = run_cli("tune", str(path), runs_path=runs)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: key 'n_trials': expected a valid integer, unable to parse string "
        "as an integer, but got 'many'"
    ]
    assert not (runs / "optuna.db").exists()
