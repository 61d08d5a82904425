"""The agent's view of a board: its own seat first, so one policy plays both seats.

Kept apart from the env so that opponents (a trained policy) and the evaluator
build exactly the observation the policy was trained on. :class:`Observation`
names the two kinds a policy can expect: the 14 counts, or the counts followed
by the lookahead features (``env/features.py``) when a study asks for
``lookahead``; a saved policy's metadata says which (``env/policy_files.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from env.features import PER_MOVE, feature_count, lookahead_features
from env.options import DEFAULT_STONES
from env.rules import BOARD_SIZE, N_PITS, side_of

OBS_SIZE = BOARD_SIZE


def observe(boards: np.ndarray, players: np.ndarray, stones: int) -> np.ndarray:
    """``(n, 14)`` float32 observations ``[own pits, own store, opp pits, opp store]``.

    Counts are divided by the stones per pit, so a starting pit reads 1.0 whatever
    the variant; SB3's default MLP policy takes this as it is.
    """
    boards = np.atleast_2d(boards)
    players = np.asarray(players).reshape(-1)
    first, second = boards[:, side_of(0)], boards[:, side_of(1)]
    own = np.where(players[:, None] == 0, first, second)
    opp = np.where(players[:, None] == 0, second, first)
    return (np.concatenate([own, opp], axis=1) / float(stones)).astype(np.float32)


def obs_high(stones: int) -> float:
    """The largest value an observation entry can take (every stone in one hole)."""
    return float(2 * N_PITS * stones) / float(stones)


def observation_space(stones: int):
    """The agent's observation space: 14 float32 values in [0, obs_high(stones)]."""
    return Observation(stones).space()


@dataclass(frozen=True)
class Observation:
    """What a policy sees: the counts, then (``lookahead`` 1 or 2) each move's features.

    One object builds both the observation space an env declares and the
    observations of a batch of boards, so the env, the policy opponents and the
    evaluator cannot disagree about them.
    """

    stones: int = DEFAULT_STONES
    lookahead: int = 0
    empty_capture: bool = False

    def __post_init__(self) -> None:
        if self.lookahead != 0:
            feature_count(self.lookahead)  # 1 or 2, else a ValueError

    @property
    def size(self) -> int:
        """Entries per observation: 14, or 14 + 6 * (17 or 19)."""
        return OBS_SIZE + (feature_count(self.lookahead) if self.lookahead else 0)

    def __call__(self, boards: np.ndarray, players: np.ndarray) -> np.ndarray:
        """``(n, size)`` float32 observations of ``boards`` from ``players``' seats."""
        counts = observe(boards, players, self.stones)
        if not self.lookahead:
            return counts
        boards = np.atleast_2d(boards)
        features = lookahead_features(
            boards, players, self.stones, self.lookahead, self.empty_capture
        )
        return np.concatenate([counts, features], axis=1)

    def space(self):
        """A ``Box`` with each entry's bounds: counts and boards within [0, all stones in
        one hole], flags within [0, 1], the reply features signed."""
        from gymnasium import spaces

        high = obs_high(self.stones)
        low_parts, high_parts = [np.zeros(OBS_SIZE)], [np.full(OBS_SIZE, high)]
        if self.lookahead:
            move_low = np.r_[np.zeros(BOARD_SIZE + 3), [-high, -1.0]][: PER_MOVE[self.lookahead]]
            move_high = np.r_[np.full(BOARD_SIZE, high), np.ones(3), [high, 1.0]]
            low_parts.append(np.tile(move_low, N_PITS))
            high_parts.append(np.tile(move_high[: PER_MOVE[self.lookahead]], N_PITS))
        return spaces.Box(
            low=np.concatenate(low_parts).astype(np.float32),
            high=np.concatenate(high_parts).astype(np.float32),
            dtype=np.float32,
        )
