"""Policy building blocks that SB3's ``MlpPolicy`` lacks: a shared trunk for pi and vf.

Since SB3 1.8 the actor and critic of ``MlpPolicy`` never share hidden layers;
sharing happens through the features extractor. ``SharedTrunk`` is that
extractor: ``shared_trunk: [128]`` in a study puts one 128-unit layer under both
heads (with ``share_features_extractor=True``), so "shared or separate" is a
choice a study can search.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class SharedTrunk(BaseFeaturesExtractor):
    """An MLP whose output feeds both the policy and the value head."""

    def __init__(self, observation_space: gym.Space, hidden: Sequence[int] = (64,)) -> None:
        hidden = list(hidden)
        super().__init__(observation_space, features_dim=hidden[-1])
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = get_flattened_obs_dim(observation_space)
        for width in hidden:
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        self.net = nn.Sequential(*layers)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)
