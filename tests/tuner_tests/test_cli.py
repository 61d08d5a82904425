"""The command line (tuner/cli.py): every command README names; a user's mistake is one
line and exit code 2, never a traceback, also from a real process, while a bug keeps its
traceback; and a worker's torch threads."""

from __future__ import annotations

import signal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import run_cli

import tuner.cli
from tuner.base.errors import UserError
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
        (["evaluate", "x.zip", "--games", "0"], "--games: expected an integer between 2 and"),
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


# --- hardening, third round (issue 25): bounds on every size and seed ---------------------


def _run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's errors exit from inside parse_args
        return int(stop.code or 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "x.zip", "--games", "1000000000"], "--games: expected an integer between"),
        (["evaluate", "x.zip", "--games", "7"], "--games: expected an even number of games"),
        (["evaluate", "x.zip", "--seed", "-1"], "--seed: expected an integer between 0 and"),
        (["evaluate", "x.zip", "--opening-plies", "999"], "--opening-plies: expected an integer"),
        (["ladder", "--games", "10000000", "--out", "l.yaml"], "--games: expected an integer"),
        (["ladder", "--opening-plies", "-1", "--out", "l.yaml"], "--opening-plies: expected"),
        (["ladder", "--opening-plies", "500", "--out", "l.yaml"], "--opening-plies: expected"),
        (["ladder", "--seed", "-3", "--out", "l.yaml"], "--seed: expected an integer between"),
        (["train", "x.yaml", "--seed", str(2**32)], "--seed: expected an integer between 0"),
        (["verify", "smoke", "--fresh-seeds", "50000"], "--fresh-seeds: expected an integer"),
        (["verify", "smoke", "--top", "100000"], "--top: expected an integer between 1"),
        (["verify", "smoke", "--timeout", "nan"], "--timeout: expected a number >= 0"),
        (["solve", "--jobs", "100000"], "--jobs: expected an integer between 1"),
    ],
)
def test_sizes_and_seeds_out_of_bounds_are_refused_before_any_work(runs, capsys, argv, message):
    assert _run_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not runs.exists()


def test_a_rating_on_another_game_than_the_ladders_is_refused(runs, tmp_path, capsys):
    """The ladder was measured with 4 stones per pit: a rating with 6 would mean nothing."""
    argv = ["evaluate", str(tmp_path / "x.zip"), "--rating", "--stones", "6"]
    assert _run_main(argv) == 2
    err = capsys.readouterr().err
    assert "measured with 4 stones per pit, so expected --stones 4, but got 6" in err


def test_ladder_refuses_to_replace_the_committed_file_and_checks_out_first(
    runs, tmp_path, capsys, monkeypatch
):
    """`tuner ladder` writes --out, or the committed file only with --force and enough games;
    an --out that cannot be written is refused before the round robin, nothing written."""
    from tuner.strength import ladder

    played: list[int] = []
    monkeypatch.setattr(ladder, "round_robin", lambda games, **_: played.append(games))
    committed = ladder.LADDER_FILE.read_bytes()
    (tmp_path / "file").write_text("x")
    cases = [
        (["ladder", "--games", "2"], "expected --out PATH (or --force"),
        (["ladder", "--games", "2", "--force"], "expected at least 100 games per pairing"),
        (["ladder", "--out", str(tmp_path)], "expected a file to write, but got"),
        (["ladder", "--out", str(tmp_path / "file" / "l.yaml")], "is not a folder"),
    ]
    for argv, message in cases:
        assert _run_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert played == []
    assert ladder.LADDER_FILE.read_bytes() == committed


def test_trials_csv_to_a_directory_is_one_line_and_leaves_no_tmp(runs, tmp_path, capsys):
    from tuner.base.files import write_atomic

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match="expected a file that can be written"):
        write_atomic(out, "a,b\n")
    assert list(tmp_path.glob("*.tmp")) + list(tmp_path.glob(".*.tmp")) == []


# --- a fuzz test: hostile argument values, every cheap command ---------------------------

_HOSTILE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        ["", " ", "-0", "nan", "inf", "-inf", "1e9", "0x10", "²", "٣", "9" * 5000, "1_000"]
    ),
    st.text(max_size=12),
)
_COMMANDS = {
    "evaluate": ["--games", "--seed", "--opening-plies", "--stones", "--trial", "--threads"],
    "ladder": ["--games", "--seed", "--opening-plies"],
    "verify": ["--top", "--fresh-seeds", "--timeout", "--worker-index"],
    "train": ["--seed", "--timesteps", "--save-every"],
    "tune": ["--n-trials", "--timeout", "--worker-index", "--threads"],
    "play": ["--seat", "--stones"],
    "solve": ["--jobs"],
    "report": ["--top"],
}


def _fuzz_argv(command: str, flags: dict[str, str], tmp: str) -> list[str]:
    """A command whose work is refused or found missing fast, whatever the flags are."""
    missing = f"{tmp}/missing"
    head = {
        "evaluate": ["evaluate", f"{missing}.zip", "--opponents", "random", "--rating"],
        "ladder": ["ladder", "--out", tmp],  # a directory: refused before a game is played
        "verify": ["verify", "nosuch", "--storage", f"sqlite:///{missing}.db"],
        "train": ["train", f"{missing}.yaml"],
        "tune": ["tune", f"{missing}.yaml"],
        "play": ["play", f"{missing}.zip"],
        "solve": ["solve", f"{missing}.jsonl"],
        "report": ["report", "nosuch", "--storage", f"sqlite:///{missing}.db"],
    }[command]
    return [*head, *(x for flag, value in flags.items() for x in (f"{flag}={value}",))]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_argument_values_give_one_line_never_a_traceback(data, runs, tmp_path, capsys):
    """Any value of any bounded flag of the cheap commands: exit 2 with one line on stderr
    (or the command's own "missing" line), in well under a second, never a traceback."""
    command = data.draw(st.sampled_from(sorted(_COMMANDS)))
    flags = data.draw(
        st.dictionaries(st.sampled_from(_COMMANDS[command]), _HOSTILE, min_size=1, max_size=3)
    )
    argv = _fuzz_argv(command, flags, str(tmp_path))

    def too_slow(signum, frame):
        raise TimeoutError(f"{argv} ran past 10 s")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(10)
    try:
        code = _run_main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    assert code == 2, (argv, code, out, err)
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), (
        argv,
        err,
    )
    assert not runs.exists() or not any(runs.rglob("*.tmp")), argv
