"""Search at play time (env/search.py): alpha-beta and PUCT over a network.

Most tests use a stand-in network, a deterministic function of each board, so
that values compare exactly; the forced-win and batching tests use the
committed agent (studies/best/selfplay.zip) itself. The reference searches
here are written against the single-game rules API (env/rules.py's
``apply_move``), not the search's own move generator.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest

from env.observation import observe
from env.opponents import PolicyOpponent, make_opponent
from env.rules import (
    BOARD_DTYPE,
    apply_move,
    legal_masks,
    legal_pits,
    random_positions,
    store_of,
)
from env.search import (
    MARGIN_WEIGHT,
    AlphaBeta,
    PolicyEvaluator,
    Puct,
    SearchAgent,
    load_evaluator,
    parse_search,
    run_lockstep,
    to_views,
)

AGENT = Path(__file__).resolve().parents[2] / "studies" / "best" / "selfplay.zip"


class StandIn:
    """A fake network: values and priors from the counts alone, row by row, counted calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        v = views.astype(np.float64)
        lean = v[:, 6] - v[:, 13] + 0.25 * (v[:, :6].sum(1) - v[:, 7:13].sum(1))
        values = np.tanh(lean / 6.0 + 0.05 * np.sin(v @ np.arange(1, 15)))
        logits = np.where(views[:, :6] > 0, np.cos(v[:, :6] * 1.7 + np.arange(6)), -np.inf)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True), values


def positions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boards and movers from random play: 2 to 40 plies in, unfinished games only."""
    boards, players = random_positions(4 * n, np.random.default_rng(seed), (2, 40))
    return boards[:n], players[:n]


def negamax(board, player: int, depth: int, free_extra: bool, evaluate) -> float:
    """Plain negamax, no pruning, one leaf per network call: the reference."""
    best = -math.inf
    for pit in legal_pits(board, player):
        child, nxt, over = apply_move(board, player, pit)
        if over:
            margin = child[store_of(player)] - child[store_of(1 - player)]
            score = float(np.sign(margin)) + MARGIN_WEIGHT * margin
        else:
            left = depth if (free_extra and nxt == player) else depth - 1
            if left == 0:
                view = np.rint(observe(np.asarray(child), np.array([nxt]), 1)).astype(BOARD_DTYPE)
                value = float(evaluate(view)[1][0])
            else:
                value = negamax(child, nxt, left, free_extra, evaluate)
            score = value if nxt == player else -value
        best = max(best, score)
    return best


def decide(search, board, player, evaluate):
    view = to_views(np.asarray(board, BOARD_DTYPE)[None], np.array([player]))[0]
    return run_lockstep([search.search(view)], evaluate)[0]


@pytest.mark.parametrize("free_extra", [False, True])
@pytest.mark.parametrize(("depth", "frontier"), [(1, 1), (2, 1), (3, 1), (3, 2), (4, 2), (3, 3)])
def test_alphabeta_equals_plain_negamax(depth: int, frontier: int, free_extra: bool) -> None:
    evaluate = StandIn()
    boards, players = positions(12, seed=depth)
    for board, player in zip(boards, players, strict=True):
        want = negamax(board, int(player), depth, free_extra, evaluate)
        got = decide(AlphaBeta(depth, frontier, free_extra=free_extra), board, player, evaluate)
        assert got.value == pytest.approx(want, abs=1e-12)
        # the move it plays is worth what the position is worth
        child, nxt, over = apply_move(board, int(player), got.pit)
        if not over:
            left = depth if (free_extra and nxt == player) else depth - 1
            inner = (
                negamax(child, nxt, left, free_extra, evaluate)
                if left
                else float(evaluate(to_views(np.asarray(child)[None], np.array([nxt])))[1][0])
            )
            assert (inner if nxt == player else -inner) == pytest.approx(want, abs=1e-12)


def test_alphabeta_prunes() -> None:
    """Alpha-beta above the frontier visits fewer positions than the full-width tree."""
    evaluate = StandIn()
    boards, players = positions(6, seed=3)
    pruned = full = 0
    for board, player in zip(boards, players, strict=True):
        pruned += decide(AlphaBeta(5, 1), board, player, evaluate).nodes
        full += decide(AlphaBeta(5, 5), board, player, evaluate).nodes
    assert pruned < full / 2


@pytest.mark.parametrize("search", [AlphaBeta(3, 1), AlphaBeta(4, 2, free_extra=True), Puct(60)])
def test_only_legal_moves(search) -> None:
    boards, players = positions(60, seed=7)
    agent = SearchAgent(StandIn(), search)
    pits = agent.act(boards, players, np.random.default_rng(0))
    masks = legal_masks(boards, players)
    assert masks[np.arange(len(pits)), pits].all()
    # a near-empty side: one legal move, or moves that end the game
    board = np.array([0, 0, 0, 0, 0, 1, 20, 1, 0, 2, 0, 0, 0, 24], dtype=BOARD_DTYPE)
    assert agent.act(board[None], np.array([0]))[0] == 5
    assert agent.act(board[None], np.array([1]))[0] in (0, 2)


@pytest.mark.parametrize("search", [AlphaBeta(4, 2), AlphaBeta(3, 1, free_extra=True), Puct(80)])
def test_games_in_lockstep_equal_games_alone(search) -> None:
    """N games searched together: the same moves and values, in far fewer forward passes."""
    boards, players = positions(10, seed=11)
    together, alone = StandIn(), StandIn()
    agent = SearchAgent(together, search)
    pits = agent.act(boards, players)
    values = [d.value for d in agent.last]
    single = SearchAgent(alone, search)
    for i in range(len(boards)):
        assert single.act(boards[i : i + 1], players[i : i + 1])[0] == pits[i]
        assert single.last[0].value == pytest.approx(values[i], abs=1e-12, nan_ok=True)
    assert together.calls < alone.calls / 2


def exact_margin(view: tuple[int, ...]) -> int:
    """The mover's final margin under perfect play (small endgames only)."""
    return _solve(tuple(int(x) for x in view))


@functools.cache
def _solve(view: tuple[int, ...]) -> int:
    best = -99
    for pit in legal_pits(list(view), 0):
        child, nxt, over = apply_move(list(view), 0, pit)
        if over:
            score = child[store_of(0)] - child[store_of(1)]
        else:
            seen = to_views(np.asarray(child, BOARD_DTYPE)[None], np.array([nxt]))[0]
            score = (1 if nxt == 0 else -1) * _solve(tuple(int(x) for x in seen))
        best = max(best, score)
    return best


def move_margin(view, pit: int) -> int:
    child, nxt, over = apply_move(list(view), 0, pit)
    if over:
        return child[store_of(0)] - child[store_of(1)]
    seen = to_views(np.asarray(child, BOARD_DTYPE)[None], np.array([nxt]))[0]
    return (1 if nxt == 0 else -1) * exact_margin(tuple(seen))


# Player 0 to move, 11 seeds left: pit 4 wins by force, the policy plays pit 5 and loses.
FORCED_WIN = [0, 0, 0, 1, 2, 2, 20, 0, 3, 0, 1, 1, 0, 18]


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["ab:4", "mcts:200"])
@pytest.mark.parametrize("seat", [0, 1])
def test_search_finds_the_forced_win_the_policy_misses(spec: str, seat: int) -> None:
    view = np.asarray(FORCED_WIN, dtype=BOARD_DTYPE)
    board = view if seat == 0 else np.roll(view, 7)  # the same position, the mover in seat 1
    assert exact_margin(tuple(view)) > 0
    policy = PolicyOpponent(AGENT).act(board[None], np.array([seat]), np.random.default_rng(0))
    assert move_margin(view, int(policy[0])) < 0  # the policy alone throws the win away
    agent = SearchAgent(load_evaluator(AGENT), parse_search(spec))
    pit = int(agent.act(board[None], np.array([seat]))[0])
    assert move_margin(view, pit) > 0
    if spec.startswith("ab"):
        assert agent.last[0].value >= 1.0  # proven within the horizon: a finished game's value


@pytest.mark.slow
def test_batch_size_does_not_change_the_values() -> None:
    """The committed network: one board per forward pass, or all of them in one."""
    boards, players = positions(4, seed=5)
    one = load_evaluator(AGENT)
    one.max_batch = 1
    many = PolicyEvaluator(one.policy, max_batch=4096)
    for search in (AlphaBeta(3, 3), AlphaBeta(3, 1), Puct(30, leaves=4)):
        a, b = SearchAgent(one, search), SearchAgent(many, search)
        assert (a.act(boards, players) == b.act(boards, players)).all()
        np.testing.assert_allclose([d.value for d in a.last], [d.value for d in b.last], atol=1e-5)
    probs, values = many(to_views(boards, players))
    assert np.allclose(probs.sum(axis=1), 1.0) and np.all(np.abs(values) < 2.0)
    assert (probs[to_views(boards, players)[:, :6] == 0] == 0).all()


def test_search_specs() -> None:
    assert parse_search("ab:5").depth == 5 and not parse_search("ab:5").free_extra
    assert parse_search("abx:3").free_extra
    assert parse_search("mcts:200").simulations == 200
    for bad in ("ab", "ab:0", "ab:11", "mcts:0", "mcts:x", "alpha:3", ""):
        with pytest.raises(ValueError, match=r"expected|a search is"):
            parse_search(bad)
    agent = make_opponent(f"policy:{AGENT}+ab:2")
    assert isinstance(agent, SearchAgent) and agent.name.endswith("+ab:2")
    with pytest.raises(ValueError, match="a search is"):
        make_opponent(f"policy:{AGENT}+ab:0")
