"""Study file -> validated spec: every shipped study, the README's example, and one clear
line for each way a file can be broken, before anything trains or touches storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from sb3_contrib import MaskablePPO
from support import REPO_ROOT, write_study

from tuner.base.errors import UserError
from tuner.cli import main
from tuner.config.loading import load_spec, parse_spec, resolve_study_path
from tuner.config.space import lookahead_plies, materialize, sample, to_config
from tuner.config.spec import EvaluationSpec
from tuner.trial.training import make_training_env

STUDY_FILES = sorted((REPO_ROOT / "studies").glob("*.yaml"))


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
        vec = make_training_env(config.game, spec.budget.n_envs, seed=0, lookahead=plies)
        built = materialize(config.ppo_kwargs, config.game)
        model = MaskablePPO("MlpPolicy", vec, device="cpu", **built)
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
    ("evaluation: {search: 'ab:0'}", "evaluation.search", "a search is 'ab:D'", "'ab:0'"),
    (
        "evaluation: {objective: final}",
        "evaluation.objective",
        "expected 'score', 'rating' or 'perfect'",
        "value_from: final",
    ),
    (
        "evaluation: {objective: rating}",
        "evaluation.opponents",
        "expected no opponents with objective: rating",
        "'random'",
    ),
    (
        "{env: {stones: 5}, evaluation: {objective: rating, opponents: null, combine: null}}",
        "env",
        "expected stones 4 and empty_capture false",
        "stones 5",
    ),
    # One meaning per word: the renamed keys name their new names.
    ("env: {seeds: 5}", "env", "env.seeds is now env.stones (stones per pit)", "stones: 5"),
    (
        "budget: {total_timesteps: 3072, seeds: 2}",
        "budget",
        "budget.seeds is now budget.runs (training runs per trial)",
        "runs: 2",
    ),
    (
        "search_space: {seeds: {type: int, low: 3, high: 6}}",
        "search_space",
        "search_space.seeds is now search_space.stones",
        "stones: ",
    ),
    ("env: {pool_sampling: newest}", "env.pool_sampling", "expected one of", "'newest'"),
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
def test_broken_study_file_is_one_clear_error(
    tmp_path, runs, capsys, tiny_spec, patch, key, expected, found
):
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


# The perfect-play numbers (issue 20): (evaluation section, other top-level keys, key,
# expectation, finding). The evaluation section replaces the tiny study's whole.
PERFECT_BROKEN = [
    (
        {"objective": "perfect", "games": 20},
        {},
        "evaluation",
        "expected no games with objective: perfect (it plays no games",
        "20",
    ),
    (
        {"objective": "perfect", "opponents": ["random"]},
        {},
        "evaluation.opponents",
        "expected no opponents with objective: perfect",
        "['random']",
    ),
    (
        {"objective": "perfect", "perfect": False},
        {},
        "evaluation",
        "expected perfect: true or no perfect with objective: perfect",
        "perfect: false",
    ),
    ({"perfect": "sometimes"}, {}, "evaluation.perfect", "valid boolean", "sometimes"),
    (
        {"perfect": True, "search": "ab:2"},
        {},
        "evaluation",
        "expected no search with perfect: true",
        "'ab:2'",
    ),
    (
        {"objective": "perfect"},
        {"env": {"opponents": ["random"], "stones": 5}},
        "env",
        "expected stones 4 and empty_capture false, not searched, with evaluation.objective: "
        "perfect (the solved set is Kalah(6,4)",
        "stones 5",
    ),
    (
        {"perfect": True},
        {"env": {"opponents": ["random"], "empty_capture": True}},
        "env",
        "with evaluation.perfect: true (the solved set is Kalah(6,4)",
        "empty_capture True",
    ),
    (
        {"objective": "perfect"},
        {"search_space": {"stones": {"type": "int", "low": 3, "high": 5}}},
        "env",
        "not searched, with evaluation.objective: perfect",
        "searched: ['stones']",
    ),
    (
        {"objective": "perfect"},
        {"direction": "minimize"},
        "direction",
        "expected maximize with evaluation.objective: perfect",
        "minimize",
    ),
]


@pytest.mark.parametrize(
    "evaluation,top,key,expected,found",
    PERFECT_BROKEN,
    ids=[f"{b[2]}:{sorted(b[0].items())}" for b in PERFECT_BROKEN],
)
def test_a_bad_perfect_play_setting_is_one_clear_error(
    tmp_path, runs, capsys, tiny_spec, evaluation, top, key, expected, found
):
    """``objective: perfect`` and ``evaluation.perfect``: exit code 2, one line naming the
    file, the key, the expectation and what was found; nothing written."""
    path = write_study(tmp_path / "perfect.yaml", tiny_spec(evaluation=evaluation, **top))
    db = tmp_path / "nothing.db"
    code = main(["tune", str(path), "--storage", f"sqlite:///{db}"])
    message = capsys.readouterr().err.strip()
    assert code == 2, message
    assert len(message.splitlines()) == 1, message
    assert str(path) in message and key in message and expected in message and found in message
    assert not db.exists(), "a bad study file must not touch storage"


def test_the_perfect_play_settings_validate():
    """``perfect`` is unset by default (on where the game allows); ``objective: perfect``
    takes no games and keeps score's defaults out; ``perfect: true`` goes with a score."""
    assert EvaluationSpec().perfect is None and not EvaluationSpec().perfect_required
    perfect = EvaluationSpec(objective="perfect")
    assert perfect.perfect_required and perfect.opponents is None and perfect.combine is None
    assert EvaluationSpec(objective="perfect", perfect=True).perfect_required
    assert EvaluationSpec(perfect=True, opponents=["random"]).perfect_required
    assert not EvaluationSpec(perfect=False).perfect_required


def test_the_readme_study_example_is_a_valid_study():
    """The study file shown in README.md validates as it stands."""
    text = (REPO_ROOT / "README.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = parse_spec(yaml.safe_load(block), "README.md")
    assert spec.search_space["target_kl"].condition == {"lr_schedule": ["linear"]}


def test_a_minimal_file_gets_the_documented_defaults():
    """Only the required keys: every other setting takes the default README documents."""
    spec = parse_spec({"study_name": "m", "n_trials": 3, "budget": {"total_timesteps": 90}})
    assert (spec.direction, spec.seed, spec.sampler.type, spec.pruner.type) == (
        "maximize",
        0,
        "tpe",
        "median",
    )
    assert (spec.budget.n_evaluations, spec.budget.n_envs, spec.budget.runs) == (3, 8, 1)
    evaluation = spec.evaluation
    assert evaluation.objective == "score" and evaluation.value_from == "final"
    assert evaluation.opponents == ["random", "greedy"] and evaluation.combine == "mean"
    assert (evaluation.games, evaluation.opening_plies) == (200, 4)
    assert spec.env.opponents == ["random"] and spec.search_space == {}
    assert spec.env.stones == 4


def test_a_study_is_found_by_name_in_the_studies_folder_or_by_path(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    data = {"study_name": "mine", "n_trials": 2, "budget": {"total_timesteps": 64}}
    write_study(studies / "mine.yaml", data)
    assert load_spec("mine", studies).study_name == "mine"
    assert load_spec(studies / "mine.yaml").study_name == "mine"
    assert resolve_study_path("other", studies) == studies / "other.yaml"
    with pytest.raises(
        UserError, match=r"'.*nope\.yaml' does not exist; expected one of \['mine'\]"
    ):
        load_spec("nope", studies)


def test_a_file_that_is_not_a_study_is_one_clear_line(tmp_path):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(UserError, match="expected a YAML file, but it is not a regular file"):
        load_spec(folder)
    broken = tmp_path / "broken.yaml"
    broken.write_text("study_name: [unclosed\n")
    with pytest.raises(UserError, match=r"broken\.yaml: not valid YAML: "):
        load_spec(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="expected a mapping of keys at the top level"):
        load_spec(listed)


# --- hardening (issue 12): files that crashed, flooded or hung -----------------------------


ALIAS_BOMB = "\n".join(
    [
        "study_name: bomb",
        "n_trials: 2",
        "budget: {total_timesteps: 100}",
        "ppo:",
        "  policy_kwargs:",
        "    a: &a [x, x, x, x, x, x, x, x, x]",
        *[
            f"    {c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ],
    ]
)


def test_study_files_that_crashed_or_flooded_are_one_line_errors(runs, tmp_path, capsys, tiny_spec):
    """Hardening (issue 12): unbounded YAML, and tracebacks where one line was promised.

    An alias bomb, a recursive alias, a file that is not UTF-8, a huge file or
    description, a study name that cannot name a file: each is one line and exit
    code 2 now, and nothing is written to storage."""
    cases = {
        "bomb.yaml": (ALIAS_BOMB.encode(), "aliases expand to more than"),
        "recursive.yaml": (b"a: &a [*a]\n", "recursive alias"),
        "latin1.yaml": ("study_name: caf\u00e9\n".encode("latin-1"), "expected UTF-8 text"),
        "huge.yaml": (
            b"study_name: big\ndescription: " + b"x" * (2 * 1024 * 1024) + b"\n",
            "expected a YAML file of at most",
        ),
        "long_description.yaml": (
            yaml.safe_dump(tiny_spec(description="x" * 20_000)).encode(),
            "key 'description'",
        ),
        "dots.yaml": (yaml.safe_dump(tiny_spec(study_name="..")).encode(), "can name files"),
    }
    db = tmp_path / "nothing.db"
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        code = main(["tune", str(path), "--storage", f"sqlite:///{db}"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (name, err)
    assert not db.exists(), "nothing is written for a bad file"


def test_minimax_deeper_than_the_cap_is_refused_before_it_hangs(runs, tmp_path, capsys, tiny_spec):
    """minimax:99 searched forever in an evaluation and in ``tuner evaluate``."""
    from env.opponents import MAX_MINIMAX_DEPTH, make_opponent

    assert make_opponent(f"minimax:{MAX_MINIMAX_DEPTH}").depth == MAX_MINIMAX_DEPTH
    data = tiny_spec()
    data["evaluation"]["opponents"] = ["random", "minimax:99"]
    path = write_study(tmp_path / "deep.yaml", data)
    assert main(["tune", str(path), "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert f"between 1 and {MAX_MINIMAX_DEPTH}" in capsys.readouterr().err
