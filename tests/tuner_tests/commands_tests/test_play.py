"""tuner play: a whole game against an agent, through the real command line."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_contrib import MaskablePPO
from support import run_cli

from env.opponents import make_opponent
from env.policy_files import save_model
from env.rules import pit_index, store_of
from env.vec_env import KalahaVecEnv
from tuner.commands.play import draw, play


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


@pytest.mark.slow
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


def _numbered(numbers: str, pits: str) -> dict[int, int]:
    """The pit number drawn above (or below) each pit -> its seed count."""
    counts = [int(c) for c in pits.split("[")[1:] for c in [c.split("]")[0]]]
    found = [(i, int(ch)) for i, ch in enumerate(numbers) if ch.isdigit()]
    starts = [i for i, ch in enumerate(pits) if ch == "["]
    assert [i - 2 for i, _ in found] == starts, (numbers, pits)  # each number over its pit
    return {n: c for (_, n), c in zip(found, counts, strict=True)}


def test_the_board_numbers_every_pit_and_names_both_stores():
    """Each side's pit k holds 10 + k seeds here; the number drawn at a pit is the one the
    game uses for it ("AI plays pit 3" is the pit under the 3)."""
    for human in (0, 1):
        ai = 1 - human
        board = [0] * 14
        for side in (0, 1):
            for k in range(6):
                board[pit_index(side, k)] = 10 * (side + 1) + k
        board[store_of(ai)], board[store_of(human)] = 7, 3
        top_numbers, top, stores, bottom, bottom_numbers = draw(board, human).splitlines()
        ai_base, human_base = 10 * (ai + 1), 10 * (human + 1)
        assert _numbered(top_numbers, top) == {k + 1: ai_base + k for k in range(6)}
        assert _numbered(bottom_numbers, bottom) == {k + 1: human_base + k for k in range(6)}
        assert top.strip().startswith("AI:") and bottom.strip().startswith("you:")
        assert stores.startswith("AI store [ 7]") and stores.endswith("[ 3] your store")


def test_a_move_typed_in_other_digits_or_bytes_is_asked_again():
    """`²` is a digit that int() refuses, 5000 nines a number it refuses: each is asked
    again with one line; any script's decimal digits (Arabic-Indic ٣) are the pit."""
    typed = iter(["²", "9" * 5000, "\x00", "", "-1", "٣", "q"])
    said: list[str] = []
    winner = play(
        make_opponent("random"), human_seat=0, ask=lambda _: next(typed), say=said.append,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    refusals = [s for s in said if s.startswith("expected one of")]
    assert len(refusals) == 5 and all("\n" not in s for s in refusals)
    assert "Extra turn." in said  # pit 3 of 4 stones: the last seed in the store
    assert winner == 1
