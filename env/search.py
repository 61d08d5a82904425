"""Search at play time: a saved network as the evaluation of alpha-beta or of PUCT.

Why: a trained agent's value head is trained and then never used when it plays;
a shallow search on top of it is worth more than a long training run (README,
"Search at play time"), and costs nothing in training.

Two searches, both over the rules core (env/rules.py, one implementation) and
both working on *views*: a board as the mover sees it (own pits and store
first, env/observation.py), so the mover is always player 0 of the view and a
value is always the mover's expected outcome.

- :class:`AlphaBeta`: negamax with alpha-beta pruning to a fixed depth in plies.
  **Every move is a ply, an extra turn included** (``ab:D``, the textbook count;
  the project's ``minimax:N`` does not count extra turns, so its depth N searches
  deeper than ``ab:N``; ``abx:D`` counts as it does). Leaves are valued by the value head, finished games
  exactly. Moves are tried in the order of the policy's probabilities. The last
  ``frontier`` plies are searched full width in one batch: all the leaves under
  a frontier node go through one forward pass (a forward costs about the same
  for 1 or 30 boards, so pruning single leaves saves nothing), and the plies
  above are pruned. Network outputs are cached for the search of one move (a
  transposition table of evaluations, keyed by the view).
- :class:`Puct`: AlphaZero's PUCT tree search, the policy as the prior and the
  value head at the leaves, a budget in simulations; ``leaves`` leaves per game
  per forward pass, kept apart by a virtual loss.

Both act for a batch of games in lockstep: each round every game's search asks
for the positions it needs, and one forward pass serves all of them. That is
what makes a 400-game evaluation cheap; a single game's search is the same
search (a test checks that one game alone and N games together choose the same
moves with the same values).

The network is behind one small interface, :class:`Evaluator`: views in, the
policy's move probabilities and the value out, one batched forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numba import njit

from env.options import DEFAULT_STONES
from env.rules import BOARD_DTYPE, BOARD_SIZE, N_PITS, SIDE, _apply_one, store_of

# A finished game is worth +-1 (0 for a draw) plus a small share of the final margin,
# so that a sure win always beats any network estimate and a bigger win a smaller one.
MARGIN_WEIGHT = 1.0e-3
MAX_AB_DEPTH = 10
MAX_SIMULATIONS = 100_000
DEFAULT_FRONTIER = 3
DEFAULT_C_PUCT = 1.5
DEFAULT_LEAVES = 8
# The search every caller gets when it asks for one without saying which (README's table).
DEFAULT_SEARCH = "ab:5"
SEARCH_HELP = (
    "'ab:D' (alpha-beta, D plies 1..10, an extra turn is a ply), 'abx:D' (extra turns "
    "are free) or 'mcts:S' (PUCT, S simulations)"
)


class Evaluator(Protocol):
    """Views ``(n, 14)`` -> the policy's probabilities ``(n, 6)`` and the values ``(n,)``."""

    def __call__(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class PolicyEvaluator:
    """A ``MaskableActorCriticPolicy`` as an :class:`Evaluator`: one forward per call.

    The probabilities are the policy's, masked to the legal pits and renormalized;
    the value is the critic's estimate of the mover's return (+1 win, -1 loss).
    ``max_batch`` bounds one forward pass (memory); larger calls are cut in pieces.
    """

    def __init__(self, policy: Any, stones: int = DEFAULT_STONES, max_batch: int = 4096) -> None:
        from env.networks import expected_observation

        self.policy = policy
        self.stones = int(stones)
        # A view is the board seen by its mover, as if seat 0: what the network reads of
        # it (the counts, and the lookahead features where the network reads them).
        self.observation = expected_observation(policy, self.stones)
        self.max_batch = int(max_batch)
        self.calls = 0  # forward passes so far: what the benchmarks count
        self.boards = 0

    def __call__(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        views = np.asarray(views).reshape(-1, BOARD_SIZE)
        parts = [
            self._forward(views[i : i + self.max_batch])
            for i in range(0, views.shape[0], self.max_batch)
        ]
        if not parts:
            return np.zeros((0, N_PITS)), np.zeros(0)
        return np.concatenate([p for p, _ in parts]), np.concatenate([v for _, v in parts])

    def _forward(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        self.calls += 1
        self.boards += views.shape[0]
        policy = self.policy
        movers = np.zeros(views.shape[0], dtype=np.int64)
        obs = torch.as_tensor(self.observation(views, movers), device=policy.device)
        with torch.inference_mode():
            features = policy.extract_features(obs)
            if policy.share_features_extractor:
                latent_pi, latent_vf = policy.mlp_extractor(features)
            else:
                latent_pi = policy.mlp_extractor.forward_actor(features[0])
                latent_vf = policy.mlp_extractor.forward_critic(features[1])
            logits = policy.action_net(latent_pi)
            values = policy.value_net(latent_vf).reshape(-1)
            legal = torch.as_tensor(views[:, :N_PITS] > 0, device=policy.device)
            logits = torch.where(legal, logits, torch.full_like(logits, -math.inf))
            probs = torch.softmax(logits, dim=1)
        return probs.cpu().numpy().astype(np.float64), values.cpu().numpy().astype(np.float64)


def load_evaluator(path: str | Path, stones: int = DEFAULT_STONES) -> PolicyEvaluator:
    """A model file (env/policy_files.py, no pickle) -> its :class:`PolicyEvaluator` on the CPU."""
    from env.policy_files import load_policy

    return PolicyEvaluator(load_policy(Path(path), device="cpu"), stones=stones)


# --- the rules in the mover's view ------------------------------------------------


@njit(cache=True, nogil=True)
def to_views(boards: np.ndarray, players: np.ndarray) -> np.ndarray:
    """Absolute boards and movers -> the boards as each mover sees them (own side first)."""
    n = boards.shape[0]
    out = np.empty((n, BOARD_SIZE), dtype=BOARD_DTYPE)
    for i in range(n):
        shift = SIDE * players[i]
        for j in range(BOARD_SIZE):
            out[i, j] = boards[i, (j + shift) % BOARD_SIZE]
    return out


@njit(cache=True, nogil=True)
def expand(view: np.ndarray, empty_capture: bool) -> tuple:
    """Each of the mover's six moves: ``(child_views, legal, extra, over, exact)``.

    A child view is the child position as *its* mover sees it (the same seat after
    an extra turn, flipped otherwise). ``exact`` is a finished child's value for
    the parent's mover (``MARGIN_WEIGHT`` per seed of margin on top of +-1).
    """
    views = np.zeros((N_PITS, BOARD_SIZE), dtype=BOARD_DTYPE)
    legal = np.zeros(N_PITS, dtype=np.bool_)
    extra = np.zeros(N_PITS, dtype=np.bool_)
    over = np.zeros(N_PITS, dtype=np.bool_)
    exact = np.zeros(N_PITS)
    for k in range(N_PITS):
        if view[k] == 0:
            continue
        legal[k] = True
        child = view.copy()
        nxt, done = _apply_one(child, 0, k, empty_capture)
        if done:
            over[k] = True
            margin = child[store_of(0)] - child[store_of(1)]
            exact[k] = np.sign(margin) + MARGIN_WEIGHT * margin
        extra[k] = nxt == 0 and not done
        for j in range(BOARD_SIZE):
            views[k, j] = child[j] if nxt == 0 else child[(j + SIDE) % BOARD_SIZE]
    return views, legal, extra, over, exact


@njit(cache=True, nogil=True)
def _subtree(view: np.ndarray, depth: int, free_extra: bool, empty_capture: bool, cap: int):
    n = 1
    views = np.zeros((cap, BOARD_SIZE), dtype=BOARD_DTYPE)
    parent = np.full(cap, -1, dtype=np.int64)
    move = np.full(cap, -1, dtype=np.int64)
    rem = np.zeros(cap, dtype=np.int64)
    sign = np.ones(cap)
    exact = np.zeros(cap)
    over = np.zeros(cap, dtype=np.bool_)
    views[0] = view
    rem[0] = depth
    for node in range(cap):  # children always come after their parent
        if node >= n:
            break
        if over[node] or rem[node] == 0:
            continue
        kids, legal, extra, done, value = expand(views[node], empty_capture)
        for k in range(N_PITS):
            if not legal[k]:
                continue
            if n == cap:
                return -1, views, parent, move, rem, sign, exact, over
            views[n] = kids[k]
            parent[n] = node
            move[n] = k
            rem[n] = rem[node] if (free_extra and extra[k]) else rem[node] - 1
            sign[n] = 1.0 if extra[k] else -1.0
            over[n] = done[k]
            exact[n] = value[k]
            n += 1
    return n, views, parent, move, rem, sign, exact, over


def subtree(view: np.ndarray, depth: int, free_extra: bool = False, empty_capture: bool = False):
    """Every position within ``depth`` plies of ``view``, each after its parent.

    Returns ``(views, parent, pit, rem, sign, exact, over)`` per node (node 0 is
    ``view``): ``pit`` is the move that led to it, ``rem`` the plies left below
    it (a leaf has 0; with ``free_extra`` an extra turn costs none), ``sign`` +1
    when its mover is its parent's (an extra turn), -1 otherwise; ``exact`` a
    finished node's value for its parent's mover.
    """
    cap = 8 * N_PITS**depth + 1
    while True:
        n, *arrays = _subtree(view, depth, free_extra, empty_capture, cap)
        if n >= 0:
            return tuple(a[:n] for a in arrays)
        cap *= 4  # long chains of extra turns: try again with room for them


@njit(cache=True, nogil=True)
def back_up(parent: np.ndarray, sign: np.ndarray, exact: np.ndarray, over: np.ndarray, leaf_values):
    """Full-width negamax over a :func:`subtree` whose leaves carry ``leaf_values``.

    ``leaf_values`` holds, per node, the network's value for the node's mover
    (read only at unfinished nodes without children). Returns each node's value
    for its own mover; the root's children's values say what each root move is worth.
    """
    n = parent.shape[0]
    best = np.full(n, -np.inf)
    value = np.zeros(n)
    for node in range(n - 1, -1, -1):
        if not over[node]:
            value[node] = best[node] if best[node] > -np.inf else leaf_values[node]
        if node > 0:
            mine = exact[node] if over[node] else sign[node] * value[node]
            best[parent[node]] = max(best[parent[node]], mine)
    return value


# --- running many games' searches in lockstep -------------------------------------

# A search is a generator: it yields a (k, 14) array of views it needs evaluated, is sent
# back (probs, values) for them, and returns its result.
Search = Generator[np.ndarray, tuple[np.ndarray, np.ndarray], Any]


def run_lockstep(searches: Sequence[Search], evaluate: Evaluator) -> list[Any]:
    """Drive several searches together: one forward pass per round for all their requests."""
    results: list[Any] = [None] * len(searches)
    pending: dict[int, np.ndarray] = {}

    def advance(i: int, reply: tuple[np.ndarray, np.ndarray] | None) -> None:
        try:
            pending[i] = searches[i].send(reply)  # type: ignore[arg-type]
        except StopIteration as stop:
            results[i] = stop.value

    for i in range(len(searches)):
        advance(i, None)
    while pending:
        order = list(pending)
        sizes = [pending[i].shape[0] for i in order]
        probs, values = evaluate(np.concatenate([pending[i] for i in order]))
        pending.clear()
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for i, lo, hi in zip(order, offsets[:-1], offsets[1:], strict=True):
            advance(i, (probs[lo:hi], values[lo:hi]))
    return results


@dataclass
class Decision:
    """A search's move for one game, its value for the mover, and what it cost."""

    pit: int
    value: float
    nodes: int = 0


@dataclass
class _Cache:
    """One search's network outputs by view (priors, value), filled a batch at a time.

    It is the search's transposition table: a position reached by two move orders
    is evaluated once. ``nodes`` counts the positions the search generated.
    """

    table: dict[bytes, tuple[np.ndarray, float]] = field(default_factory=dict)
    nodes: int = 0

    def missing(self, views: np.ndarray) -> np.ndarray:
        """The views not yet evaluated, each once (transpositions in one batch are merged)."""
        seen: set[bytes] = set()
        keep = []
        for i, row in enumerate(views):
            key = row.tobytes()
            if key not in self.table and key not in seen:
                seen.add(key)
                keep.append(i)
        return views[keep]

    def store(self, views: np.ndarray, reply: tuple[np.ndarray, np.ndarray]) -> None:
        probs, values = reply
        for row, p, v in zip(views, probs, values, strict=True):
            self.table[row.tobytes()] = (p, float(v))

    def value(self, view: np.ndarray) -> float:
        return self.table[view.tobytes()][1]

    def priors(self, view: np.ndarray) -> np.ndarray:
        return self.table[view.tobytes()][0]


def _fetch(cache: _Cache, views: np.ndarray) -> Search:
    """Ask the driver for the views the cache lacks (no round at all when none)."""
    need = cache.missing(views)
    if need.shape[0]:
        reply = yield need
        cache.store(need, reply)


# --- alpha-beta ------------------------------------------------------------------


class AlphaBeta:
    """Negamax with alpha-beta to ``depth`` plies on the value head.

    An extra turn is a ply, unless ``free_extra`` (then depth counts changes of
    turn, as ``minimax:N`` does, and a chain of extra turns is searched to its
    end). ``frontier``: the last plies, searched full width with their leaves in
    one forward pass per frontier node; the plies above are pruned, the moves
    tried in the order of the policy's probabilities.
    """

    def __init__(
        self,
        depth: int,
        frontier: int = DEFAULT_FRONTIER,
        *,
        free_extra: bool = False,
        empty_capture: bool = False,
    ) -> None:
        if not 1 <= depth <= MAX_AB_DEPTH:
            raise ValueError(f"alpha-beta depth: expected 1..{MAX_AB_DEPTH}, but got {depth}")
        if frontier < 1:
            raise ValueError(f"alpha-beta frontier: expected at least 1 ply, but got {frontier}")
        self.depth = int(depth)
        self.frontier = min(int(frontier), self.depth)
        self.free_extra = bool(free_extra)
        self.empty_capture = bool(empty_capture)
        self.name = f"{'abx' if free_extra else 'ab'}:{depth}"

    def search(self, view: np.ndarray) -> Search:
        """The search of one position (a generator for :func:`run_lockstep`) -> a Decision."""
        cache = _Cache()
        if self.depth <= self.frontier:
            _, per_move = yield from self._frontier(cache, view, self.depth)
            best = int(np.argmax(per_move))  # ties: the lowest pit
            return Decision(pit=best, value=float(per_move[best]), nodes=cache.nodes)
        yield from _fetch(cache, view[None, :])
        value, pit = yield from self._negamax(cache, view, self.depth, -math.inf, math.inf)
        return Decision(pit=pit, value=float(value), nodes=cache.nodes)

    def _frontier(self, cache: _Cache, view: np.ndarray, depth: int) -> Search:
        """Full-width negamax of ``depth`` plies: one forward for all of its leaves.

        Returns ``(value, per_move)``: the node's value for its mover and each root
        move's value (``-inf`` for the illegal ones).
        """
        views, parent, pits, rem, sign, exact, over = subtree(
            view, depth, self.free_extra, self.empty_capture
        )
        cache.nodes += views.shape[0]
        leaves = ~over & (rem == 0)
        yield from _fetch(cache, views[leaves])
        leaf_values = np.zeros(views.shape[0])
        for i in np.flatnonzero(leaves):
            leaf_values[i] = cache.value(views[i])
        value = back_up(parent, sign, exact, over, leaf_values)
        per_move = np.full(N_PITS, -math.inf)
        for i in np.flatnonzero(parent == 0):
            per_move[pits[i]] = exact[i] if over[i] else sign[i] * value[i]
        return float(value[0]), per_move

    def _negamax(
        self, cache: _Cache, view: np.ndarray, depth: int, alpha: float, beta: float
    ) -> Search:
        """``(value, best pit)`` of a position whose priors are cached, for its mover."""
        kids, legal, extra, over, exact = expand(view, self.empty_capture)
        cache.nodes += 1
        below = np.where(extra & self.free_extra, depth, depth - 1)
        yield from _fetch(cache, kids[legal & ~over & (below > self.frontier)])  # their priors
        best, best_pit = -math.inf, -1
        for pit in np.argsort(-cache.priors(view), kind="stable"):
            if not legal[pit]:
                continue
            if over[pit]:
                score = float(exact[pit])
            else:
                sign = 1.0 if extra[pit] else -1.0
                lo, hi = (alpha, beta) if extra[pit] else (-beta, -alpha)
                if below[pit] <= self.frontier:
                    inner, _ = yield from self._frontier(cache, kids[pit], int(below[pit]))
                else:
                    inner, _ = yield from self._negamax(cache, kids[pit], int(below[pit]), lo, hi)
                score = sign * inner
            if score > best:
                best, best_pit = score, int(pit)
            alpha = max(alpha, best)
            if alpha >= beta:
                break
        return best, best_pit


# --- PUCT ------------------------------------------------------------------------


class _Node:
    """A position in the PUCT tree with its edge statistics, for its mover.

    ``n``/``w`` are the visits and summed values of each move, from this node's
    mover's view; ``kids`` hold the expanded children (None until expanded).
    """

    __slots__ = ("exact", "extra", "kids", "legal", "n", "over", "priors", "value", "views", "w")

    def __init__(self, view: np.ndarray, priors: np.ndarray, value: float, empty_capture: bool):
        self.views, self.legal, self.extra, self.over, self.exact = expand(view, empty_capture)
        self.priors = priors
        self.value = float(value)
        self.n = np.zeros(N_PITS)
        self.w = np.zeros(N_PITS)
        self.kids: list[_Node | None] = [None] * N_PITS

    def pick(self, c_puct: float) -> int:
        """The legal move maximizing Q + U; unvisited moves take the node's own value as Q."""
        q = np.where(self.n > 0, self.w / np.maximum(self.n, 1.0), self.value)
        u = c_puct * self.priors * math.sqrt(max(self.n.sum(), 1.0)) / (1.0 + self.n)
        return int(np.argmax(np.where(self.legal, q + u, -math.inf)))


Path_ = list[tuple[_Node, int]]


def _visit(path: Path_, value: float, visits: float = 1.0) -> None:
    """Add ``value`` (for the mover at the path's last node) and ``visits`` up the path."""
    for i in range(len(path) - 1, -1, -1):
        node, pit = path[i]
        node.n[pit] += visits
        node.w[pit] += value
        if i > 0 and not path[i - 1][0].extra[path[i - 1][1]]:
            value = -value


class Puct:
    """AlphaZero's PUCT: the policy as the prior, the value head at the leaves.

    ``simulations`` leaves (or finished games) are visited per move; ``leaves``
    of them per forward pass, spread by a virtual loss (a loss and a visit on
    the path while the leaf waits). The move played is the most visited.
    """

    def __init__(
        self,
        simulations: int,
        c_puct: float = DEFAULT_C_PUCT,
        leaves: int = DEFAULT_LEAVES,
        empty_capture: bool = False,
    ) -> None:
        if not 1 <= simulations <= MAX_SIMULATIONS:
            raise ValueError(f"mcts simulations: expected 1..{MAX_SIMULATIONS}, got {simulations}")
        if leaves < 1 or c_puct <= 0:
            raise ValueError(f"expected leaves >= 1 and c_puct > 0, but got {leaves}, {c_puct}")
        self.simulations = int(simulations)
        self.c_puct = float(c_puct)
        self.leaves = int(leaves)
        self.empty_capture = bool(empty_capture)
        self.name = f"mcts:{simulations}"

    def search(self, view: np.ndarray) -> Search:
        """The search of one position (a generator for :func:`run_lockstep`) -> a Decision."""
        probs, values = yield view[None, :]
        root = _Node(view, probs[0], values[0], self.empty_capture)
        done = 0
        while done < self.simulations:
            batch = self._collect(root, self.simulations - done)
            done += batch.finished
            if batch.paths:
                probs, values = yield np.stack(batch.views)
                for path, leaf, p, v in zip(batch.paths, batch.views, probs, values, strict=True):
                    _visit(path, 1.0, visits=-1.0)  # the virtual loss goes
                    node, pit = path[-1]
                    node.kids[pit] = _Node(leaf, p, v, self.empty_capture)
                    _visit(path, v if node.extra[pit] else -v)
                done += len(batch.paths)
        best = int(np.argmax(np.where(root.legal, root.n + 1e-3 * root.priors, -1.0)))
        return Decision(pit=best, value=float(root.w[best] / max(root.n[best], 1.0)), nodes=done)

    def _collect(self, root: _Node, budget: int) -> _Batch:
        """Up to ``leaves`` new leaves for one forward pass; finished games are scored at once."""
        batch = _Batch()
        seen: set[bytes] = set()
        while len(batch.paths) < min(self.leaves, budget - batch.finished):
            path: Path_ = []
            node: _Node | None = root
            while node is not None:
                pit = node.pick(self.c_puct)
                path.append((node, pit))
                if node.over[pit]:
                    break
                node = node.kids[pit]
            last, pit = path[-1]
            if last.over[pit]:
                _visit(path, float(last.exact[pit]))
                batch.finished += 1
                continue
            key = last.views[pit].tobytes()
            if key in seen:  # the same leaf twice: evaluate what we have
                break
            seen.add(key)
            _visit(path, -1.0)  # virtual loss: steer the next selections elsewhere
            batch.paths.append(path)
            batch.views.append(last.views[pit])
        return batch


@dataclass
class _Batch:
    paths: list[Path_] = field(default_factory=list)
    views: list[np.ndarray] = field(default_factory=list)
    finished: int = 0


# --- the agent ---------------------------------------------------------------------


SearchKind = AlphaBeta | Puct


def parse_search(spec: str, *, empty_capture: bool = False) -> SearchKind:
    """``"ab:5"`` -> :class:`AlphaBeta` of depth 5; ``"mcts:200"`` -> :class:`Puct`."""
    kind, _, arg = str(spec).partition(":")
    if arg.isdigit():
        if kind in ("ab", "abx") and 1 <= int(arg) <= MAX_AB_DEPTH:
            return AlphaBeta(int(arg), free_extra=kind == "abx", empty_capture=empty_capture)
        if kind == "mcts" and 1 <= int(arg) <= MAX_SIMULATIONS:
            return Puct(int(arg), empty_capture=empty_capture)
    raise ValueError(f"a search is {SEARCH_HELP}, but got {spec!r}")


class SearchAgent:
    """An opponent (env/opponents.py's interface) that searches with a network at each move.

    All the games of a call are searched in lockstep (one forward pass per round
    for all of them). A position with one legal move is played without a search.
    """

    def __init__(self, evaluate: Evaluator, search: SearchKind, name: str | None = None) -> None:
        self.evaluate = evaluate
        self.search = search
        self.name = name or f"policy+{search.name}"
        self.last: list[Decision] = []  # the decisions of the last call (values, nodes)

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator | None = None):
        views = to_views(np.asarray(boards, dtype=BOARD_DTYPE), np.asarray(players, np.int64))
        legal = views[:, :N_PITS] > 0
        forced = legal.sum(axis=1) == 1
        decisions: list[Decision | None] = [None] * views.shape[0]
        todo = np.flatnonzero(~forced)
        found = run_lockstep([self.search.search(views[i]) for i in todo], self.evaluate)
        for i, decision in zip(todo, found, strict=True):
            decisions[i] = decision
        for i in np.flatnonzero(forced):
            decisions[i] = Decision(pit=int(np.argmax(legal[i])), value=math.nan)
        self.last = [d for d in decisions if d is not None]
        return np.array([d.pit for d in self.last], dtype=np.int64)


def search_agent(
    path: str | Path, spec: str, *, stones: int = DEFAULT_STONES, empty_capture: bool = False
) -> SearchAgent:
    """``policy:PATH+SPEC`` made real: the model file's network under the search ``spec``."""
    search = parse_search(spec, empty_capture=empty_capture)
    return SearchAgent(load_evaluator(path, stones), search, name=f"policy:{path}+{spec}")


def time_moves(agent: SearchAgent, views: np.ndarray, clock: Callable[[], float]) -> float:
    """Milliseconds per move of ``agent`` over ``views``, one position at a time."""
    players = np.zeros(views.shape[0], dtype=np.int64)
    start = clock()
    for i in range(views.shape[0]):
        agent.act(views[i : i + 1], players[i : i + 1])
    return (clock() - start) * 1000.0 / max(views.shape[0], 1)
