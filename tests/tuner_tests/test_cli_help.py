"""The command line's own help: every option explained, examples that are real commands,
``--version``, near misses answered with "did you mean", and a finished study that says
so instead of "0 trials"."""

from __future__ import annotations

import argparse
import csv
import io
import shlex
from pathlib import Path

import pytest
import yaml
from fault_support import FAULTS
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial
from support import run_cli

from env.options import (
    DEFAULT_EVAL_GAMES,
    DEFAULT_OPENING_PLIES,
    DEFAULT_STONES,
    MAX_OPENING_PLIES,
    MAX_STONES,
    MIN_STONES,
)
from tuner import cli
from tuner.cli import build_parser, main
from tuner.config.loading import load_spec, parse_spec
from tuner.config.study import create_study
from tuner.storage.rdb import make_storage
from tuner.storage.record import TrialAttr


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_argument_of_every_command_has_help():
    missing = [
        f"{name} {action.dest}"
        for name, parser in subparsers().items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert not missing, missing
    texts = [a.help for p in subparsers().values() for a in p._actions if a.help]
    assert not [t for t in texts if "env." in t], "an internal name as a default"


def test_the_defaults_help_states_are_the_games():
    assert (cli.DEFAULT_EVAL_GAMES, cli.DEFAULT_OPENING_PLIES, cli.DEFAULT_STONES) == (
        DEFAULT_EVAL_GAMES,
        DEFAULT_OPENING_PLIES,
        DEFAULT_STONES,
    )
    assert (cli.MAX_OPENING_PLIES, cli.MIN_STONES, cli.MAX_STONES) == (
        MAX_OPENING_PLIES,
        MIN_STONES,
        MAX_STONES,
    )
    games = next(a for a in subparsers()["evaluate"]._actions if a.dest == "games")
    assert f"default {DEFAULT_EVAL_GAMES}" in games.help


def test_every_command_has_examples_that_parse():
    """Each epilog's examples are commands of this CLI, with flags it accepts."""
    parser = build_parser()
    commands = {"main": parser, **subparsers()}
    for name, sub in commands.items():
        assert sub.epilog and sub.epilog.startswith("examples:"), name
        for line in sub.epilog.splitlines()[1:]:
            for command in line.split("#")[0].split("&&"):
                argv = shlex.split(command.split(">")[0])
                assert argv[0] == "tuner", line
                if argv[1:] != ["COMMAND", "--help"]:
                    parser.parse_args(argv[1:])  # exits (fails the test) on a bad flag
                if name != "main":
                    assert argv[1] == name, (name, line)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("tuner ") and len(out.split()) >= 2, out


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """A SQLite storage holding the faults study (n_trials 1), its one trial done."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    data = yaml.safe_load(Path(FAULTS).read_text())
    data["n_trials"] = 1
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    spec = parse_spec(data)
    study = create_study(spec, make_storage(url))
    study.add_trial(
        create_trial(
            value=0.5,
            params={"learning_rate": 1e-4, "gamma": 0.95, "net_arch": "tiny"},
            distributions={
                "learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
                "gamma": FloatDistribution(0.9, 0.999),
                "net_arch": CategoricalDistribution(["tiny", "small"]),
            },
            user_attrs={
                TrialAttr.TIMESTEPS: 2048,
                TrialAttr.EVAL_RESULTS: {
                    "random": {"score": 0.75, "ci_low": 0.6, "ci_high": 0.86, "games": 40}
                },
            },
        )
    )
    rating = {"rating": 612.0, "low": 580.5, "high": 650.0}
    study.add_trial(create_trial(value=0.25, user_attrs={TrialAttr.RATING: rating}))
    return url, path


@pytest.mark.parametrize("command", ["status", "export", "report", "trials"])
def test_a_near_miss_of_a_study_name_is_answered_with_did_you_mean(stored, command, capsys):
    url, _ = stored
    assert main([command, "fault", "--storage", url]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "no study named 'fault'" in line and "did you mean 'faults'?" in line, line
    assert "tuner tune fault" not in line


def test_a_study_file_near_miss_is_answered_too(runs, capsys):
    assert main(["tune", "netarch"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "did you mean 'net_arch'?" in line, line


def test_a_finished_study_says_its_budget_is_used_up(stored, runs):
    url, path = stored
    result = run_cli("tune", str(path), "--storage", url, runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert "worker done: 0 trials" in result.stdout
    assert (
        f"study 'faults' has used up its budget of 1 trials (2 COMPLETE): raise n_trials in "
        f"{path} and run `tuner tune {path}` again" in result.stdout
    ), result.stdout


def test_trials_as_csv_for_pandas(stored, tmp_path, capsys):
    url, _ = stored
    assert main(["trials", "faults", "--storage", url, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["number"] for r in rows] == ["0", "1"]
    first, second = rows
    assert first["state"] == "COMPLETE" and float(first["value"]) == 0.5
    assert first["params_net_arch"] == "tiny" and float(first["params_gamma"]) == 0.95
    assert (first["score_random"], first["games_random"]) == ("0.75", "40")
    assert (first["ci_low_random"], first["ci_high_random"]) == ("0.6", "0.86")
    assert first["timesteps"] == "2048" and first["rating"] == ""
    assert (second["rating"], second["rating_low"], second["rating_high"]) == (
        "612.0",
        "580.5",
        "650.0",
    )
    assert second["params_net_arch"] == "" and second["games_random"] == ""

    out = tmp_path / "trials.csv"
    assert main(["trials", "faults", "--storage", url, "--csv", "--out", str(out)]) == 0
    assert "2 trials of study 'faults' written to" in capsys.readouterr().err
    assert list(csv.DictReader(out.open())) == rows

    assert main(["trials", "faults", "--storage", url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "number",
        "state",
        "value",
        "seconds",
        "learning_rate",
        "gamma",
        "net_arch",
    ]
    assert table[1].split()[:3] == ["0", "COMPLETE", "0.5"] and table[1].split()[-1] == "tiny"


def test_load_spec_is_unchanged_for_an_existing_name():
    assert load_spec("smoke").study_name == "smoke"


def test_play_help_names_the_default_search():
    """The help writes the default search out (no internal name); it is the real one."""
    from env.search import DEFAULT_SEARCH

    text = subparsers()["play"].format_help()
    assert f"--search alone: {DEFAULT_SEARCH}" in " ".join(text.split())
