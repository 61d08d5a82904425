"""Where a study's files live (tuner/base/runs.py): below the runs folder, never outside it."""

from __future__ import annotations

import optuna

from tuner.cli import main

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
