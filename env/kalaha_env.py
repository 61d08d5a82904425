"""The Kalaha gymnasium environment, seen from one agent's seat.

The opponent's replies are played inside ``step``, so to the agent Kalaha is a
single-agent task: it acts, the opponent answers (possibly several times, after
extra turns), and the agent sees the board again when it is its move. Illegal
actions are masked through ``action_masks()``, the hook sb3-contrib's
``MaskablePPO`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from env.observation import OBS_SIZE, obs_high, observe
from env.opponents import Opponent, make_opponent
from env.rules import BOARD_DTYPE, N_PITS, apply_moves, initial_board, legal_masks

OpponentLike = str | Opponent
MAX_OPENING_PLIES = 20


class KalahaEnv(gym.Env):
    """Kalah(6, seeds) against a fixed opponent (or a mix drawn per episode).

    Args:
        opponent: an opponent or spec (``"random"``, ``"greedy"``, ``"minimax:2"``,
            ``"policy:model.zip"``), or a sequence of them to draw from each episode.
        seeds: seeds per pit at the start (3..6 are common).
        seat: 0 (move first), 1 (move second) or ``None`` to draw it per episode.
        empty_capture: the variant that captures into an empty opposite pit too.
        store_diff_coef: shaping, reward per seed of change in
            (own store - opponent store) over a step, divided by the total seeds.
        extra_turn_coef: shaping, reward for each extra turn the agent earns.
        opening_plies: random plies played by both sides before the episode's
            first observation (varied openings for training).
        illegal_action: ``"raise"`` (default) raises ``ValueError`` on a masked
            action; ``"lose"`` ends the episode as a loss instead, for tools that
            sample unmasked actions (SB3's ``check_env`` does).
        render_mode: ``"ansi"`` draws the board as text.

    The terminal reward is +1 win, -1 loss, 0 draw; shaping terms add to it.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        opponent: OpponentLike | Sequence[OpponentLike] = "random",
        seeds: int = 4,
        seat: int | None = None,
        empty_capture: bool = False,
        store_diff_coef: float = 0.0,
        extra_turn_coef: float = 0.0,
        opening_plies: int = 0,
        illegal_action: str = "raise",
        render_mode: str | None = None,
    ) -> None:
        if (
            not isinstance(opening_plies, int | np.integer)
            or not 0 <= opening_plies <= MAX_OPENING_PLIES
        ):
            # Longer openings end most games before the agent moves (random games last 12+ plies).
            raise ValueError(
                f"opening_plies must be an integer in 0..{MAX_OPENING_PLIES}, but got {opening_plies!r}"
            )
        if illegal_action not in ("raise", "lose"):
            raise ValueError(
                f"illegal_action must be 'raise' or 'lose', but got {illegal_action!r}"
            )
        if seat not in (None, 0, 1):
            raise ValueError(f"seat must be 0, 1 or None (drawn per episode), but got {seat!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', but got {render_mode!r}")
        initial_board(seeds)  # validates seeds
        specs = (
            [opponent]
            if isinstance(opponent, str) or not isinstance(opponent, Sequence)
            else list(opponent)
        )
        if not specs:
            raise ValueError("opponent must name at least one opponent")
        self.opponents = [
            make_opponent(o, seeds=seeds, empty_capture=empty_capture) if isinstance(o, str) else o
            for o in specs
        ]
        self.seeds = seeds
        self.fixed_seat = seat
        self.empty_capture = bool(empty_capture)
        self.store_diff_coef = float(store_diff_coef)
        self.extra_turn_coef = float(extra_turn_coef)
        self.opening_plies = int(opening_plies)
        self.illegal_action = illegal_action
        self.render_mode = render_mode
        self.total_seeds = 2 * N_PITS * seeds

        self.action_space = spaces.Discrete(N_PITS)
        self.observation_space = spaces.Box(
            low=0.0, high=obs_high(seeds), shape=(OBS_SIZE,), dtype=np.float32
        )
        self._board = np.asarray(initial_board(seeds), dtype=BOARD_DTYPE)[None, :].copy()
        self._to_move = 0
        self.seat = 0
        self.opponent: Opponent = self.opponents[0]
        self._done = True

    # --- helpers ---------------------------------------------------------------

    def _play(self, player: int, pit: int) -> bool:
        nxt, over = apply_moves(
            self._board,
            np.array([player], dtype=np.int64),
            np.array([pit], dtype=np.int64),
            self.empty_capture,
        )
        self._to_move = int(nxt[0])
        return bool(over[0])

    def _mask_for(self, player: int) -> np.ndarray:
        return legal_masks(self._board, np.array([player], dtype=np.int64))[0]

    def _opponent_turns(self) -> bool:
        """Let the opponent move until it is the agent's turn or the game ends."""
        while self._to_move != self.seat:
            pit = int(self.opponent.act(self._board, np.array([self._to_move]), self.np_random)[0])
            if self._play(self._to_move, pit):
                return True
        return False

    def _stores(self) -> tuple[int, int]:
        own = int(self._board[0, 7 * self.seat + 6])
        opp = int(self._board[0, 7 * (1 - self.seat) + 6])
        return own, opp

    def _obs(self) -> np.ndarray:
        return observe(self._board, np.array([self.seat]), self.seeds)[0]

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
        return self._mask_for(self.seat)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        seat = options.get("seat", self.fixed_seat)
        self.seat = int(self.np_random.integers(2)) if seat is None else int(seat)
        self.opponent = self.opponents[int(self.np_random.integers(len(self.opponents)))]
        while True:
            self._board[0] = initial_board(self.seeds)
            self._to_move = 0
            self._done = False
            for _ in range(self.opening_plies):
                mask = self._mask_for(self._to_move)
                pit = int(self.np_random.choice(np.flatnonzero(mask)))
                if self._play(self._to_move, pit):
                    break
            else:
                if not self._opponent_turns():
                    break
            # The opening or the opponent ended the game before the agent moved:
            # draw a fresh start rather than hand out a finished episode.
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
        own0, opp0 = self._stores()
        over = self._play(self.seat, pit)
        extra_turn = not over and self._to_move == self.seat
        if not over:
            over = self._opponent_turns()
        self._done = over
        own, opp = self._stores()

        reward = 0.0
        if self.store_diff_coef:
            reward += self.store_diff_coef * ((own - opp) - (own0 - opp0)) / self.total_seeds
        if self.extra_turn_coef and extra_turn:
            reward += self.extra_turn_coef
        if over:
            reward += 1.0 if own > opp else -1.0 if opp > own else 0.0
        return self._obs(), float(reward), over, False, self._info()

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
    top = "".join(f"[{b[i]:2d}]" for i in range(12, 6, -1))
    bottom = "".join(f"[{b[i]:2d}]" for i in range(0, 6))
    tag = {0: ("", "  (agent)"), 1: ("  (agent)", "")}.get(agent_seat, ("", ""))
    return (
        f"      p1:  {top}{tag[0]}\n"
        f"    [{b[13]:2d}]{' ' * 26}[{b[6]:2d}]\n"
        f"      p0:  {bottom}{tag[1]}\n"
    )
