"""The Kalaha gymnasium environment, seen from one agent's seat.

The opponent's replies are played inside ``step``, so to the agent Kalaha is a
single-agent task: it acts, the opponent answers (possibly several times, after
extra turns), and the agent sees the board again when it is its move. Illegal
actions are masked through ``action_masks()``, the hook sb3-contrib's
``MaskablePPO`` calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from env.games import GameTable
from env.opponents import Opponent
from env.options import DEFAULTS, GameOptions, opponent_mix
from env.rules import N_PITS, pit_index, store_of

OpponentLike = str | Opponent

__all__ = ["KalahaEnv", "render_board"]


class KalahaEnv(gym.Env):
    """Kalah(6, stones) against a fixed opponent (or a mix drawn per episode).

    Args:
        opponent: an opponent or spec (``"random"``, ``"greedy"``, ``"minimax:2"``,
            ``"policy:model.zip"``), a sequence of them to draw from each episode, or
            a mapping opponent -> share of episodes.
        stones: stones per pit at the start (3..6 are common).
        seat: 0 (move first), 1 (move second) or ``None`` to draw it per episode.
        empty_capture: the variant that captures into an empty opposite pit too.
        store_diff_coef: shaping, reward per stone of change in
            (own store - opponent store) over a step, divided by the total stones.
        extra_turn_coef: shaping, reward for each extra turn the agent earns.
        opening_plies: random plies played by both sides before the episode's
            first observation (varied openings for training).
        opponent_weights: the share of episodes against each opponent (default equal).
        lookahead: 0, or 1 or 2 plies of lookahead features after the counts in the
            observation (``env/features.py``), for a policy that reads them.
        illegal_action: ``"raise"`` (default) raises ``ValueError`` on a masked
            action; ``"lose"`` ends the episode as a loss instead, for tools that
            sample unmasked actions (SB3's ``check_env`` does).
        render_mode: ``"ansi"`` draws the board as text.

    The game options become one :class:`env.options.GameOptions` (``self.options``),
    whose defaults these keywords share; :meth:`from_options` takes one as it is.
    The terminal reward is +1 win, -1 loss, 0 draw; shaping terms add to it. The
    episode logic is :class:`env.games.GameTable`'s, shared with ``KalahaVecEnv``.
    """

    # gymnasium.Env annotates metadata as an instance attribute, though every env sets it
    # on the class (as here, a ClassVar): its annotation is the wrong one.
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}  # type: ignore[misc]

    def __init__(
        self,
        opponent: OpponentLike | Sequence[OpponentLike] | Mapping[str, float] = DEFAULTS.opponents,
        stones: int = DEFAULTS.stones,
        seat: int | None = None,
        empty_capture: bool = DEFAULTS.empty_capture,
        store_diff_coef: float = DEFAULTS.store_diff_coef,
        extra_turn_coef: float = DEFAULTS.extra_turn_coef,
        opening_plies: int = DEFAULTS.opening_plies,
        opponent_weights: Sequence[float] | None = None,
        lookahead: int = 0,
        illegal_action: str = "raise",
        render_mode: str | None = None,
    ) -> None:
        options = GameOptions(
            opponents=opponent_mix(opponent, opponent_weights),
            stones=stones,
            empty_capture=empty_capture,
            store_diff_coef=store_diff_coef,
            extra_turn_coef=extra_turn_coef,
            opening_plies=opening_plies,
        )
        self._build(options, seat, illegal_action, render_mode, lookahead)

    @classmethod
    def from_options(
        cls,
        options: GameOptions,
        *,
        seat: int | None = None,
        illegal_action: str = "raise",
        render_mode: str | None = None,
        lookahead: int = 0,
    ) -> KalahaEnv:
        """One game of ``options``, as they are (what ``DummyVecEnv`` builds per env)."""
        kalaha = cls.__new__(cls)  # the keywords are only another way to give the options
        kalaha._build(options, seat, illegal_action, render_mode, lookahead)
        return kalaha

    def _build(
        self,
        options: GameOptions,
        seat: int | None,
        illegal_action: str,
        render_mode: str | None,
        lookahead: int = 0,
    ) -> None:
        if illegal_action not in ("raise", "lose"):
            raise ValueError(
                f"illegal_action must be 'raise' or 'lose', but got {illegal_action!r}"
            )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', but got {render_mode!r}")
        self.table = GameTable(1, options, seat=seat, lookahead=lookahead)
        self.options = options
        self.fixed_seat = seat
        self.illegal_action = illegal_action
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(N_PITS)
        self.observation_space = self.table.observation.space()
        self._done = True

    # --- what the table holds, for one game ----------------------------------------

    @property
    def _board(self) -> np.ndarray:
        return self.table.boards

    @property
    def seat(self) -> int:
        return int(self.table.seat[0])

    @property
    def opponent(self) -> Opponent:
        opp = self.table.opponent[0]
        return opp if opp is not None else self.table.sources[0]  # type: ignore[return-value]

    def _stores(self) -> tuple[int, int]:
        own, opp = self.table.stores()
        return int(own[0]), int(opp[0])

    def _obs(self) -> np.ndarray:
        return self.table.observations()[0]

    def _info(self) -> dict[str, Any]:
        own, opp = self._stores()
        info: dict[str, Any] = {
            "seat": self.seat,
            "opponent": self.opponent.name,
            "own_store": own,
            "opponent_store": opp,
            "action_mask": self.action_masks(),
        }
        if self._done:
            info["winner"] = "agent" if own > opp else "opponent" if opp > own else "draw"
        return info

    # --- the gymnasium API -----------------------------------------------------

    def action_masks(self) -> np.ndarray:
        """Legal actions for the agent (all False once the game is over)."""
        if self._done:
            return np.zeros(N_PITS, dtype=bool)
        return self.table.masks()[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if self.table.streams.generators[0] is not self.np_random:  # a new seed
            self.table.streams.reseed(0, self.np_random)
        seat = options.get("seat", self.fixed_seat)
        if seat not in (None, 0, 1):
            raise ValueError(f"seat must be 0, 1 or None (drawn per episode), but got {seat!r}")
        self.table.fixed_seat = seat
        try:
            self.table.start(np.zeros(1, dtype=np.int64))
        finally:
            self.table.fixed_seat = self.fixed_seat
        self._done = False
        return self._obs(), self._info()

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called on a finished game: call reset() first")
        pit = int(action)
        mask = self.action_masks()
        if not 0 <= pit < N_PITS or not mask[pit]:
            if self.illegal_action == "lose":
                self._done = True
                info = self._info() | {"illegal_action": pit, "winner": "opponent"}
                return self._obs(), -1.0, True, False, info
            raise ValueError(
                f"action {action!r} is not legal here: expected one of the non-empty "
                f"pits {[int(k) for k in np.flatnonzero(mask)]}; use action_masks() to mask actions"
            )
        rewards, done, _ = self.table.step(np.array([pit], dtype=np.int64))
        self._done = bool(done[0])
        return self._obs(), float(rewards[0]), self._done, False, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return render_board(self._board[0], agent_seat=self.seat)


def render_board(board: Sequence[int] | np.ndarray, agent_seat: int | None = None) -> str:
    """Draw a board as text: player 1's pits along the top, right to left.

    ::

              p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
            [ 0]                          [ 0]
              p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
    """
    b = [int(x) for x in board]
    top = "".join(f"[{b[pit_index(1, k)]:2d}]" for k in reversed(range(N_PITS)))
    bottom = "".join(f"[{b[pit_index(0, k)]:2d}]" for k in range(N_PITS))
    tags: dict[int | None, tuple[str, str]] = {0: ("", "  (agent)"), 1: ("  (agent)", "")}
    tag = tags.get(agent_seat, ("", ""))  # no seat: no label
    return (
        f"      p1:  {top}{tag[0]}\n"
        f"    [{b[store_of(1)]:2d}]{' ' * 26}[{b[store_of(0)]:2d}]\n"
        f"      p0:  {bottom}{tag[1]}\n"
    )
