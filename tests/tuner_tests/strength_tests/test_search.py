"""Search at play time from the tuner: evaluate, play and a study's evaluation with --search."""

from __future__ import annotations

from pathlib import Path

import pytest
from sb3_contrib import MaskablePPO
from support import run_cli

from env.policy_files import save_model
from env.search import SearchAgent
from env.vec_env import KalahaVecEnv
from tuner.strength.evaluate import as_agent, evaluate_policy

AGENT = Path(__file__).resolve().parents[3] / "studies" / "best" / "selfplay.zip"


def tiny() -> MaskablePPO:
    return MaskablePPO("MlpPolicy", KalahaVecEnv(2, seed=0), policy_kwargs={"net_arch": [8]})


def test_a_training_model_evaluates_with_search():
    """What the study's ``evaluation.search`` does: the model being trained, searching."""
    model = tiny()
    assert isinstance(as_agent(model, search="ab:2"), SearchAgent)
    assert not isinstance(as_agent(model), SearchAgent)  # the policy alone stays the default
    results = evaluate_policy(model, ["random"], 4, seed=0, search="mcts:8")
    assert results["random"].games == 4


@pytest.mark.slow
def test_evaluate_and_play_with_search_through_the_command_line(tmp_path):
    runs = tmp_path / "runs"
    done = run_cli(
        "evaluate", str(AGENT), "--search", "ab:2", "--opponents", "greedy", "--games", "4",
        runs_path=runs,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "with search ab:2" in done.stdout and "vs greedy" in done.stdout
    path = save_model(tiny(), tmp_path / "agent.zip")
    moves = "1\n2\n3\n4\n5\n6\n" * 60
    played = run_cli("play", str(path), "--search", runs_path=runs, input=moves)
    assert played.returncode == 0, played.stderr
    assert "searches with ab:5" in played.stdout and "Game over" in played.stdout


@pytest.mark.slow
def test_a_bad_search_is_one_line_and_exit_2(tmp_path):
    runs = tmp_path / "runs"
    for args in (["evaluate", str(AGENT)], ["play", str(AGENT)]):
        done = run_cli(*args, "--search", "ab:0", runs_path=runs)
        assert done.returncode == 2, done.stderr
        err = done.stderr.strip()
        assert len(err.splitlines()) == 1 and "--search: a search is" in err, err
        assert "but got 'ab:0'" in err
