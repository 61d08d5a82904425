"""Settings: every environment variable read once, by ``Settings.from_env``, in ``cli.main``.

A bad value is one line naming the variable, what was expected and what was found,
and exit code 2, for every command (also one that does not use the setting).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO_ROOT, assert_one_line_error, run_cli

from tuner.base.errors import UserError
from tuner.base.settings import Settings, StorageSettings
from tuner.cli import main

VARIABLES = [
    "OPTUNA_STORAGE",
    "KALAHA_RUNS",
    "KALAHA_STUDIES",
    "KALAHA_DEVICE",
    "KALAHA_TORCH_THREADS",
    "WORKER_INDEX",
    "KALAHA_HEARTBEAT_INTERVAL",
    "KALAHA_GRACE_PERIOD",
    "KALAHA_MAX_RETRY",
    "KALAHA_POOL_SIZE",
    "KALAHA_CONNECT_ATTEMPTS",
    "KALAHA_RETRY_SECONDS",
]


def test_an_empty_environment_gives_the_documented_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.storage == StorageSettings()
    assert settings.runs_dir == Path("runs") and settings.studies_dir == Path("studies")
    assert (settings.device, settings.torch_threads, settings.worker_index) == ("auto", 1, None)
    assert settings.storage_url_for(None) == "sqlite:///runs/optuna.db"


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "OPTUNA_STORAGE": "postgresql+psycopg2://u@h/db",
            "KALAHA_RUNS": "/data/runs",
            "KALAHA_STUDIES": "/data/studies",
            "KALAHA_DEVICE": "cuda:1",
            "KALAHA_TORCH_THREADS": "2",
            "WORKER_INDEX": "3",
            "KALAHA_HEARTBEAT_INTERVAL": "5",
            "KALAHA_GRACE_PERIOD": "30",
            "KALAHA_MAX_RETRY": "0",
            "KALAHA_POOL_SIZE": "4",
            "KALAHA_CONNECT_ATTEMPTS": "8",
            "KALAHA_RETRY_SECONDS": "300",
        }
    )
    assert settings.storage_url == "postgresql+psycopg2://u@h/db"
    assert settings.runs_dir == Path("/data/runs")
    assert settings.studies_dir == Path("/data/studies")
    assert (settings.device, settings.torch_threads, settings.worker_index) == ("cuda:1", 2, 3)
    assert settings.storage == StorageSettings(
        heartbeat_interval=5,
        grace_period=30,
        max_retry=0,
        pool_size=4,
        connect_attempts=8,
        retry_seconds=300,
    )


def test_the_storage_url_is_the_flag_then_the_variable_then_the_runs_folder():
    settings = Settings.from_env({"KALAHA_RUNS": "/r"})
    assert settings.storage_url_for(None) == "sqlite:////r/optuna.db"
    assert settings.storage_url_for("sqlite:///x.db") == "sqlite:///x.db"
    with_url = Settings.from_env({"OPTUNA_STORAGE": "sqlite:///env.db", "KALAHA_RUNS": "/r"})
    assert with_url.storage_url_for(None) == "sqlite:///env.db"
    assert with_url.storage_url_for("sqlite:///flag.db") == "sqlite:///flag.db"


def test_an_empty_variable_is_unset():
    """Compose writes ``VAR: ${VAR:-}``-style empty values; they mean the default."""
    assert Settings.from_env({name: "" for name in VARIABLES}) == Settings()


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("KALAHA_TORCH_THREADS", "abc", "--threads: expected an integer between 1 and 1024"),
        ("KALAHA_TORCH_THREADS", "0", "--threads: expected an integer between 1 and 1024"),
        ("WORKER_INDEX", "-1", "--worker-index: expected an integer >= 0"),
        ("WORKER_INDEX", "one", "--worker-index: expected an integer >= 0"),
        ("KALAHA_DEVICE", "gpu", "--device: expected auto, cpu, cuda or cuda:N"),
        ("KALAHA_HEARTBEAT_INTERVAL", "0", "heartbeat interval (seconds): expected an integer"),
        (
            "KALAHA_GRACE_PERIOD",
            "1.5",
            "heartbeat grace period (seconds): expected an integer between 1 and 86400",
        ),
        ("KALAHA_MAX_RETRY", "-1", "retries of a dead trial: expected an integer >= 0"),
        ("KALAHA_POOL_SIZE", "0", "connection pool size: expected an integer >= 1"),
        ("KALAHA_CONNECT_ATTEMPTS", "x", "connection attempts at start: expected an integer"),
        ("KALAHA_RETRY_SECONDS", "2m", "storage retry window (seconds): expected an integer"),
    ],
)
def test_a_bad_value_names_the_variable_what_was_expected_and_found(name, raw, expected):
    with pytest.raises(UserError) as caught:
        Settings.from_env({name: raw})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(expected), message
    assert f"but got {raw!r} (from ${name})" in message
    assert f"set {name} to " in message and "or unset it" in message, "how to fix it"


@pytest.mark.parametrize("command", [["status", "smoke"], ["play", "x.zip"], ["ladder"]])
def test_every_command_checks_every_variable_up_front(command, runs, monkeypatch, capsys):
    """Even a command that uses no storage or threads: one line, exit 2, nothing run."""
    monkeypatch.setenv("KALAHA_POOL_SIZE", "many")
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: connection pool size: expected an integer >= 1")
    assert "'many' (from $KALAHA_POOL_SIZE)" in err
    assert not runs.exists(), "nothing was written"


def test_torch_threads_abc_for_status_is_one_line_not_a_traceback(runs):
    """The issue's example: status uses no threads, yet the bad value is named, once."""
    result = run_cli("status", "smoke", runs_path=runs, KALAHA_TORCH_THREADS="abc")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --threads: expected an integer between 1 and 1024")
    assert "'abc' (from $KALAHA_TORCH_THREADS)" in line


def test_a_flag_wins_over_its_variable(monkeypatch):
    from tuner.cli import _device, _thread_count, build_parser

    monkeypatch.setenv("KALAHA_TORCH_THREADS", "2")
    monkeypatch.setenv("KALAHA_DEVICE", "cuda")
    settings = Settings.from_env()
    args = build_parser().parse_args(["train", "x", "--threads", "3", "--device", "cpu"])
    assert (_thread_count(args, settings), _device(args, settings)) == (3, "cpu")
    args = build_parser().parse_args(["train", "x"])
    assert (_thread_count(args, settings), _device(args, settings)) == (2, "cuda")


def test_study_names_are_looked_up_in_kalaha_studies(runs, tmp_path, monkeypatch, capsys):
    """``STUDIES_DIR`` no longer has to be the working directory's ``studies``."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "mine.yaml").write_text("study_name: mine\n")
    monkeypatch.setenv("KALAHA_STUDIES", str(folder))
    assert main(["create", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'nope.yaml'}" in err and "expected one of ['mine']" in err


@pytest.mark.slow
def test_importing_the_tuner_installs_no_warning_filter():
    """No side effects at import: the CLI installs its filter in ``main`` (the libraries
    the tuner imports add their own filters, so the test looks for the tuner's)."""
    code = (
        "import warnings; import tuner.commands.worker, tuner.cli, tuner.storage.rdb, tuner.trial.objective; "
        "ours = [f for f in warnings.filters if f[1] is not None and 'Heartbeat' in f[1].pattern]; "
        "assert not ours, ours"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_storage_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KALAHA_GRACE_PERIOD", "7")
    monkeypatch.setenv("KALAHA_HEARTBEAT_INTERVAL", "2")  # a grace of 7 s is 3 beats of 2 s
    assert Settings.from_env().storage.grace_period == 7


def test_threads_from_the_environment_are_checked(runs):
    """Hardening (issue 12): tracebacks where one line was promised. A thread count from
    the environment that is not a number is one line naming the variable, and nothing
    is written."""
    result = run_cli("tune", "smoke", runs_path=runs, KALAHA_TORCH_THREADS="abc")
    assert_one_line_error(result, "--threads", "'abc' (from $KALAHA_TORCH_THREADS)")
    assert not (runs / "optuna.db").exists()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        # Hardening (issue 25): a beat every 90 s against a grace of 60 s made two live
        # workers fail 4 of 7 running trials as stale.
        (
            {"KALAHA_HEARTBEAT_INTERVAL": "90", "KALAHA_GRACE_PERIOD": "60"},
            "heartbeat grace period (seconds): expected at least 3 heartbeat intervals",
        ),
        ({"KALAHA_HEARTBEAT_INTERVAL": "30"}, "(3 * 30 = 90), but got 60"),
        # A huge interval killed the heartbeat thread with an OverflowError.
        (
            {"KALAHA_HEARTBEAT_INTERVAL": "99999999999999999999"},
            "heartbeat interval (seconds): expected an integer between 1 and 3600",
        ),
        (
            {"KALAHA_GRACE_PERIOD": "99999999999999999999"},
            "heartbeat grace period (seconds): expected an integer between 1 and 86400",
        ),
        (
            {"KALAHA_RETRY_SECONDS": "99999999999999999999"},
            "storage retry window (seconds): expected an integer between 0 and 86400",
        ),
    ],
)
def test_settings_that_contradict_each_other_or_overflow_are_refused(
    variables, expected, runs, monkeypatch, capsys
):
    """One line naming the variables, exit 2, before any command runs."""
    with pytest.raises(UserError) as caught:
        Settings.from_env(variables)
    assert str(caught.value).startswith(expected) or expected in str(caught.value), caught.value
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main(["status", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not runs.exists()
    assert Settings.from_env({"KALAHA_HEARTBEAT_INTERVAL": "20"}).storage.heartbeat_interval == 20
