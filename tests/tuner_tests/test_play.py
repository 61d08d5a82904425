"""tuner play: a whole game against an agent, through the real command line."""

from __future__ import annotations

import numpy as np
from sb3_contrib import MaskablePPO
from support import run_cli

from env.opponents import make_opponent
from env.policy_files import save_model
from env.vec_env import KalahaVecEnv
from tuner.commands.play import play


def test_a_scripted_person_plays_a_whole_game_and_the_rules_hold():
    """The person always takes their first legal pit; the game ends with 48 seeds in stores."""
    said: list[str] = []
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return prompt.split("[")[1].split(",")[0].split("]")[0]

    w = play(
        make_opponent("greedy"),
        human_seat=1,
        ask=ask,
        say=said.append,
        rng=np.random.default_rng(0),
    )
    text = "\n".join(said)
    assert "AI plays pit" in text and text.count("you") > 3
    assert asked and all("q to resign" in a for a in asked)
    assert "Game over" in said[-1]
    you, ai = (int(x) for x in said[-1].split(", ")[1].split(":")[:2] if x.strip().isdigit())
    assert you + ai == 48
    assert w in (0, 1, None)


def test_play_command_against_a_saved_agent(tmp_path):
    model = MaskablePPO("MlpPolicy", KalahaVecEnv(2, seed=0), policy_kwargs={"net_arch": [8]})
    path = tmp_path / "agent.zip"
    save_model(model, path)
    moves = "x\n" + "1\n2\n3\n4\n5\n6\n" * 60
    done = run_cli("play", str(path), runs_path=tmp_path / "runs", input=moves)
    assert done.returncode == 0, done.stderr
    assert "expected one of" in done.stdout  # 'x' was refused with the legal pits
    assert "Game over" in done.stdout
    resign = run_cli("play", str(path), "--seat", "1", runs_path=tmp_path / "runs", input="q\n")
    assert resign.returncode == 0 and "You resign." in resign.stdout


def test_play_with_a_missing_model_is_one_line_and_exit_2(tmp_path):
    done = run_cli("play", str(tmp_path / "nope.zip"), runs_path=tmp_path / "runs")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nope.zip" in done.stderr
