"""Strength of a policy: batched games against opponents -> scores, and a rating.

Every game of an evaluation is stepped together (``env.arena.play_match``), so
the policy makes one forward pass per ply, with action masks, for all live games.
Each random opening is played from both seats, and the opening pair is the unit
of every interval.

Three measures, one per study objective:

- ``score``: (wins + draws / 2) / games against each named opponent (a score, not a
  win rate: draws count half), combined by mean, minimum or weights.
  :func:`evaluate_policy`.
- ``rating``: an Elo rating on the reference ladder (``env/ladder.yaml``), by
  maximum likelihood with the ladder's ratings fixed. :func:`rate_policy` plays
  in rounds and sends each round's games to the ladder members whose expected
  score against the current estimate is least certain (the cheaper of them
  preferred), so no games are spent on opponents the agent always beats or always
  loses to. The rating does not saturate: beating greedy every time still leaves
  minimax:1 ... minimax:6 to climb.

- ``perfect``: minus the mean regret on the solved set (:mod:`tuner.strength.perfect`),
  no games; recorded beside a rating or score by default where the game allows.

:func:`make_evaluator` builds the evaluation a study asks for; the training
callback calls it with the model at each evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from env.arena import MatchResult, play_match
from env.opponents import Opponent, PolicyOpponent, make_opponent
from env.options import DEFAULT_EVAL_GAMES, DEFAULT_OPENING_PLIES, DEFAULT_STONES, GameOptions
from env.search import PolicyEvaluator, SearchAgent, parse_search
from tuner.strength.ladder import Ladder, ladder_opponent, load_ladder
from tuner.strength.perfect import SOLVED_STONES, PerfectScore, perfect_scorer, perfect_value
from tuner.strength.rating import PairResults, Rating, expected_score, rate_against

# The belief about an agent nobody has rated yet: wide enough to spread the first
# round over the ladder. Within a trial, each evaluation starts from the last one.
_UNKNOWN_SD = 400.0
# An agent changes between evaluations: never start more certain than this.
_MIN_START_SD = 100.0
# Members whose expected information is below this share of the best one's get no games:
# with a sure estimate, those whose expected score lies outside about 0.28-0.72.
_MIN_INFO_SHARE = 0.8
# What an agent's own move costs in an evaluation (a small policy's batched forward pass,
# per game and move; measured with make bench-rating): the floor under a member's cost.
AGENT_MS_PER_MOVE = 0.3
_NORMAL_NODES = np.array([-1.645, -1.036, -0.524, 0.0, 0.524, 1.036, 1.645])


@dataclass(frozen=True)
class OpponentResult:
    """One opponent's games: counts, the score with a 95% interval over opening pairs."""

    opponent: str
    games: int
    wins: int
    draws: int
    losses: int
    score: float
    ci_low: float
    ci_high: float
    score_first: float
    score_second: float
    distinct_games: int
    distinct_openings: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion; fractional successes (draws, pairs) allowed."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def opponent_result(name: str, matches: Sequence[MatchResult]) -> OpponentResult:
    """Summarize one or more matches against ``name``.

    The interval is Wilson's with the opening pairs as the trials: a pair's mean
    score lies in [0, 1], so its variance is at most p(1 - p) and the interval is
    not narrower than the pairs justify (counting games would halve the unit).
    """
    outcomes = np.concatenate([m.outcomes for m in matches])
    seats = np.concatenate([m.seats for m in matches])
    pair_scores = np.concatenate([m.pair_scores() for m in matches])
    openings = {row.tobytes() for m in matches for row in m.openings}
    scores = (outcomes + 1) / 2.0
    lo, hi = wilson_interval(float(pair_scores.sum()), pair_scores.size)
    return OpponentResult(
        opponent=name,
        games=int(outcomes.size),
        wins=int((outcomes == 1).sum()),
        draws=int((outcomes == 0).sum()),
        losses=int((outcomes == -1).sum()),
        score=float(scores.mean()),
        ci_low=lo,
        ci_high=hi,
        score_first=float(scores[seats == 0].mean()),
        score_second=float(scores[seats == 1].mean()),
        distinct_games=sum(m.distinct_games for m in matches),
        distinct_openings=len(openings),
    )


def as_agent(
    policy: Any,
    stones: int = DEFAULT_STONES,
    search: str | None = None,
    empty_capture: bool = False,
) -> Opponent:
    """A MaskablePPO model (anything with its ``predict``) or an Opponent -> an Opponent.

    Models act through :class:`~env.opponents.PolicyOpponent`, with action masks;
    with ``search`` (``"ab:4"``, env/search.py) their network is the evaluation of
    a search at each move instead. An Opponent is used as it is.
    """
    if hasattr(policy, "act"):
        return policy
    if search is None:
        return PolicyOpponent(policy, stones=stones, name="agent")
    network = getattr(policy, "policy", policy)  # a MaskablePPO model, or its policy
    kind = parse_search(search, empty_capture=empty_capture)
    return SearchAgent(PolicyEvaluator(network, stones=stones), kind, name=f"agent+{search}")


def evaluate_policy(
    policy: Any,
    opponents: list[str],
    games: int,
    *,
    stones: int = DEFAULT_STONES,
    empty_capture: bool = False,
    opening_plies: int = DEFAULT_OPENING_PLIES,
    seed: int | None = None,
    search: str | None = None,
) -> dict[str, OpponentResult]:
    """Play ``games`` games (``games / 2`` openings, each from both seats) per opponent.

    ``search``: the model's network searches at each move (see :func:`as_agent`).
    """
    agent = as_agent(policy, stones, search, empty_capture)
    rng = np.random.default_rng(seed)
    results: dict[str, OpponentResult] = {}
    for name in opponents:
        # Random tie-breaks: as strong as the deterministic opponent, but more varied games.
        opponent = make_opponent(
            name, stones=stones, empty_capture=empty_capture, tie_break="random"
        )
        m = play_match(
            agent,
            opponent,
            games,
            stones=stones,
            empty_capture=empty_capture,
            opening_plies=opening_plies,
            rng=rng,
        )
        results[name] = opponent_result(name, [m])
    return results


def combine_score(
    results: dict[str, OpponentResult], combine: str, weights: dict[str, float] | None = None
) -> float:
    """One number from the per-opponent scores: their mean, minimum or weighted mean."""
    scores = {k: r.score for k, r in results.items()}
    if combine == "min":
        return min(scores.values())
    if combine == "weighted":
        assert weights is not None
        total = sum(weights[k] for k in scores)
        return sum(weights[k] * v for k, v in scores.items()) / total
    return sum(scores.values()) / len(scores)


# --- the rating ----------------------------------------------------------------------


@dataclass(frozen=True)
class RatingResult:
    """An agent's Elo rating on the ladder, and the games it came from, per member."""

    rating: Rating
    results: dict[str, OpponentResult]

    @property
    def games(self) -> int:
        return sum(r.games for r in self.results.values())


def allocate(
    ladder_ratings: np.ndarray,
    mean: float,
    sd: float,
    pairs: int,
    ms_per_move: np.ndarray | None = None,
) -> dict[int, int]:
    """Opening pairs per ladder member for one round: all to the members near the estimate.

    A game against a member tells most about the agent's rating where its outcome
    is least certain, p(1 - p) with p the expected score; averaged over the current
    belief (normal with ``mean`` and ``sd``), so that an uncertain estimate spreads
    its games and a sure one concentrates them on the members nearest to it.
    Members below 80% of the best one's information get none.

    Among the near members, ``ms_per_move`` (what a member's move costs, from the
    ladder file) tilts the split towards the cheaper ones, by the square root of the
    cost: the ladder's top is only about 50 Elo per step while minimax:6 costs ~4x
    minimax:5 per move, so an even split would spend most of an evaluation's time
    on one member for little more information.
    """
    xs = mean + sd * _NORMAL_NODES
    p = expected_score(xs[:, None] - ladder_ratings[None, :])
    info = (p * (1 - p)).mean(axis=0)
    keep = np.flatnonzero(info >= _MIN_INFO_SHARE * info.max())
    weight = info[keep]
    if ms_per_move is not None:
        weight = weight / np.sqrt(np.asarray(ms_per_move)[keep] + AGENT_MS_PER_MOVE)
    share = weight / weight.sum() * pairs
    counts = np.floor(share).astype(int)
    for k in np.argsort(counts - share)[: pairs - counts.sum()]:  # largest remainders
        counts[k] += 1
    return {int(j): int(c) for j, c in zip(keep, counts, strict=True) if c > 0}


def rate_policy(
    policy: Any,
    *,
    games: int = DEFAULT_EVAL_GAMES,
    rounds: int = 4,
    stones: int = DEFAULT_STONES,
    empty_capture: bool = False,
    opening_plies: int = DEFAULT_OPENING_PLIES,
    seed: int | None = None,
    start: Rating | None = None,
    ladder: Ladder | None = None,
    members: Sequence[Opponent] | None = None,
    search: str | None = None,
) -> RatingResult:
    """The Elo rating of ``policy`` (a model or an Opponent) on the reference ladder.

    ``games`` (even) are played in ``rounds`` growing rounds; each round's opening pairs go
    to the members :func:`allocate` picks around the estimate so far, and the rating
    is refitted after each round. ``start`` (a previous rating of the same agent,
    e.g. the last evaluation of a trial) focuses the first round. ``members`` are the
    ladder's opponents in its order (default: built from the ladder; a benchmark times them).
    """
    if games < 2 or games % 2:
        raise ValueError(f"games must be an even number of at least 2, but got {games}")
    ladder = ladder or load_ladder()
    agent = as_agent(policy, stones, search, empty_capture)
    rng = np.random.default_rng(seed)
    ratings = ladder.ratings
    costs = np.array([m.ms_per_move for m in ladder.members])
    if members is None:
        members = [
            ladder_opponent(n, stones=stones, empty_capture=empty_capture) for n in ladder.names
        ]
    if start is None:
        mean, sd = float(np.median(ratings)), _UNKNOWN_SD
    else:
        mean, sd = start.rating, max(_belief_sd(start), _MIN_START_SD)
    matches: dict[int, list[MatchResult]] = {}
    parts: list[PairResults] = []
    agent_index = len(members)
    rating = Rating(mean, -math.inf, math.inf)
    for pairs in round_sizes(games // 2, rounds):
        for j, n_pairs in allocate(ratings, mean, sd, pairs, costs).items():
            m = play_match(
                agent,
                members[j],
                2 * n_pairs,
                stones=stones,
                empty_capture=empty_capture,
                opening_plies=opening_plies,
                rng=rng,
            )
            matches.setdefault(j, []).append(m)
            parts.append(PairResults.of_match(agent_index, j, m.pair_scores()))
        rating = rate_against(PairResults.concat(parts), ratings)
        mean, sd = rating.rating, _belief_sd(rating)
    results = {
        ladder.names[j]: opponent_result(ladder.names[j], ms) for j, ms in sorted(matches.items())
    }
    return RatingResult(rating, results)


def round_sizes(total_pairs: int, rounds: int) -> list[int]:
    """Opening pairs per round, growing (1, 2, 3, ... parts): a small first round finds
    the agent, the later, larger ones play where it stands. Empty rounds are left out."""
    rounds = max(1, min(rounds, total_pairs))
    parts_total = rounds * (rounds + 1) // 2
    sizes, done = [], 0
    for r in range(rounds):
        upto = total_pairs * (r + 1) * (r + 2) // 2 // parts_total
        if upto > done:
            sizes.append(upto - done)
        done = upto
    return sizes


def _belief_sd(rating: Rating) -> float:
    """The interval's half-width in standard deviations; an open-ended one is 'unknown'."""
    width = rating.high - rating.low
    return width / (2 * 1.96) if math.isfinite(width) else _UNKNOWN_SD


# --- what a study evaluates ------------------------------------------------------------


@dataclass(frozen=True)
class Strength:
    """One evaluation: the value reported to the pruner, and what it came from."""

    value: float  # the rating, the combined score or minus the mean regret
    results: dict[str, OpponentResult]
    rating: Rating | None = None
    # The network's moves on the solved set (tuner.strength.perfect), where recorded.
    perfect: PerfectScore | None = None

    def describe(self) -> str:
        """``rating 512 [480, 545]``, ``score 0.381 over 600 games`` or ``optimal 0.553 regret
        3.09``, with the perfect-play numbers beside a rating or score: for progress lines."""
        if self.rating is not None:
            shown = f"rating {self.rating}"
        elif self.results or self.perfect is None:
            games = sum(r.games for r in self.results.values())
            shown = f"score {self.value:.3f}" + (f" over {games} games" if games else "")
        else:
            return self.perfect.describe()
        return shown + (f", {self.perfect.describe()}" if self.perfect is not None else "")


def perfect_applies(evaluation: Any, game: GameOptions) -> bool:
    """Whether an evaluation records the perfect-play numbers on ``game``: asked for
    (``perfect: true``, ``objective: perfect``; the spec checked the game), or by default
    wherever the solved set's game is played by the bare network."""
    if evaluation.perfect_required:
        return True
    return (
        evaluation.perfect is None
        and evaluation.search is None
        and game.stones == SOLVED_STONES
        and not game.empty_capture
    )


def make_evaluator(evaluation: Any, game: GameOptions, seed: int) -> Callable[[Any], Strength]:
    """model -> :class:`Strength`, with a study's evaluation settings (an ``EvaluationSpec``)
    on the game the agent trains on (``game``: its stones per pit and rules variant).

    Each call plays fresh openings (seeded by ``seed`` and the call's number). With
    ``objective: rating`` each evaluation starts from the previous rating, so its
    games go where the agent now stands.
    """
    stones, empty_capture = game.stones, game.empty_capture
    state: dict[str, Any] = {"n": 0, "last": None}
    ladder = load_ladder() if evaluation.objective == "rating" else None
    score_perfect = perfect_scorer() if perfect_applies(evaluation, game) else None

    def evaluate(model: Any) -> Strength:
        state["n"] += 1
        call_seed = seed * 1000 + state["n"]
        perfect = score_perfect(as_agent(model, stones)) if score_perfect else None
        if evaluation.objective == "perfect":
            assert perfect is not None
            return Strength(round(perfect_value(perfect), 4), {}, None, perfect)
        if ladder is not None:
            rated = rate_policy(
                model,
                games=evaluation.games,
                rounds=evaluation.rounds,
                stones=stones,
                empty_capture=empty_capture,
                opening_plies=evaluation.opening_plies,
                seed=call_seed,
                start=state["last"],
                ladder=ladder,
                search=evaluation.search,
            )
            state["last"] = rated.rating
            # Rounded: the dashboard, the pruner and the told value show what the interval
            # can tell apart (an Elo to 0.1, a score to 4 places), not 598.7401216150724.
            return Strength(round(rated.rating.rating, 1), rated.results, rated.rating, perfect)
        results = evaluate_policy(
            model,
            evaluation.opponents,
            evaluation.games,
            stones=stones,
            empty_capture=empty_capture,
            opening_plies=evaluation.opening_plies,
            seed=call_seed,
            search=evaluation.search,
        )
        score = combine_score(results, evaluation.combine, evaluation.weights)
        return Strength(round(score, 4), results, None, perfect)

    return evaluate
