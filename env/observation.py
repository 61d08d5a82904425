"""The agent's view of a board: its own seat first, so one policy plays both seats.

Kept apart from the env so that opponents (a trained policy) and the evaluator
build exactly the observation the policy was trained on.
"""

from __future__ import annotations

import numpy as np

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
    from gymnasium import spaces

    return spaces.Box(low=0.0, high=obs_high(stones), shape=(OBS_SIZE,), dtype=np.float32)
