"""Where a study's files live (tuner/base/runs.py): below the runs folder, never outside it."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tuner.base.errors import UserError
from tuner.base.runs import artifact_store, confined, name_part, tensorboard_dir
from tuner.cli import main

ESCAPES = ["", ".", "..", "a/b", "../x", "a\\b", "nul\0byte", "x" * 201, None]


@pytest.mark.parametrize("name", ESCAPES, ids=repr)
def test_a_name_that_is_not_one_path_component_is_refused(name) -> None:
    with pytest.raises(UserError, match="cannot name a file: expected letters, digits"):
        name_part(name)


@pytest.mark.parametrize("name", ["smoke", "net_arch.v2", "a-b", "..a", "x" * 200])
def test_a_plain_name_is_kept_as_it_is(name: str) -> None:
    assert name_part(name) == name


def test_every_folder_below_the_runs_folder_checks_its_names(tmp_path: Path) -> None:
    assert confined(tmp_path, "reports", "smoke") == tmp_path / "reports" / "smoke"
    assert tensorboard_dir(tmp_path, "smoke") == tmp_path / "tensorboard" / "smoke"
    with pytest.raises(UserError, match=r"'\.\.' cannot name a file"):
        confined(tmp_path, "reports", "..")
    with pytest.raises(UserError, match="study name"):
        tensorboard_dir(tmp_path, "../up")


def test_the_artifact_store_creates_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "artifacts"
    artifact_store(folder)
    assert folder.is_dir()


# --- hardening (issue 12): names cannot put files outside their folders ----------------------


def test_a_study_name_from_the_database_cannot_escape_the_runs_folder(runs, tmp_path, capsys):
    """Hardening (issue 12): paths escaped the runs folder. Any Optuna client can name a
    study ``../../escaped``; its report would have been written two folders up."""
    db = runs / "optuna.db"
    runs.mkdir(parents=True)
    optuna.create_study(study_name="../../escaped", storage=f"sqlite:///{db}")
    code = main(["report", "../../escaped", "--storage", f"sqlite:///{db}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot name a file" in err, err
    assert not (tmp_path / "escaped").exists() and not (runs.parent / "escaped").exists()
