"""KalahaVecEnv plays, from the same RNG seeds, exactly the games of the single-game KalahaEnv.

Both envs sit on one ``GameTable``, so this is the check that the VecEnv layer
(auto-restart, terminal observations, episode statistics, masks in one call)
adds nothing and loses nothing: observations, masks, rewards and dones are
compared step by step, with opening plies, shaping and each opponent kind.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks

from env.kalaha_env import KalahaEnv
from env.opponents import PolicyOpponent
from env.options import GameOptions
from env.vec_env import KalahaVecEnv

N_ENVS = 4
STEPS = 300


def _policy_opponent() -> PolicyOpponent:
    torch.manual_seed(0)
    model = MaskablePPO("MlpPolicy", KalahaVecEnv(2), policy_kwargs={"net_arch": [8]}, seed=0)
    return PolicyOpponent(model, name="policy")


def _compare(options: dict, seed: int = 7) -> int:
    """Step both envs with the same legal actions; return the episodes finished.

    The single envs take ``options`` as gym.make's keywords; the vec env takes the
    GameOptions they built, as it is.
    """
    singles = [KalahaEnv(**options) for _ in range(N_ENVS)]
    vec = KalahaVecEnv(N_ENVS, singles[0].options, seat=options.get("seat"), seed=seed)
    obs = vec.reset()
    single_obs = [e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(single_obs))
    picker = np.random.default_rng(99)
    episodes = 0
    for _ in range(STEPS):
        masks = get_action_masks(vec)
        single_masks = np.stack([e.action_masks() for e in singles])
        np.testing.assert_array_equal(masks, single_masks)
        actions = (picker.random(masks.shape) * masks).argmax(axis=1)
        obs, rewards, dones, infos = vec.step(actions)
        for i, e in enumerate(singles):
            o, r, term, trunc, _ = e.step(int(actions[i]))
            assert not trunc
            assert bool(dones[i]) == term
            assert rewards[i] == pytest.approx(r)
            if term:
                episodes += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], o)
                assert set(infos[i]["episode"]) == {"r", "l", "t"}
                o, _ = e.reset()
            np.testing.assert_array_equal(obs[i], o)
    return episodes


@pytest.mark.parametrize(
    "options",
    [
        {"opponent": "random"},
        {"opponent": "greedy", "opening_plies": 4},
        {"opponent": ["random", "greedy", "minimax:2"], "store_diff_coef": 0.5},
        {"opponent": "minimax:3", "seat": 1, "extra_turn_coef": 0.05, "stones": 3},
        {"opponent": ["random", "greedy"], "opponent_weights": [0.8, 0.2], "opening_plies": 2},
    ],
    ids=["random", "greedy-openings", "mix-shaping", "minimax-seat1", "weighted"],
)
def test_same_seed_same_games_as_single_envs(options):
    assert _compare(options) > 10


def test_same_games_against_a_policy_opponent():
    """A policy opponent acts for all games facing it in one call, yet plays the same games."""
    assert _compare({"opponent": [_policy_opponent(), "random"], "opening_plies": 2}) > 10


def test_episode_statistics_as_vecmonitor_gives_them():
    """info['episode'] holds the summed reward and the length of each finished episode."""
    vec = KalahaVecEnv(3, GameOptions(store_diff_coef=1.0), seed=1)
    vec.reset()
    totals = np.zeros(3)
    lengths = np.zeros(3, dtype=int)
    picker = np.random.default_rng(0)
    seen = 0
    for _ in range(200):
        masks = vec.action_masks()
        _, rewards, dones, infos = vec.step((picker.random(masks.shape) * masks).argmax(axis=1))
        totals += rewards
        lengths += 1
        for i in np.flatnonzero(dones):
            assert infos[i]["episode"]["r"] == pytest.approx(totals[i], abs=1e-5)
            assert infos[i]["episode"]["l"] == lengths[i]
            totals[i], lengths[i] = 0.0, 0
            seen += 1
    assert seen > 10


def test_illegal_action_names_the_env_and_the_legal_pits():
    vec = KalahaVecEnv(2, seat=0, seed=0)
    vec.reset()
    vec.step(np.array([2, 0]))  # pit 2 of 4 stones ends in the store: an extra turn, pit 2 empty
    with pytest.raises(ValueError, match=r"env 0: action 2 is not legal"):
        vec.step(np.array([2, 0]))


def test_maskable_ppo_trains_on_it():
    """MaskablePPO learns on the VecEnv as on any VecEnv: masks in one call, episodes logged."""
    vec = KalahaVecEnv(8, GameOptions(opponents=("random",)), seed=0)
    model = MaskablePPO(
        "MlpPolicy",
        vec,
        n_steps=32,
        batch_size=64,
        n_epochs=1,
        seed=0,
        policy_kwargs={"net_arch": [16]},
    )
    model.learn(512)
    assert model.num_timesteps == 512
    assert len(model.ep_info_buffer) > 0
