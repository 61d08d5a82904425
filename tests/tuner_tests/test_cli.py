"""The command line (tuner/cli.py): every command README names; a user's mistake is one
line and exit code 2, never a traceback, also from a real process, while a bug keeps its
traceback; and a worker's torch threads."""

from __future__ import annotations

import pytest
import yaml
from support import run_cli

import tuner.cli
from tuner.base.settings import Settings
from tuner.cli import build_parser, main

# The commands README and the Makefile name.
COMMANDS = [
    "tune",
    "create",
    "status",
    "export",
    "verify",
    "train",
    "evaluate",
    "play",
    "report",
    "ladder",
    "dashboard",
    "save",
    "load",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_documented_command_has_its_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([command, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: tuner {command}")


def test_an_unknown_command_or_flag_is_one_line_pointing_to_the_help(capsys):
    for argv in (["fly"], ["status", "smoke", "--colour", "red"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1, err
        assert err.startswith("error: tuner") and err.endswith("--help`"), err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["evaluate", "m.zip", "--seeds", "5"], "--seeds is now --stones (stones per pit)"),
        (["play", "m.zip", "--seeds", "5"], "--seeds is now --stones (stones per pit)"),
        (["verify", "smoke", "--seeds", "2"], "--seeds is now --fresh-seeds S"),
    ],
)
def test_a_renamed_flag_names_its_new_name(capsys, argv, expected):
    """One meaning per word: --seeds was stones per pit in evaluate and play, fresh seeds in
    verify; the old flag is one line that says which new one to use, exit 2."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and expected in err and err.count("\n") == 1, err


def test_a_users_mistake_inside_a_command_is_one_line(runs, tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1


def test_a_bug_keeps_its_traceback_and_ctrl_c_exits_130(runs, monkeypatch, capsys):
    """Only a user's mistake (and a database that cannot be opened) is turned into one line."""

    def buggy(args, settings):
        raise ZeroDivisionError("a bug in the tuner")

    def interrupted(args, settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuner.cli, "cmd_status", buggy)
    with pytest.raises(ZeroDivisionError):
        main(["status", "smoke"])
    monkeypatch.setattr(tuner.cli, "cmd_status", interrupted)
    assert main(["status", "smoke"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


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
