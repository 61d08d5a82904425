"""Opponents: random, greedy, alpha-beta minimax and a trained policy, one interface.

Every opponent acts for a batch of games at once: ``act(boards, players, rng)``
takes ``(n, 14)`` boards and the ``(n,)`` players to move and returns ``(n,)``
pits (0..5, in the mover's own order). Acting in batches is what lets the
evaluator play hundreds of games with one policy forward pass per ply.

Opponents are named by short specs (``"random"``, ``"greedy"``, ``"minimax:4"``,
``"policy:path/to/model.zip"``, and a policy that searches at each move,
``"policy:path/to/model.zip+ab:5"``, env/search.py); :func:`make_opponent` is the
one parser of those names, used by the env, the study files and the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numba import njit

from env.options import DEFAULT_STONES
from env.rules import N_PITS, _apply_one, legal_masks, pit_index, store_of

_NEG = -1.0e9


class Opponent(Protocol):
    """Anything that picks a legal pit for each game of a batch."""

    name: str

    def act(
        self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...


def _pick_best(scores: np.ndarray, rng: np.random.Generator, tie_break: str) -> np.ndarray:
    """Argmax per row; ties go to the lowest pit, or to a random one of the best."""
    if tie_break == "first":
        return scores.argmax(axis=1)
    best = scores == scores.max(axis=1, keepdims=True)
    noise = rng.random(scores.shape) * best
    return noise.argmax(axis=1)


class RandomOpponent:
    """Uniformly random legal moves."""

    name = "random"

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        masks = legal_masks(boards, players.astype(np.int64))
        return (rng.random(masks.shape) * masks).argmax(axis=1)


@njit(cache=True, nogil=True)
def _greedy_scores(boards: np.ndarray, players: np.ndarray, empty_capture: bool) -> np.ndarray:
    n = boards.shape[0]
    scores = np.full((n, N_PITS), _NEG)
    for i in range(n):
        player = players[i]
        store = store_of(player)
        for k in range(N_PITS):
            if boards[i, pit_index(player, k)] == 0:
                continue
            child = boards[i].copy()
            nxt, _ = _apply_one(child, player, k, empty_capture)
            extra = 1000.0 if nxt == player else 0.0
            scores[i, k] = extra + child[store] - boards[i, store]
    return scores


class GreedyOpponent:
    """Largest immediate store gain; a move that earns an extra turn comes first."""

    def __init__(self, tie_break: str = "first", empty_capture: bool = False) -> None:
        self.name = "greedy"
        self.tie_break = tie_break
        self.empty_capture = empty_capture

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        scores = _greedy_scores(boards, players.astype(np.int64), self.empty_capture)
        return _pick_best(scores, rng, self.tie_break)


@njit(cache=True, nogil=True)
def _alphabeta(
    board: np.ndarray,
    player: int,
    root: int,
    depth: int,
    alpha: float,
    beta: float,
    empty_capture: bool,
) -> float:
    """Store difference for ``root`` after a depth-limited alpha-beta search.

    Depth counts changes of turn: an extra turn is part of the same ply, so a
    chain of extra turns is always searched to its end.
    """
    if depth == 0:
        return float(board[store_of(root)] - board[store_of(1 - root)])
    maximizing = player == root
    best = -1.0e9 if maximizing else 1.0e9
    for k in range(N_PITS):
        if board[pit_index(player, k)] == 0:
            continue
        child = board.copy()
        nxt, done = _apply_one(child, player, k, empty_capture)
        if done:
            value = float(child[store_of(root)] - child[store_of(1 - root)])
        else:
            # An extra turn continues the same ply: chains are searched to their end.
            next_depth = depth if nxt == player else depth - 1
            value = _alphabeta(child, nxt, root, next_depth, alpha, beta, empty_capture)
        if maximizing:
            best = max(best, value)
            alpha = max(alpha, best)
        else:
            best = min(best, value)
            beta = min(beta, best)
        if alpha >= beta:
            break
    return best


@njit(cache=True, nogil=True)
def _minimax_scores(
    boards: np.ndarray, players: np.ndarray, depth: int, empty_capture: bool
) -> np.ndarray:
    n = boards.shape[0]
    scores = np.full((n, N_PITS), _NEG)
    for i in range(n):
        player = players[i]
        for k in range(N_PITS):
            if boards[i, pit_index(player, k)] == 0:
                continue
            child = boards[i].copy()
            nxt, done = _apply_one(child, player, k, empty_capture)
            if done or (depth <= 1 and nxt != player):
                scores[i, k] = float(child[store_of(player)] - child[store_of(1 - player)])
            else:
                # Full window per root move: exact values, so ties are real ties.
                next_depth = depth if nxt == player else depth - 1
                scores[i, k] = _alphabeta(
                    child, nxt, player, next_depth, -1.0e9, 1.0e9, empty_capture
                )
    return scores


# Beyond this depth one move of one game takes minutes, and an evaluation never ends
# (a search cannot be interrupted: a signal is handled when the search returns).
MAX_MINIMAX_DEPTH = 12


class MinimaxOpponent:
    """Alpha-beta minimax of depth ``k`` on the store difference."""

    def __init__(self, depth: int = 4, tie_break: str = "first", empty_capture: bool = False):
        if not 1 <= depth <= MAX_MINIMAX_DEPTH:
            raise ValueError(
                f"minimax depth must be between 1 and {MAX_MINIMAX_DEPTH}, but got {depth} "
                "(deeper searches take minutes per move)"
            )
        self.depth = depth
        self.name = f"minimax:{depth}"
        self.tie_break = tie_break
        self.empty_capture = empty_capture

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        scores = _minimax_scores(boards, players.astype(np.int64), self.depth, self.empty_capture)
        return _pick_best(scores, rng, self.tie_break)


class PolicyOpponent:
    """A trained (Maskable)PPO policy: from a model object or an SB3 ``.zip`` file.

    It sees the board from its own seat, as it did in training, and the features
    its network reads (``env.networks.expected_observation``: the counts, or the
    counts and the lookahead features, computed for all its games in one call);
    it acts with action masks so that it never picks an empty pit.
    """

    def __init__(
        self,
        model: Any,
        stones: int = DEFAULT_STONES,
        deterministic: bool = True,
        name: str | None = None,
    ) -> None:
        if isinstance(model, str | Path):
            # Weights and JSON metadata only: loading a model file never runs its code.
            from env.policy_files import load_policy

            path = Path(model)
            model = load_policy(path, device="cpu")  # PolicyFileError is a ValueError
            name = name or f"policy:{path}"
        from env.networks import PolicyActor, expected_observation

        self.model = model
        self.stones = stones
        self.observation = expected_observation(model, stones)
        self.deterministic = deterministic
        self.name = name or "policy"
        # A snapshot pool (env.league) that answers its members' games in one pass.
        self.team: Any = None
        policy = getattr(model, "policy", model)
        # SB3's actor-critic policies act through the fast path; anything else with a
        # predict() (a stand-in in a test, another algorithm) through predict().
        self._actor = PolicyActor(policy) if hasattr(policy, "mlp_extractor") else None

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        players = players.astype(np.int64)
        obs = self.observation(boards, players)
        masks = legal_masks(boards, players)
        if self._actor is not None:
            return self._actor(obs, masks, self.deterministic)
        actions, _ = self.model.predict(obs, action_masks=masks, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(-1)


class EpsilonOpponent:
    """Another opponent that plays a uniformly random legal move a share ``epsilon`` of the time.

    Training against a deterministic opponent teaches an exploit of its one line
    of play; a random move now and then (and random tie-breaks) shows the learner
    many lines. Written ``"greedy@0.1"`` in specs.
    """

    def __init__(self, base: Opponent, epsilon: float) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be within [0, 1], but got {epsilon}")
        self.base = base
        self.epsilon = float(epsilon)
        self.name = f"{base.name}@{epsilon:g}"

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        players = players.astype(np.int64)
        pits = np.asarray(self.base.act(boards, players, rng), dtype=np.int64)
        explore = rng.random(len(players)) < self.epsilon
        if explore.any():
            masks = legal_masks(boards, players)
            noise = rng.random(masks.shape)
            pits = np.where(explore, (noise * masks).argmax(axis=1), pits)
        return pits


SPEC_HELP = (
    "'random', 'greedy', 'minimax:K' (K >= 1) or 'policy:PATH' (with a search: "
    "'policy:PATH+ab:5', 'policy:PATH+mcts:200'), optionally with '@EPS' "
    "(a share of random moves in [0, 1], and random tie-breaks: 'greedy@0.1')"
)


def make_opponent(
    spec: str,
    *,
    stones: int = DEFAULT_STONES,
    empty_capture: bool = False,
    tie_break: str = "first",
) -> Opponent:
    """Build an opponent from its spec string (see the module docstring)."""
    if not isinstance(spec, str):
        raise ValueError(f"an opponent is one of {SPEC_HELP}, but got {spec!r}")
    base, at, eps = spec.partition("@")
    if at and not base.startswith("policy:"):
        try:
            epsilon = float(eps)
        except ValueError:
            epsilon = -1.0
        if not 0.0 <= epsilon <= 1.0 or base == "random":
            raise ValueError(f"an opponent is one of {SPEC_HELP}, but got {spec!r}")
        inner = make_opponent(base, stones=stones, empty_capture=empty_capture, tie_break="random")
        return EpsilonOpponent(inner, epsilon)
    kind, _, arg = spec.partition(":")
    if kind == "random" and not arg:
        return RandomOpponent()
    if kind == "greedy" and not arg:
        return GreedyOpponent(tie_break=tie_break, empty_capture=empty_capture)
    if kind == "minimax" and arg.isdigit() and int(arg) >= 1:
        return MinimaxOpponent(int(arg), tie_break=tie_break, empty_capture=empty_capture)
    if kind == "policy" and arg:
        path, plus, search = arg.rpartition("+")
        if plus and path and ":" in search:  # policy:PATH+ab:5, a search over the network
            from env.search import search_agent

            return search_agent(path, search, stones=stones, empty_capture=empty_capture)
        return PolicyOpponent(arg, stones=stones)
    raise ValueError(f"an opponent is one of {SPEC_HELP}, but got {spec!r}")


def choice_probabilities(
    opponent: Opponent, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``(n, 6)``: how likely ``opponent`` is to play each pit, exactly where it can be known.

    Why: scoring a player on solved positions should carry no noise of its own.
    Random, greedy and minimax pick uniformly among their best-scored pits (random
    tie-breaks), so their chances are known exactly; any other opponent (a policy)
    is asked once and its choice counts as certain.
    """
    players = players.astype(np.int64)
    masks = legal_masks(boards, players)
    if isinstance(opponent, RandomOpponent):
        return masks / masks.sum(axis=1, keepdims=True)
    if isinstance(opponent, GreedyOpponent | MinimaxOpponent):
        if isinstance(opponent, GreedyOpponent):
            scores = _greedy_scores(boards, players, opponent.empty_capture)
        else:
            scores = _minimax_scores(boards, players, opponent.depth, opponent.empty_capture)
        best = (scores == scores.max(axis=1, keepdims=True)) & masks
        if opponent.tie_break == "first":
            best = np.eye(N_PITS, dtype=bool)[best.argmax(axis=1)]
        return best / best.sum(axis=1, keepdims=True)
    pits = np.asarray(opponent.act(boards, players, rng), dtype=np.int64)
    return np.eye(N_PITS)[pits]
