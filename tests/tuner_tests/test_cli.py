"""The command line (tuner/cli.py): bad arguments are one line and exit code 2, never a
traceback, also from a real process; and a worker's torch threads."""

from __future__ import annotations

import pytest
import yaml
from support import run_cli

from tuner.base.settings import Settings
from tuner.cli import main


@pytest.mark.slow
def test_a_bad_study_file_exits_2_without_a_traceback_as_a_process(tmp_path, runs, tiny_spec):
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


def test_one_torch_thread_per_worker_by_default(monkeypatch):
    import torch

    from tuner.cli import _thread_count, _threads, build_parser

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("KALAHA_TORCH_THREADS", raising=False)
        args = build_parser().parse_args(["tune", "smoke"])
        threads = _thread_count(args, Settings.from_env())
        _threads(threads)
        assert threads == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("KALAHA_TORCH_THREADS", "2")
        args = build_parser().parse_args(["tune", "smoke"])
        threads = _thread_count(args, Settings.from_env())
        _threads(threads)
        assert threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- hardening (issue 12) ----------------------------------------------------------------


def test_bad_arguments_urls_and_storage_files_are_one_line_errors(runs, tmp_path, capsys):
    """Hardening (issue 12): tracebacks where one line was promised. Out-of-range flags,
    storage URLs with a misspelt scheme or driver, and a file that is not a database:
    each is one line naming what was expected, with exit code 2."""
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
