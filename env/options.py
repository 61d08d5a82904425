"""The options of a game of Kalah and of its training league: one typed object, one default each.

Why one object: a study file's ``env:`` section reaches four places (the table of
games, the vec env, the evaluator and the export). Passed as a bag of keys, each
reader pulled what it needed with its own default, and the export renamed keys
back; here the options are built once, checked once, and handed on as they are
(as SB3 hands typed constructor arguments, not a dict with keys deleted before
the call). ``KalahaEnv`` keeps keyword arguments for ``gym.make`` and builds a
:class:`GameOptions` from them.

This module imports nothing but the standard library, so that the study schema
(``tuner.config.spec``) can read these defaults and names without loading numba
or torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

# Stones per pit at the start: Kalah(6, 4) is the standard game; the rules take 1..12.
DEFAULT_STONES = 4
MIN_STONES, MAX_STONES = 1, 12
# Longer openings end most games before the agent moves (random games last 12+ plies).
MAX_OPENING_PLIES = 20
# Evaluation: 2 random plies give about 35 distinct openings in 100 games, 4 plies
# about 95 (measured), so the default leaves few repeated openings.
DEFAULT_OPENING_PLIES = 4
# Games of one evaluation (per opponent for a score, in all for a rating): the one default
# of a study's `evaluation.games`, `tuner evaluate --games` and `rate_policy`.
DEFAULT_EVAL_GAMES = 200
# The league's opponents (env.league): the learner itself, and a pool of its past selves.
LEAGUE_NAMES = ("self", "pool")
# How a new episode picks a past self from the pool (env.league.SnapshotPool).
SAMPLINGS = ("uniform", "recent", "pfsp")

# An opponent mix: opponents with equal shares (a spec such as "greedy", or an object
# that acts), or a mapping opponent -> share of episodes.
OpponentMix = tuple[Any, ...] | dict[Any, float]


def opponent_mix(opponents: Any, weights: Sequence[float] | None = None) -> OpponentMix:
    """One opponent, a sequence of them, or a mapping of shares -> an :data:`OpponentMix`.

    ``weights`` (one per opponent) turns a sequence into a mapping of shares, the
    form ``KalahaEnv(opponent_weights=...)`` takes.
    """
    if isinstance(opponents, Mapping):
        if weights is not None:
            raise ValueError(
                f"expected either a mapping of shares or weights, but got both: "
                f"{dict(opponents)} and {list(weights)}"
            )
        return dict(opponents)
    one = isinstance(opponents, str) or not isinstance(opponents, Sequence)
    names = (opponents,) if one else tuple(opponents)
    if weights is None:
        return names
    if len(weights) != len(names):
        raise ValueError(
            f"expected one non-negative weight per opponent ({len(names)}), but got {list(weights)}"
        )
    shares: dict[Any, float] = {}
    for name, weight in zip(names, weights, strict=True):
        shares[name] = shares.get(name, 0.0) + float(weight)
    return shares


@dataclass(frozen=True)
class GameOptions:
    """A game of Kalah as the agent trains on it, and the league it trains in.

    Args:
        opponents: who the agent plays, drawn per episode: a tuple (equal shares) of
            opponent specs (``"random"``, ``"minimax:2@0.1"``, ``"policy:FILE"``, see
            ``env.opponents.make_opponent``) or objects that act, or a mapping
            opponent -> share of episodes. ``self`` (the learner's current weights)
            and ``pool`` (its past selves) make it self-play (``env.league``).
        stones: stones per pit at the start (Kalah(6, 4) is the standard game).
        empty_capture: the variant that captures into an empty opposite pit too.
        opening_plies: random plies by both sides before the agent's first move
            (varied openings for training).
        store_diff_coef: shaping, reward per stone of change in (own store -
            opponent store) over a step, divided by the total stones.
        extra_turn_coef: shaping, reward for each extra turn the agent earns.
        snapshot_every: the league takes a snapshot of the learner every this many steps.
        pool_size: at most this many past selves are kept in the pool.
        pool_sampling: how an episode draws a past self: ``uniform``, ``recent``
            (by recency rank) or ``pfsp`` (the ones the learner loses to most).
    """

    opponents: OpponentMix = ("random",)
    stones: int = DEFAULT_STONES
    empty_capture: bool = False
    opening_plies: int = 0
    store_diff_coef: float = 0.0
    extra_turn_coef: float = 0.0
    snapshot_every: int = 50_000
    pool_size: int = 10
    pool_sampling: str = "pfsp"

    def __post_init__(self) -> None:
        self._check_opponents()
        _check_int("stones", self.stones, MIN_STONES, MAX_STONES)
        _check_int("opening_plies", self.opening_plies, 0, MAX_OPENING_PLIES)
        _check_int("snapshot_every", self.snapshot_every, 1, None)
        _check_int("pool_size", self.pool_size, 1, None)
        if not isinstance(self.empty_capture, bool):
            raise ValueError(
                f"empty_capture: expected true or false, but got {self.empty_capture!r}"
            )
        for name in ("store_diff_coef", "extra_turn_coef"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name}: expected a number, but got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name}: expected a finite number, but got {value!r}")
        if self.pool_sampling not in SAMPLINGS:
            raise ValueError(
                f"pool_sampling: expected one of {list(SAMPLINGS)}, but got {self.pool_sampling!r}"
            )

    def _check_opponents(self) -> None:
        mix = self.opponents
        if not isinstance(mix, tuple | dict):
            raise ValueError(
                f"opponents: expected a tuple of opponents or a mapping opponent -> share "
                f"(env.options.opponent_mix builds one), but got {mix!r}"
            )
        if not mix:
            raise ValueError("opponents: expected at least one opponent, but got none")
        shares = list(mix.values()) if isinstance(mix, dict) else []
        for share in shares:
            if isinstance(share, bool) or not isinstance(share, numbers.Real):
                raise ValueError(f"opponents: expected shares (numbers >= 0), but got {mix}")
            if not math.isfinite(share) or share < 0:
                raise ValueError(f"opponents: expected finite shares >= 0, but got {mix}")
        if shares and sum(shares) <= 0:
            raise ValueError(f"opponents: expected shares with a positive sum, but got {mix}")

    @property
    def names(self) -> list[Any]:
        """The opponents, in order (the keys of a mapping of shares)."""
        return list(self.opponents)

    @property
    def weights(self) -> list[float]:
        """The share of episodes of each of :attr:`names` (equal for a tuple), not normalized."""
        mix = self.opponents
        return [float(w) for w in mix.values()] if isinstance(mix, dict) else [1.0] * len(mix)

    @property
    def is_league(self) -> bool:
        """Whether the learner plays itself (``self``) or its past selves (``pool``)."""
        return any(name in LEAGUE_NAMES for name in self.names)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as a study file's ``env:`` section and an export write it.

        The opponents stay a list or a mapping: the order of a mapping decides which
        games each opponent plays, so it is kept.
        """
        data = asdict(self)
        mix = self.opponents
        data["opponents"] = dict(mix) if isinstance(mix, dict) else list(mix)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GameOptions:
        """The options of plain data (a checked ``env:`` section); absent keys keep the default."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"expected env options among {sorted(known)}, but got {unknown}")
        values = dict(data)
        if "opponents" in values:
            values["opponents"] = opponent_mix(values["opponents"])
        return cls(**values)


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, but got {value!r}")
    number = int(value)
    if number < low or (high is not None and number > high):
        span = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}: expected an integer {span}, but got {value!r}")


# The one default of each option.
DEFAULTS = GameOptions()


def default_of(name: str) -> Any:
    """The one default of option ``name``, as plain data (``opponents`` is a list)."""
    return DEFAULTS.as_dict()[name]
