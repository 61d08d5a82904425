"""Regret against perfect play: the three numbers, by phase, from exact move chances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from env.opponents import make_opponent
from tuner.strength.perfect import SolvedSet, format_scores, per_position, score_choices


def _tiny_set() -> SolvedSet:
    """Three positions with hand-written values (boards only set the phases)."""
    nan = np.nan
    move_values = np.array(
        [
            [2, 2, -4, nan, nan, nan],  # won by 2: pits 0 and 1 optimal, pit 2 loses
            [0, -1, nan, nan, nan, nan],  # drawn: pit 1 loses by one
            [-3, -5, -3, -9, nan, nan],  # lost by 3 anyway
        ]
    )
    boards = np.zeros((3, 14), dtype=np.int32)
    boards[:, 0] = [40, 20, 5]  # opening, late, endgame by seeds left
    return SolvedSet(
        boards=boards,
        players=np.zeros(3, dtype=np.int64),
        values=np.array([2.0, 0.0, -3.0]),
        move_values=move_values,
        phases=np.array(["opening", "late", "endgame"]),
        path=Path("tiny.jsonl"),
    )


def test_optimal_regret_and_blunders_per_position() -> None:
    solved = _tiny_set()
    probs = np.zeros((3, 6))
    probs[0, 2] = 1.0  # win -> loss by 4: regret 6, a blunder
    probs[1, 0] = 1.0  # the draw kept: optimal
    probs[2, [1, 3]] = 0.5  # lost either way: regret (2 + 6) / 2, never a blunder
    optimal, regret, blunder = per_position(solved, probs)
    assert optimal.tolist() == [0.0, 1.0, 0.0]
    assert regret.tolist() == [6.0, 0.0, 4.0]
    assert blunder.tolist() == [1.0, 0.0, 0.0]


def test_overall_and_by_phase_with_intervals() -> None:
    solved = _tiny_set()
    probs = np.zeros((3, 6))
    probs[0, 0] = probs[1, 1] = probs[2, 0] = 1.0
    scores = score_choices(solved, probs)
    assert set(scores) == {"all", "opening", "late", "endgame"}
    assert scores["all"].positions == 3
    assert scores["all"].optimal.mean == pytest.approx(2 / 3)
    assert scores["all"].optimal.half_width > 0
    assert scores["late"].blunders.mean == 1.0 and scores["late"].regret.mean == 1.0
    table = format_scores(scores)
    assert table[0].split()[:3] == ["phase", "seeds", "positions"]
    assert len(table) == 5


def test_chances_on_an_empty_pit_are_refused() -> None:
    probs = np.zeros((3, 6))
    probs[:, 5] = 1.0
    with pytest.raises(ValueError, match="legal pits only"):
        per_position(_tiny_set(), probs)


def test_minimax_ties_count_by_their_exact_chances() -> None:
    """A ladder member with random tie-breaks is scored by its chances, not by one draw."""
    from env.opponents import choice_probabilities

    boards = np.array([[4] * 6 + [0] + [4] * 6 + [0]], dtype=np.int32)
    probs = choice_probabilities(
        make_opponent("random"), boards, np.zeros(1, np.int64), np.random.default_rng(0)
    )
    assert probs.tolist() == [[1 / 6] * 6]
    greedy = choice_probabilities(
        make_opponent("greedy", tie_break="random"),
        boards,
        np.zeros(1, np.int64),
        np.random.default_rng(0),
    )
    assert greedy[0, 2] == 1.0  # pit 2's four seeds end in the store: an extra turn


def test_evaluate_perfect_prints_the_table_for_the_committed_agent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tuner.cli import main

    assert main(["evaluate", "studies/best/selfplay.zip", "--perfect"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "against perfect play on" in out[0]
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert set(rows) == {"all", "opening", "middle", "late", "endgame"}
    assert rows["all"][1] == "1-48"
    optimal = float(rows["all"][3])
    assert 0.5 < optimal < 1.0  # README: the committed agent plays about 79% optimal moves


def test_evaluate_perfect_refuses_another_seed_count(capsys: pytest.CaptureFixture[str]) -> None:
    from tuner.cli import main

    assert main(["evaluate", "studies/best/selfplay.zip", "--perfect", "--stones", "5"]) == 2
    assert "expected --stones 4, but got 5" in capsys.readouterr().err
