"""What a hostile or careless user found on the tuner (issue 12), each case as a test.

Each test here failed before its fix: a configuration typo that burnt the budget,
a graceful stop that used up the retry budget, permanent storage errors retried
as lost connections, unbounded YAML, tracebacks where one line was promised,
paths that escaped the runs folder.
"""

from __future__ import annotations

import time

import optuna
import yaml
from optuna.trial import TrialState
from support import REPO_ROOT, run_cli

from tuner.storage.record import StudyAttr, TrialAttr, TrialSystemAttr
from tuner.trial.lifecycle import budget_used


def smoke_data(**overrides) -> dict:
    """The smoke study, with fewer evaluation games, and ``overrides`` on top."""
    data = yaml.safe_load((REPO_ROOT / "studies" / "smoke.yaml").read_text())
    data["evaluation"]["games"] = 20
    data.update(overrides)
    return data


def write_study(path, data: dict):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2, no traceback, and a last stderr line that says what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


# --- 4. a configuration error does not burn the budget ----------------------------------


def test_a_configuration_error_stops_the_worker_and_spends_no_budget(runs, tmp_path):
    """A setting that passes the schema but cannot build the model (Adam has ``eps``, not
    ``epsilon``): the worker stops after two such trials with exit 2, the trials say
    "configuration error" (not "training diverged"), and once the file is fixed the
    study still has its whole budget."""
    ppo = {"n_steps": 64, "batch_size": 128, "n_epochs": 2}
    data = smoke_data(
        n_trials=2, ppo={**ppo, "policy_kwargs": {"optimizer_kwargs": {"epsilon": 1.0e-5}}}
    )
    path = write_study(tmp_path / "typo.yaml", data)
    result = run_cli("tune", str(path), runs_path=runs)
    assert_one_line_error(result, "configuration error", "epsilon", "fix the study file")

    url = f"sqlite:///{runs / 'optuna.db'}"
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    for t in trials:
        assert t.user_attrs[TrialAttr.CONFIG_ERROR] is True
        assert t.user_attrs[TrialAttr.FAIL_REASON].startswith(
            "configuration error: MaskablePPO cannot"
        )
        assert "diverged" not in t.user_attrs[TrialAttr.FAIL_REASON]
    assert budget_used(trials) == 0

    data["ppo"]["policy_kwargs"] = {"optimizer_kwargs": {"eps": 1.0e-5}}
    write_study(path, data)
    result = run_cli("tune", str(path), runs_path=runs)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == data["n_trials"] and budget_used(trials) == data["n_trials"]


# --- 7. bounded input, 8. one line instead of a traceback --------------------------------

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


def test_study_files_that_crashed_or_flooded_are_one_line_errors(runs, tmp_path, capsys):
    from tuner.cli import main

    cases = {
        "bomb.yaml": (ALIAS_BOMB.encode(), "aliases expand to more than"),
        "recursive.yaml": (b"a: &a [*a]\n", "recursive alias"),
        "latin1.yaml": ("study_name: caf\u00e9\n".encode("latin-1"), "expected UTF-8 text"),
        "huge.yaml": (
            b"study_name: big\ndescription: " + b"x" * (2 * 1024 * 1024) + b"\n",
            "expected a YAML file of at most",
        ),
        "long_description.yaml": (
            yaml.safe_dump(smoke_data(description="x" * 20_000)).encode(),
            "key 'description'",
        ),
        "dots.yaml": (yaml.safe_dump(smoke_data(study_name="..")).encode(), "can name files"),
    }
    db = tmp_path / "nothing.db"
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        code = main(["tune", str(path), "--storage", f"sqlite:///{db}"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (name, err)
    assert not db.exists(), "nothing is written for a bad file"


def test_bad_arguments_urls_and_storage_files_are_one_line_errors(runs, tmp_path, capsys):
    from tuner.cli import main

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database at all" * 100)
    cases = [
        (["tune", "smoke", "--threads", "0"], "--threads: expected an integer between 1"),
        (["tune", "smoke", "--n-trials", "-1"], "--n-trials: expected an integer >= 1"),
        (["tune", "smoke", "--timeout", "-5"], "--timeout: expected a number >= 0"),
        (["dashboard", "--port", "99999"], "--port: expected an integer between 0 and 65535"),
        (["evaluate", "x.zip", "--opponents", ","], "--opponents: expected a comma-separated"),
        (["evaluate", "x.zip", "--games", "0"], "--games: expected an integer >= 2"),
        (["status", "smoke", "--storage", "postgres://u@h/db"], "spells it postgresql://"),
        (["status", "smoke", "--storage", "postgresq://u@h/db"], "driver 'postgresq'"),
        (["status", "smoke", "--storage", "postgresql+psycopg3://u@h/db"], "not available"),
        (["status", "smoke", "--storage", "sqlite://runs/x.db"], "a SQLite URL has no host"),
        (["status", "smoke", "--storage", f"sqlite:///{corrupt}"], "file is not a database"),
        (["tune", "smoke", "--storage", f"sqlite:///{corrupt}"], "file is not a database"),
    ]
    for argv, message in cases:
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's errors exit from inside parse_args
            code = stop.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (argv, err)


def test_threads_from_the_environment_are_checked(runs):
    result = run_cli("tune", "smoke", runs_path=runs, KALAHA_TORCH_THREADS="abc")
    assert_one_line_error(result, "--threads", "'abc' (from $KALAHA_TORCH_THREADS)")
    assert not (runs / "optuna.db").exists()


# --- 6. permanent storage errors fail at once ---------------------------------------------


def test_a_storage_that_cannot_be_opened_fails_at_once(runs, tmp_path):
    """A path SQLite cannot open was retried for 120 s as a lost connection, then a
    traceback; now one line. The retry window is left long, so a retry would time out."""
    for url, message in [
        ("sqlite:////proc/optuna.db", "unable to open database file"),
        ("sqlite:////proc/kalaha/optuna.db", "cannot create the folder '/proc/kalaha'"),
    ]:
        result = run_cli(
            "tune", "smoke", "--storage", url, runs_path=runs, timeout=100,
            KALAHA_RETRY_SECONDS="600",
        )  # fmt: skip
        assert_one_line_error(result, message)


# --- 9. names cannot put files outside their folders ---------------------------------------


def test_a_study_name_from_the_database_cannot_escape_the_runs_folder(runs, tmp_path, capsys):
    from tuner.cli import main

    db = runs / "optuna.db"
    runs.mkdir(parents=True)
    optuna.create_study(study_name="../../escaped", storage=f"sqlite:///{db}")
    code = main(["report", "../../escaped", "--storage", f"sqlite:///{db}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot name a file" in err, err
    assert not (tmp_path / "escaped").exists() and not (runs.parent / "escaped").exists()


# --- 8. hand-edited export files -----------------------------------------------------------


def valid_export() -> dict:
    from tuner.commands.export import FORMAT
    from tuner.config.space import to_config
    from tuner.config.spec import parse_spec

    spec = parse_spec(smoke_data(), "smoke")
    config = to_config(spec, {"learning_rate": 1.0e-3, "gamma": 0.95, "net_arch": "tiny"})
    return {
        "format": FORMAT,
        "study": "smoke",
        "trial": 0,
        "ppo_kwargs": config.ppo_kwargs,
        "env_kwargs": config.env_kwargs,
        "budget": spec.budget.model_dump(),
        "evaluation": spec.evaluation.model_dump(),
        "seed": 0,
    }


def edited(path: str, value) -> dict:
    doc = valid_export()
    *parents, last = path.split(".")
    target = doc
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


EXPORT_EDITS = [
    ("ppo_kwargs", [1, 2], "ppo_kwargs"),
    ("ppo_kwargs", KeyError, "ppo_kwargs"),
    ("ppo_kwargs.policy_kwargs", {"ortho_int": False}, "ortho_int"),
    ("ppo_kwargs.policy_kwargs", {"activation_fn": "sigmoid"}, "activation_fn"),
    ("ppo_kwargs.gamma", float("inf"), "finite"),
    ("ppo_kwargs.lerning_rate", 0.1, "ppo_kwargs.lerning_rate: unknown setting"),
    ("ppo_kwargs.lr_schedule", "cosine", "lr_schedule"),
    ("ppo_kwargs.n_steps", "many", "MaskablePPO cannot be built"),
    ("env_kwargs.seeds", 99, "env_kwargs"),
    ("env_kwargs.opponent", ["minimax:0"], "an opponent is one of"),
    ("env_kwargs.colour", "red", "env_kwargs.colour: unknown env option"),
    ("budget.n_envs", 0, "budget.n_envs"),
    ("budget", "big", "budget"),
    ("evaluation.opponents", [], "evaluation.opponents"),
    ("seed", "abc", "seed"),
    ("seed", -1, "seed"),
    ("study", "../../etc", "study"),
    ("format", "other", "expected an export with format"),
]


def test_hand_edited_export_files_are_one_line_errors(runs, tmp_path, capsys):
    from tuner.cli import main

    for i, (key, value, message) in enumerate(EXPORT_EDITS):
        path = tmp_path / f"edit{i}.yaml"
        path.write_text(yaml.safe_dump(edited(key, value)))
        code = main(["train", str(path), "--timesteps", "64", "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (key, value, err)
    for content, message in [(b"- a list\n", "expected an export"), (b"\xff\xfe", "UTF-8")]:
        path = tmp_path / "raw.yaml"
        path.write_bytes(content)
        assert main(["train", str(path)]) == 2
        assert message in capsys.readouterr().err
    assert not (runs / "models").exists(), "no model is written for a bad export"


# --- 5. graceful stops do not use up the retry budget ---------------------------------------


def test_signal_stops_are_always_requeued_and_spend_no_retry(runs):
    """Three SIGTERMs on the same parameters (three scale-downs) used to drop them for
    good ("retried 2 times") and count their FAIL in the budget."""
    import os
    import signal

    from tuner.commands.worker import Worker
    from tuner.config.spec import parse_spec
    from tuner.storage.rdb import StorageSettings
    from tuner.trial.objective import TrialFailed

    spec = parse_spec(
        {
            "study_name": "stops",
            "n_trials": 1,
            "sampler": {"type": "random"},
            "pruner": {"type": "none"},
            "budget": {"total_timesteps": 8, "n_evaluations": 1},
            "search_space": {"gamma": {"type": "float", "low": 0.9, "high": 0.999}},
        },
        "test",
    )

    def stopped_by_sigterm(trial, _spec, *, should_stop, **_):
        trial.suggest_float("gamma", 0.9, 0.999)
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, handled by the worker
        deadline = time.monotonic() + 10
        while should_stop() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        raise TrialFailed(f"worker stopped: {should_stop()}")

    def finishes(trial, _spec, **_):
        return trial.suggest_float("gamma", 0.9, 0.999)

    url = f"sqlite:///{runs / 'stops.db'}"
    runs.mkdir(parents=True)
    settings = StorageSettings(max_retry=2)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(3):
            worker = Worker.open(
                spec, url, device="cpu", settings=settings, objective_fn=stopped_by_sigterm
            )
            assert worker.run().stopped_by == "SIGTERM"
        report = Worker.open(
            spec, url, device="cpu", settings=settings, objective_fn=finishes
        ).run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    trials = optuna.load_study(study_name="stops", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE]
    assert len({t.params["gamma"] for t in trials}) == 1, "the same parameters each time"
    assert trials[-1].system_attrs[TrialSystemAttr.STOPPED_BY_SIGNAL] == 3
    assert report.finished == [(3, "COMPLETE", trials[-1].value)]
    assert budget_used(trials) == spec.n_trials == 1


# --- 3. a changed study file is compared with the stored one --------------------------------


def test_a_changed_study_file_is_refused_or_recorded(runs, tmp_path, capsys):
    from tuner.cli import main

    url = f"sqlite:///{runs / 'optuna.db'}"
    data = smoke_data()
    path = write_study(tmp_path / "smoke.yaml", data)

    def create(*flags: str) -> tuple[int, str]:
        code = main(["create", str(path), "--storage", url, *flags])
        return code, capsys.readouterr().err.strip()

    assert create() == (0, "")
    assert create() == (0, ""), "the same file goes on"

    # Comparable: a larger budget and a new description are allowed, and recorded.
    data = {**data, "n_trials": 9, "description": "more trials"}
    write_study(path, data)
    assert create() == (0, "")
    study = optuna.load_study(study_name="smoke", storage=url)
    assert (
        study.user_attrs[StudyAttr.N_TRIALS] == 9
        and study.user_attrs[StudyAttr.SPEC]["n_trials"] == 9
    )
    (record,) = study.user_attrs[StudyAttr.SPEC_CHANGES]
    assert "n_trials: 6 -> 9" in record["changes"] and not record["accepted_by_flag"]

    # Not comparable: a changed search space, or a smaller budget, is refused by name.
    space = {**data["search_space"], "gamma": {"type": "float", "low": 0.9, "high": 0.99}}
    for changed, named in [
        ({**data, "search_space": space}, "search_space.gamma.high: 0.999 -> 0.99"),
        ({**data, "n_trials": 3}, "n_trials: 9 -> 3"),
    ]:
        write_study(path, changed)
        code, err = create()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert named in err and "new study_name" in err and "--accept-changes" in err, err
    assert (
        optuna.load_study(study_name="smoke", storage=url).user_attrs[StudyAttr.SPEC]["n_trials"]
        == 9
    )

    # The explicit flag goes on and records what changed.
    write_study(path, {**data, "search_space": space})
    assert create("--accept-changes") == (0, "")
    study = optuna.load_study(study_name="smoke", storage=url)
    last = study.user_attrs[StudyAttr.SPEC_CHANGES][-1]
    assert last["accepted_by_flag"] and last["changes"] == [
        "search_space.gamma.high: 0.999 -> 0.99"
    ]
    assert study.user_attrs[StudyAttr.SPEC]["search_space"]["gamma"]["high"] == 0.99


# --- 10. the smaller ones ---------------------------------------------------------------------


def test_minimax_deeper_than_the_cap_is_refused_before_it_hangs(runs, tmp_path, capsys):
    """minimax:99 searched forever in an evaluation and in ``tuner evaluate``."""
    from env.opponents import MAX_MINIMAX_DEPTH, make_opponent
    from tuner.cli import main

    assert make_opponent(f"minimax:{MAX_MINIMAX_DEPTH}").depth == MAX_MINIMAX_DEPTH
    data = smoke_data()
    data["evaluation"]["opponents"] = ["random", "minimax:99"]
    path = write_study(tmp_path / "deep.yaml", data)
    assert main(["tune", str(path), "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert f"between 1 and {MAX_MINIMAX_DEPTH}" in capsys.readouterr().err


def test_a_signal_during_study_creation_waits_until_its_spec_is_recorded(runs, monkeypatch):
    """Ctrl-C right after the study row was written used to leave it without its spec."""
    import os
    import signal

    import pytest

    from tuner.config.spec import parse_spec
    from tuner.config.study import create_study
    from tuner.storage.rdb import make_storage

    storage = make_storage(f"sqlite:///{runs / 'optuna.db'}")
    create_new_study = storage.create_new_study

    def created_then_interrupted(*args, **kwargs):
        study_id = create_new_study(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, right after the row exists
        return study_id

    monkeypatch.setattr(storage, "create_new_study", created_then_interrupted)
    spec = parse_spec(smoke_data(), "smoke")
    with pytest.raises(KeyboardInterrupt):  # delivered, once the spec is recorded
        create_study(spec, storage)
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{runs / 'optuna.db'}")
    assert study.user_attrs[StudyAttr.SPEC] == spec.model_dump(mode="json")
