"""A study moved between machines (tuner/storage/transfer.py, `tuner save` / `tuner load`):
saved to a SQLite file and loaded into another storage, with every trial's attrs,
intermediate values and artifact references; bad input is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.artifacts import download_artifact, upload_artifact
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tuner.base.runs import artifact_store, artifacts_dir
from tuner.cli import main
from tuner.storage.record import TrialAttr

SPEC = {"study_name": "moved", "budget": {"total_timesteps": 3000}}


def _comparable(trial: optuna.trial.FrozenTrial) -> tuple:
    return (
        trial.number,
        trial.state,
        trial.values,
        trial.params,
        trial.distributions,
        trial.intermediate_values,
        trial.user_attrs,
        trial.system_attrs,
        trial.datetime_start,
        trial.datetime_complete,
    )


def _build(url: str, runs: Path, tmp_path: Path) -> optuna.Study:
    """A study mid-sitting: complete (with a model artifact), pruned, failed and running
    trials, study attrs, and a companion of verify jobs."""
    study = optuna.create_study(study_name="moved", storage=url, direction="maximize")
    study.set_user_attr("spec", SPEC)
    study._storage.set_study_system_attr(study._study_id, "sampler_seed", 7)
    trial = study.ask({"learning_rate": FloatDistribution(1e-4, 1e-2, log=True)})
    for step, value in ((1000, 0.2), (2000, 0.4), (3000, 0.6)):
        trial.report(value, step)
    model = tmp_path / "model.zip"
    model.write_bytes(b"weights of trial 0")
    artifact_id = upload_artifact(
        artifact_store=artifact_store(artifacts_dir(runs)),
        file_path=str(model),
        study_or_trial=trial,
    )
    trial.set_user_attr(TrialAttr.MODEL_ARTIFACT_ID, artifact_id)
    trial.set_user_attr(TrialAttr.SCORES, {"random": 0.9, "greedy": 0.6})
    study.tell(trial, 0.6)
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"learning_rate": 1e-3},
            distributions={"learning_rate": FloatDistribution(1e-4, 1e-2, log=True)},
            intermediate_values={1000: 0.1},
            user_attrs={TrialAttr.PRUNE_REASON: "below the median"},
            system_attrs={"retry_of": 0},
        )
    )
    study.tell(study.ask(), state=TrialState.FAIL)
    running = study.ask()
    running.report(0.3, 1000)  # a worker on it when the sitting ended
    verify = optuna.create_study(study_name="moved:verify", storage=url)
    verify.add_trial(create_trial(value=0.5, user_attrs={"verify_of": 0}))
    return study


def _moved_intact(before: optuna.Study, url: str, name: str = "moved") -> optuna.Study:
    after = optuna.load_study(study_name=name, storage=url)
    assert after.directions == before.directions
    assert after.user_attrs == before.user_attrs == {"spec": SPEC}
    assert after._storage.get_study_system_attrs(after._study_id)["sampler_seed"] == 7
    assert [_comparable(t) for t in after.get_trials()] == [
        _comparable(t) for t in before.get_trials()
    ]
    states = [t.state for t in after.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING]
    verify = optuna.load_study(study_name=f"{name}:verify", storage=url)
    assert verify.trials[0].user_attrs == {"verify_of": 0}, "the companion moves with it"
    return after


def _check_artifact(study: optuna.Study, runs: Path, tmp_path: Path) -> None:
    """The model's reference survived: with the artifact folder copied, it downloads."""
    trial = study.trials[0]
    assert any(k.startswith("artifacts:") for k in trial.system_attrs), "Optuna's own reference"
    out = tmp_path / "downloaded.zip"
    download_artifact(
        artifact_store=artifact_store(artifacts_dir(runs)),
        file_path=str(out),
        artifact_id=trial.user_attrs[TrialAttr.MODEL_ARTIFACT_ID],
    )
    assert out.read_bytes() == b"weights of trial 0"


def test_a_study_moves_from_sqlite_to_sqlite_intact(runs, tmp_path, capsys):
    old = f"sqlite:///{tmp_path / 'old.db'}"
    before = _build(old, runs, tmp_path)
    saved = tmp_path / "docs" / "study.sqlite3"
    assert main(["save", "moved", "--to", str(saved), "--storage", old]) == 0
    out, err = capsys.readouterr()
    assert f"saved 'moved', 'moved:verify' (5 trials) to {saved}" in out
    assert "1 trial(s) were RUNNING" in err and "1 trial(s) refer to a model" in err
    assert not saved.with_name(saved.name + ".tmp").exists()

    new = f"sqlite:///{tmp_path / 'new.db'}"
    assert main(["load", str(saved), "--storage", new]) == 0
    out, _ = capsys.readouterr()
    assert "loaded 'moved', 'moved:verify' (5 trials)" in out and "tuner tune moved" in out
    after = _moved_intact(before, new)
    _check_artifact(after, runs, tmp_path)

    # A second sitting: the study grew; saving again needs --force and replaces the copy.
    before.add_trial(create_trial(value=0.7))
    assert main(["save", "moved", "--to", str(saved), "--storage", old]) == 2
    assert "already holds the study 'moved'; pass --force" in capsys.readouterr().err
    assert main(["save", "moved", "--to", str(saved), "--storage", old, "--force"]) == 0
    assert len(optuna.load_study(study_name="moved", storage=f"sqlite:///{saved}").trials) == 5

    # Beside the loaded one, under another name; never over it.
    assert main(["load", str(saved), "moved", "--storage", new]) == 2
    assert "already has a study named 'moved'" in capsys.readouterr().err
    assert main(["load", str(saved), "moved", "--storage", new, "--as", "moved_b"]) == 0
    assert len(optuna.load_study(study_name="moved_b", storage=new).trials) == 5


def test_bad_input_is_one_line_and_exit_code_2(runs, tmp_path, capsys):
    old = f"sqlite:///{tmp_path / 'old.db'}"
    _build(old, runs, tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    saved = tmp_path / "study.sqlite3"
    cases = [
        (["save", "nope", "--to", str(saved), "--storage", old], "no study named 'nope'"),
        (["save", "moved", "--to", str(tmp_path / "old.db"), "--storage", old], "own storage"),
        (["save", "moved", "--to", str(text), "--storage", old], "not a SQLite file"),
        (["save", "moved", "--to", str(tmp_path), "--storage", old], "it is a folder"),
        (["load", str(tmp_path / "missing.sqlite3"), "--storage", old], "no such file"),
        (["load", str(text), "--storage", old], "not a SQLite file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    with pytest.raises(SystemExit) as stop:
        main(["save", "moved", "--storage", old])
    assert stop.value.code == 2
    assert "the following arguments are required: --to" in capsys.readouterr().err
    assert main(["save", "moved", "--to", str(saved), "--storage", old]) == 0
    optuna.create_study(study_name="other", storage=f"sqlite:///{saved}")
    capsys.readouterr()
    new = f"sqlite:///{tmp_path / 'new.db'}"
    for argv, message in [
        (["load", str(saved), "--storage", new], "holds 2 studies ['moved', 'other']; name"),
        (["load", str(saved), "nope", "--storage", new], "holds no study named 'nope'"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert not text.with_name("notes.txt.tmp").exists(), "nothing written for an error"


@pytest.mark.postgres
def test_a_study_moves_from_postgresql_to_a_fresh_postgresql(pg_url, runs, tmp_path, capsys):
    """The case it is for: a study on one machine's PostgreSQL, saved, and loaded into the
    empty PostgreSQL of the next machine (each its own database here)."""
    from conftest import PG_BASE
    from pgadmin import create_database, drop_database, unique_name

    second = unique_name("kalaha_test")
    new = create_database(PG_BASE, second)
    try:
        before = _build(pg_url, runs, tmp_path)
        saved = tmp_path / "study.sqlite3"
        assert main(["save", "moved", "--to", str(saved), "--storage", pg_url]) == 0
        assert main(["load", str(saved), "--storage", new]) == 0
        _check_artifact(_moved_intact(before, new), runs, tmp_path)
        assert "loaded 'moved', 'moved:verify' (5 trials)" in capsys.readouterr().out
    finally:
        drop_database(PG_BASE, second)
