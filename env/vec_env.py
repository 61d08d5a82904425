"""``KalahaVecEnv``: SB3's ``VecEnv`` over a table of games, for training.

SB3's ``DummyVecEnv`` over ``n`` single-game envs calls the rules core once per
game per step from Python, deep-copies every info dict, and asks each env for
its action mask in turn; with a policy opponent it would make one forward pass
per game per ply. Here all ``n_envs`` games live in one :class:`env.games.GameTable`:
one numba call applies every agent move, each opponent answers all the games
that face it at once, finished games restart in place, and ``action_masks``
returns one ``(n_envs, 6)`` array.

Episode statistics are written as ``VecMonitor`` writes them (``info["episode"]``
with return, length and time), so SB3's logger and ``ep_info_buffer`` work as
with a monitored env; info dicts hold only that and ``terminal_observation``.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from env.games import GameTable
from env.options import DEFAULTS, GameOptions
from env.rules import N_PITS


class KalahaVecEnv(VecEnv):
    """``n_envs`` Kalaha games against opponents drawn per episode, stepped as one batch.

    Takes the :class:`env.options.GameOptions` as they are (``KalahaEnv``'s keywords
    build the same object), so the league names of the opponent mix become league
    sources (``env.league``), read back through :attr:`sources`. ``lookahead`` (1 or 2)
    appends each move's features to the observations (``env/features.py``), computed
    once per step for all games. With ``seed=s``, game ``i`` plays the episodes a
    ``KalahaEnv`` reset with seed ``s + i`` plays.
    """

    def __init__(
        self,
        n_envs: int,
        options: GameOptions = DEFAULTS,
        *,
        seat: int | None = None,
        lookahead: int = 0,
        seed: int | None = None,
    ) -> None:
        if not isinstance(n_envs, int) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive integer, but got {n_envs!r}")
        self.table = GameTable(n_envs, options, seat=seat, lookahead=lookahead)
        self.options = options
        self.render_mode = None  # read by VecEnv.__init__; the table draws no images
        super().__init__(n_envs, self.table.observation.space(), spaces.Discrete(N_PITS))
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(n_envs, dtype=np.float64)
        self._lengths = np.zeros(n_envs, dtype=np.int64)
        self._t0 = time.perf_counter()
        if seed is not None:
            self.seed(seed)

    @property
    def sources(self) -> list[Any]:
        """The opponent kinds episodes are drawn from (league sources included)."""
        return self.table.sources

    def reset(self) -> np.ndarray:
        # Seeds given through seed() apply at this reset, as in SB3's own VecEnvs.
        for i, s in enumerate(self._seeds):
            if s is not None:
                self.table.streams.reseed(i, np.random.default_rng(s))
        self._reset_seeds()
        self._reset_options()
        self.table.start(np.arange(self.num_envs))
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self.table.observations()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        actions, self._actions = self._actions, None
        legal = self.table.masks()[np.arange(self.num_envs), actions]
        if not legal.all():
            bad = int(np.flatnonzero(~legal)[0])
            raise ValueError(
                f"env {bad}: action {int(actions[bad])} is not legal: expected one of the "
                f"non-empty pits {np.flatnonzero(self.table.masks()[bad]).tolist()}; "
                "mask actions with action_masks() (MaskablePPO does)"
            )
        rewards, dones, _ = self.table.step(actions)
        self._returns += rewards
        self._lengths += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done_idx = np.flatnonzero(dones)
        if done_idx.size:
            terminal = self.table.observations(done_idx)  # features only where needed
            elapsed = round(time.perf_counter() - self._t0, 6)
            for row, i in enumerate(done_idx):
                infos[i]["terminal_observation"] = terminal[row]
                infos[i]["episode"] = {
                    "r": float(self._returns[i]),
                    "l": int(self._lengths[i]),
                    "t": elapsed,
                }
            self._returns[done_idx] = 0.0
            self._lengths[done_idx] = 0
            self.table.start(done_idx)
        return self.table.observations(), rewards.astype(np.float32), dones, infos

    def action_masks(self) -> np.ndarray:
        """``(n_envs, 6)``: the legal pits of every game, in one call."""
        return self.table.masks()

    def close(self) -> None:
        pass

    # --- the rest of SB3's VecEnv interface: attributes live on the table ---------------

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        if method_name == "action_masks":
            # sb3-contrib's get_action_masks() stacks what this returns: one array, one call.
            return self.action_masks()[list(self._get_indices(indices))]  # type: ignore[return-value]
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        return hasattr(self, attr_name)
