"""Kalah(6, n): the rules, a gymnasium environment and opponents.

Importing the package registers the environment as ``kalaha/Kalaha-v0``::

    import gymnasium as gym
    import env  # noqa: F401  (registers the id)

    kalaha = gym.make("kalaha/Kalaha-v0", opponent="greedy")

This package imports nothing from ``tuner``: the game stands on its own (an
import-linter contract in pyproject.toml checks it; ``make lint``).
"""

from gymnasium.envs.registration import register, registry

ENV_ID = "kalaha/Kalaha-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="env.kalaha_env:KalahaEnv")

__all__ = ["ENV_ID"]
