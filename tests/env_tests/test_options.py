"""The game options: one typed object, one default per option, handed to the envs as it is."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from env.kalaha_env import KalahaEnv
from env.options import DEFAULT_STONES, DEFAULTS, GameOptions, default_of, opponent_mix
from env.vec_env import KalahaVecEnv


def test_each_option_has_one_default_which_the_envs_share():
    """KalahaEnv's gym.make keywords default to the options' own defaults, not copies."""
    assert DEFAULTS.stones == DEFAULT_STONES == 4
    params = inspect.signature(KalahaEnv).parameters
    for name in ("stones", "empty_capture", "opening_plies", "store_diff_coef", "extra_turn_coef"):
        assert params[name].default == getattr(DEFAULTS, name), name
    assert opponent_mix(params["opponent"].default) == DEFAULTS.opponents == ("random",)
    assert KalahaEnv().options == DEFAULTS
    assert default_of("opponents") == ["random"], "plain data, as a study file writes it"


def test_keywords_build_the_options_that_from_options_takes_as_they_are():
    """A sequence with weights is a mapping of shares; the same options, the same games."""
    kw = KalahaEnv(opponent=["random", "greedy"], opponent_weights=[3, 1], stones=5, seat=0)
    options = GameOptions(opponents={"random": 3.0, "greedy": 1.0}, stones=5)
    assert kw.options == options
    made = KalahaEnv.from_options(options, seat=0)
    assert made.options is options
    a, _ = kw.reset(seed=4)
    b, _ = made.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    for _ in range(10):
        pit = int(np.flatnonzero(kw.action_masks())[0])
        a, ra, done, *_ = kw.step(pit)
        b, rb, done_b, *_ = made.step(pit)
        np.testing.assert_array_equal(a, b)
        assert (ra, done) == (rb, done_b)
        if done:
            break


def test_the_vec_env_builds_the_league_from_the_options():
    """League names become league sources with the options' pool settings."""
    vec = KalahaVecEnv(4, GameOptions(opponents={"pool": 1.0, "random": 1.0}, pool_size=3))
    pool, fixed = vec.sources
    assert (pool.name, pool.size, pool.sampling) == ("pool", 3, "pfsp")
    assert fixed.name == "random" and vec.options.is_league


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.stones = 6  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stones": 0}, "stones: expected an integer in 1..12, but got 0"),
        ({"stones": 4.5}, "stones: expected an integer, but got 4.5"),
        ({"opening_plies": 21}, "opening_plies: expected an integer in 0..20, but got 21"),
        ({"pool_size": 0}, "pool_size: expected an integer >= 1, but got 0"),
        ({"snapshot_every": 0}, "snapshot_every: expected an integer >= 1"),
        ({"pool_sampling": "newest"}, "pool_sampling: expected one of"),
        ({"store_diff_coef": float("nan")}, "store_diff_coef: expected a finite number"),
        ({"empty_capture": "yes"}, "empty_capture: expected true or false"),
        ({"opponents": ()}, "opponents: expected at least one opponent"),
        ({"opponents": ["random"]}, "opponents: expected a tuple of opponents or a mapping"),
        ({"opponents": {"random": -1.0}}, "opponents: expected finite shares >= 0"),
        ({"opponents": {"random": 0.0}}, "opponents: expected shares with a positive sum"),
    ],
)
def test_a_bad_option_is_one_value_error_naming_it(change, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        GameOptions(**change)


def test_plain_data_round_trips_and_keeps_the_mix_and_its_order():
    """A list stays a list and a mapping a mapping, in order: the order of the shares decides
    which games each opponent plays."""
    mix = {"pool": 0.5, "minimax:2@0.1": 0.25, "random": 0.25}
    options = GameOptions.from_dict({"opponents": mix, "stones": 6})
    data = options.as_dict()
    assert list(data["opponents"].items()) == list(mix.items())
    assert data["stones"] == 6 and data["pool_size"] == DEFAULTS.pool_size
    assert GameOptions.from_dict(data) == options
    assert GameOptions.from_dict({"opponents": ["random", "greedy"]}).as_dict()["opponents"] == [
        "random",
        "greedy",
    ]
    with pytest.raises(ValueError, match=r"expected env options among .*, but got \['seeds'\]"):
        GameOptions.from_dict({"seeds": 4})
