"""KalahaEnv: the gymnasium contract, the agent's view, opponents inside step, rewards."""

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

import env  # registers kalaha/Kalaha-v0
from env.kalaha_env import KalahaEnv
from env.rules import apply_move, initial_board, legal_masks, legal_pits


class RecordingOpponent:
    """A scripted opponent: always its lowest legal pit, and it remembers every move."""

    name = "recording"

    def __init__(self):
        self.moves = []

    def act(self, boards, players, rng):
        assert boards.shape[0] == 1, "the env asks for one game at a time"
        pits = legal_masks(boards, players.astype(np.int64)).argmax(axis=1)
        self.moves.append(int(pits[0]))
        return pits


def view(board, seat, stones=4):
    """The observation the agent in ``seat`` should see: own pits and store first."""
    board = list(board)
    ordered = board[7:] + board[:7] if seat == 1 else board
    return np.array(ordered, dtype=np.float32) / stones


def play_random_episode(kalaha, rng, seed=None, options=None):
    """Play one episode with uniformly random legal actions; return the step records."""
    obs, info = kalaha.reset(seed=seed, options=options)
    records = []
    done = False
    while not done:
        action = int(rng.choice(np.flatnonzero(kalaha.action_masks())))
        before = info
        obs, reward, terminated, truncated, info = kalaha.step(action)
        assert not truncated
        done = terminated
        records.append((before, action, obs, reward, terminated, info))
    return records


# --- the checkers and the registry -------------------------------------------------


def test_gymnasium_env_checker_passes_on_kalaha_env():
    """gymnasium's check_env finds nothing wrong with a bare KalahaEnv."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(KalahaEnv())
    messages = [str(w.message) for w in caught]
    # A bare env has no spec, so the checker cannot try the other render modes;
    # that is the one remark allowed here (the gym.make test below covers it).
    assert all("render modes" in m for m in messages), messages


def test_gymnasium_env_checker_passes_on_the_registered_id():
    """gymnasium's check_env passes on gym.make("kalaha/Kalaha-v0"), render modes included."""
    made = gym.make(env.ENV_ID)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(made.unwrapped)
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(made)
    # Only the remark that gym.make's wrappers are there (which the checker advises
    # to strip with .unwrapped, as done just above).
    assert all("unwrapped" in str(w.message) for w in caught)


def test_sb3_env_checker_passes():
    """SB3's check_env passes.

    SB3's checker steps the env with *unmasked* random actions (it knows nothing of
    action masks), so it would hit an empty pit; illegal_action="lose" turns such an
    action into a lost episode instead of the default ValueError.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(KalahaEnv(illegal_action="lose"), warn=True)
    assert [str(w.message) for w in caught] == []


def test_registered_id_works_with_gym_make():
    """The namespaced id is registered on `import env` and passes kwargs through."""
    assert env.ENV_ID == "kalaha/Kalaha-v0"
    assert env.ENV_ID in gym.registry
    made = gym.make("kalaha/Kalaha-v0", opponent="greedy", seat=1, stones=5)
    assert isinstance(made.unwrapped, KalahaEnv)
    assert made.unwrapped.options.stones == 5
    obs, info = made.reset(seed=0)
    assert made.observation_space.contains(obs)
    assert info["seat"] == 1 and info["opponent"] == "greedy"
    action = int(np.flatnonzero(info["action_mask"])[0])
    obs, reward, terminated, truncated, info = made.step(action)
    assert made.observation_space.contains(obs)
    made.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"illegal_action": "ignore"}, "illegal_action"),
        ({"seat": 2}, "seat"),
        ({"render_mode": "human"}, "render_mode"),
        ({"stones": 0}, "stones"),
        ({"opponent": "minimax:0"}, "opponent"),
        ({"opponent": []}, "opponent"),
    ],
)
def test_bad_constructor_arguments_are_value_errors(kwargs, match):
    """Each bad argument is a ValueError that names the argument."""
    with pytest.raises(ValueError, match=match):
        KalahaEnv(**kwargs)


# --- illegal actions ---------------------------------------------------------------


def test_masked_action_raises_a_clear_value_error_by_default():
    """illegal_action="raise" (default): an empty pit is a ValueError naming the action,
    the legal pits and action_masks(); the game is left as it was."""
    kalaha = KalahaEnv(seat=0)
    kalaha.reset(seed=0)
    kalaha.step(2)  # 4 stones from pit 2 end in the store: an extra turn, pit 2 now empty
    with pytest.raises(ValueError, match=r"action 2\b.*\[0, 1, 3, 4, 5\].*action_masks"):
        kalaha.step(2)
    with pytest.raises(ValueError, match=r"action 6\b"):
        kalaha.step(6)
    obs, reward, terminated, truncated, info = kalaha.step(5)  # still playable
    assert obs[5] == 0.0


@pytest.mark.parametrize("action", [2, 6, -1])
def test_masked_action_loses_with_illegal_action_lose(action):
    """illegal_action="lose": a masked (or out-of-range) action ends the episode with -1."""
    kalaha = KalahaEnv(seat=0, illegal_action="lose")
    kalaha.reset(seed=0)
    kalaha.step(2)  # extra turn: pit 2 is empty now
    obs, reward, terminated, truncated, info = kalaha.step(action)
    assert reward == -1.0
    assert terminated and not truncated
    assert info["illegal_action"] == action
    assert not kalaha.action_masks().any()
    with pytest.raises(RuntimeError, match="reset"):
        kalaha.step(0)


def test_illegal_action_loss_reports_the_opponent_as_winner():
    """The loss for an illegal action is a loss in info too: winner is "opponent"."""
    kalaha = KalahaEnv(seat=0, illegal_action="lose")
    kalaha.reset(seed=0)
    _, reward, terminated, _, info = kalaha.step(6)
    assert reward == -1.0 and terminated
    assert info["winner"] == "opponent"


def test_step_after_the_end_needs_a_reset():
    """Stepping a finished game is a RuntimeError that says to call reset()."""
    kalaha = KalahaEnv(seat=0)
    play_random_episode(kalaha, np.random.default_rng(0), seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        kalaha.step(0)


# --- determinism -------------------------------------------------------------------


def _trajectory(kalaha, seed):
    """Observations, rewards and infos of one episode with a fixed policy (last legal pit)."""
    obs, info = kalaha.reset(seed=seed)
    steps = [(obs.tolist(), 0.0, info["seat"])]
    done = False
    while not done:
        action = int(np.flatnonzero(kalaha.action_masks())[-1])
        obs, reward, done, _, info = kalaha.step(action)
        steps.append((obs.tolist(), reward, info["seat"]))
    return steps, info["winner"]


def test_same_seed_same_episode():
    """A seeded reset and a fixed policy give the same trajectory, on one env or two."""
    kwargs = {"opponent": "random", "opening_plies": 2}
    first, second = KalahaEnv(**kwargs), KalahaEnv(**kwargs)
    for seed in (0, 1, 123):
        a = _trajectory(first, seed)
        assert a == _trajectory(second, seed)
        assert a == _trajectory(first, seed)
    # ...and the seed matters: a random opponent does not replay one game for all seeds.
    distinct = {str(_trajectory(first, seed)) for seed in range(6)}
    assert len(distinct) > 1


# --- the agent's view ---------------------------------------------------------------


def test_observation_space_is_a_box_of_fourteen_scaled_counts():
    """Observations: 14 float32 counts divided by the stones per pit, within [0, 12]."""
    kalaha = KalahaEnv()
    assert kalaha.action_space == gym.spaces.Discrete(6)
    assert kalaha.observation_space.shape == (14,)
    assert kalaha.observation_space.dtype == np.float32
    assert np.all(kalaha.observation_space.low == 0.0)
    assert np.all(kalaha.observation_space.high == 12.0)


def test_observation_with_seat_0_is_the_board_itself():
    """Seat 0 moves first and sees the start as it is: every pit reads 1.0, stores 0."""
    kalaha = KalahaEnv(seat=0)
    obs, info = kalaha.reset(seed=0)
    assert info["seat"] == 0
    np.testing.assert_array_equal(obs, view(initial_board(), 0))
    assert obs.dtype == np.float32


@pytest.mark.parametrize("stones", [3, 4, 6])
def test_observation_with_seat_1_puts_own_pits_and_store_first(stones):
    """Seat 1: the first 7 entries are p1's pits and store, then p0's, all / stones;
    and the opponent (p0) has already played its opening move(s) at reset."""
    opponent = RecordingOpponent()
    kalaha = KalahaEnv(opponent=opponent, seat=1, stones=stones)
    obs, info = kalaha.reset(seed=0)
    assert info["seat"] == 1
    assert opponent.moves, "the opponent moved first, inside reset"
    board, player = initial_board(stones), 0
    for pit in opponent.moves:
        assert player == 0
        board, player, _ = apply_move(board, 0, pit)
    assert player == 1
    np.testing.assert_allclose(obs[:7], np.array(board[7:14]) / stones)
    np.testing.assert_allclose(obs[7:], np.array(board[0:7]) / stones)
    assert info["own_store"] == board[13] and info["opponent_store"] == board[6]


def test_fixed_seat_stays_and_random_seat_varies_per_episode():
    """seat=0 / seat=1 are kept for every episode; seat=None draws both seats."""
    for seat in (0, 1):
        kalaha = KalahaEnv(seat=seat)
        assert {kalaha.reset(seed=s)[1]["seat"] for s in range(10)} == {seat}
    kalaha = KalahaEnv(seat=None)
    kalaha.reset(seed=0)
    seats = [kalaha.reset()[1]["seat"] for _ in range(40)]
    assert set(seats) == {0, 1}
    # The reset option overrides the constructor's choice for one episode.
    assert KalahaEnv(seat=0).reset(seed=0, options={"seat": 1})[1]["seat"] == 1


@pytest.mark.parametrize("seat", [0, 1])
def test_opponent_replies_are_played_inside_step(seat):
    """After each step it is the agent's move again: the opponent's replies (extra turns
    included) were played inside step, and the observation is that board."""
    opponent = RecordingOpponent()
    kalaha = KalahaEnv(opponent=opponent, seat=seat)
    rng = np.random.default_rng(seat)
    obs, info = kalaha.reset(seed=seat)
    board, player, over = initial_board(), 0, False
    for pit in opponent.moves:
        board, player, over = apply_move(board, 1 - seat, pit)
    assert player == seat
    np.testing.assert_array_equal(obs, view(board, seat))
    done = False
    while not done:
        legal = legal_pits(board, seat)
        assert list(np.flatnonzero(kalaha.action_masks())) == legal
        action = int(rng.choice(legal))
        seen = len(opponent.moves)
        obs, reward, done, _, info = kalaha.step(action)
        board, player, over = apply_move(board, seat, action)
        if player == seat and not over:
            assert len(opponent.moves) == seen, "an extra turn: the opponent waits"
        for pit in opponent.moves[seen:]:
            assert player == 1 - seat and not over
            board, player, over = apply_move(board, 1 - seat, pit)
        assert done is over
        if not done:
            assert player == seat
        np.testing.assert_array_equal(obs, view(board, seat))


def test_action_masks_match_the_legal_pits():
    """action_masks() (and info["action_mask"]) are the agent's non-empty pits, which are
    the first six observation entries above zero; all False once the game is over."""
    rng = np.random.default_rng(5)
    for seat in (0, 1):
        kalaha = KalahaEnv(opponent="random", seat=seat)
        for seed in range(5):
            obs, info = kalaha.reset(seed=seed)
            done = False
            while not done:
                mask = kalaha.action_masks()
                assert mask.dtype == bool and mask.shape == (6,)
                np.testing.assert_array_equal(mask, obs[:6] > 0)
                np.testing.assert_array_equal(mask, info["action_mask"])
                assert mask.any()
                obs, _, done, _, info = kalaha.step(int(rng.choice(np.flatnonzero(mask))))
            assert not kalaha.action_masks().any()
            assert not info["action_mask"].any()


# --- rewards -----------------------------------------------------------------------


def test_terminal_reward_matches_winner_and_final_stores():
    """+1 win, -1 loss, 0 draw, only at the end; info["winner"] and the final stores
    (info["own_store"], info["opponent_store"]) say the same."""
    rng = np.random.default_rng(0)
    kalaha = KalahaEnv(opponent="random")
    outcomes = set()
    for seed in range(60):
        records = play_random_episode(kalaha, rng, seed=seed)
        for *_, reward, terminated, info in records[:-1]:
            assert reward == 0.0 and not terminated and "winner" not in info
        obs, reward, _, info = records[-1][2:]
        own, opp = info["own_store"], info["opponent_store"]
        assert own + opp == 48, "every seed is in a store at the end"
        assert obs[6] * 4 == own and obs[13] * 4 == opp
        assert not obs[:6].any() and not obs[7:13].any()
        expected = {1.0: "agent", -1.0: "opponent", 0.0: "draw"}[reward]
        assert info["winner"] == expected
        assert reward == np.sign(own - opp)
        outcomes.add(info["winner"])
    assert {"agent", "opponent"} <= outcomes


@pytest.mark.parametrize("coef", [0.5, 2.0])
def test_store_diff_shaping_rewards_the_change_in_store_difference(coef):
    """store_diff_coef: each step adds coef * (change of own - opponent store) / total
    stones, on top of the terminal +1/-1/0."""
    rng = np.random.default_rng(1)
    stones = 5
    kalaha = KalahaEnv(opponent="random", store_diff_coef=coef, stones=stones)
    for seed in range(10):
        records = play_random_episode(kalaha, rng, seed=seed)
        for before, _, _, reward, terminated, info in records:
            change = (info["own_store"] - info["opponent_store"]) - (
                before["own_store"] - before["opponent_store"]
            )
            terminal = 0.0
            if terminated:
                terminal = {"agent": 1.0, "opponent": -1.0, "draw": 0.0}[info["winner"]]
            assert reward == pytest.approx(coef * change / (12 * stones) + terminal)


def test_extra_turn_shaping_pays_for_each_extra_turn_earned():
    """extra_turn_coef: a move ending in the agent's own store (game not over) earns the
    coefficient; a move that passes the turn does not."""
    kalaha = KalahaEnv(opponent="random", seat=0, extra_turn_coef=0.25)
    kalaha.reset(seed=0)
    _, reward, *_ = kalaha.step(2)  # 4 stones from pit 2: the last lands in the store
    assert reward == pytest.approx(0.25)
    _, reward, *_ = kalaha.step(5)  # 5 stones from pit 5: store, then the opponent's pits
    assert reward == pytest.approx(0.0)


def test_extra_turn_shaping_follows_a_replay_of_the_rules():
    """extra_turn_coef is paid exactly when the agent's own move ends in its store and
    the game goes on; an extra turn on the move that ends the game earns nothing."""
    coef = 0.25
    rng = np.random.default_rng(2)
    paid = ended_in_store = 0
    for seat in (0, 1):
        for seed in range(60):
            opponent = RecordingOpponent()
            kalaha = KalahaEnv(opponent=opponent, seat=seat, extra_turn_coef=coef)
            kalaha.reset(seed=seed)
            board = initial_board()
            for pit in opponent.moves:
                board, _, _ = apply_move(board, 1 - seat, pit)
            done = False
            while not done:
                action = int(rng.choice(legal_pits(board, seat)))
                seen = len(opponent.moves)
                _, reward, done, _, info = kalaha.step(action)
                board, player, over = apply_move(board, seat, action)
                extra_turn = player == seat and not over
                ended_in_store += int(player == seat and over)
                for pit in opponent.moves[seen:]:
                    board, _, over = apply_move(board, 1 - seat, pit)
                terminal = 0.0
                if done:
                    terminal = {"agent": 1.0, "opponent": -1.0, "draw": 0.0}[info["winner"]]
                assert reward == pytest.approx(coef * extra_turn + terminal)
                paid += int(extra_turn)
    assert paid > 0 and ended_in_store > 0, "both cases were met"


def test_shaping_terms_add_up():
    """Both shaping terms together: an extra turn that also gains one seed."""
    kalaha = KalahaEnv(opponent="random", seat=0, extra_turn_coef=0.25, store_diff_coef=0.5)
    kalaha.reset(seed=0)
    _, reward, *_ = kalaha.step(2)
    assert reward == pytest.approx(0.25 + 0.5 * 1 / 48)


def test_no_shaping_by_default():
    """Without coefficients, non-terminal rewards are exactly 0 (even on an extra turn)."""
    kalaha = KalahaEnv(opponent="random", seat=0)
    kalaha.reset(seed=0)
    assert kalaha.step(2)[1] == 0.0


# --- render, stones, opponents ------------------------------------------------------


def test_render_ansi_returns_the_board_as_text():
    """render_mode="ansi": render() returns a string with both rows, both stores and
    which side is the agent's."""
    kalaha = KalahaEnv(seat=0, render_mode="ansi")
    kalaha.reset(seed=0)
    kalaha.step(2)
    text = kalaha.render()
    assert isinstance(text, str)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].strip().startswith("p1:") and lines[2].strip().startswith("p0:")
    assert "[ 4][ 4][ 4][ 4][ 4][ 4]" in lines[0]
    assert "[ 4][ 4][ 0][ 5][ 5][ 5]" in lines[2] and "(agent)" in lines[2]
    assert re.findall(r"\[\s*(\d+)\]", lines[1]) == ["0", "1"], "p1's store, p0's store"
    assert KalahaEnv().render() is None, "no render_mode: render() draws nothing"


@pytest.mark.parametrize("stones", [3, 4, 5, 6])
def test_stones_option_sets_the_stones_per_pit(stones):
    """stones=n: the game starts with n per pit (reading 1.0), and ends with 12 n stored."""
    kalaha = KalahaEnv(stones=stones, seat=0, opponent="greedy")
    obs, _ = kalaha.reset(seed=0)
    np.testing.assert_array_equal(obs, view(initial_board(stones), 0, stones))
    assert kalaha.observation_space.contains(obs)
    records = play_random_episode(kalaha, np.random.default_rng(stones), seed=stones)
    for _, _, obs, *_ in records:
        assert kalaha.observation_space.contains(obs)
        assert np.isclose(obs.sum() * stones, 12 * stones)
    info = records[-1][-1]
    assert info["own_store"] + info["opponent_store"] == 12 * stones


def test_too_many_opening_plies_is_an_error_not_a_hang(monkeypatch):
    """An opening longer than any game is a ValueError naming opening_plies, not a hang.

    The retries are counted through the env's initial_board so that the current
    endless loop shows up as a RuntimeError here instead of hanging the suite.
    """
    calls = []

    def counting_initial_board(stones=4):
        calls.append(stones)
        if len(calls) > 200:
            raise RuntimeError("reset() redrew the opening 200 times: it would never end")
        return initial_board(stones)

    monkeypatch.setattr("env.games.initial_board", counting_initial_board)
    with pytest.raises(ValueError, match="opening_plies"):
        KalahaEnv(opening_plies=500).reset(seed=0)


def test_opponent_mix_is_drawn_per_episode():
    """A list of opponents: each episode plays one of them, drawn with the env's RNG."""
    kalaha = KalahaEnv(opponent=["random", "greedy", "minimax:1"])
    kalaha.reset(seed=0)
    names = {kalaha.reset()[1]["opponent"] for _ in range(40)}
    assert names == {"random", "greedy", "minimax:1"}


def test_opening_plies_vary_the_start():
    """opening_plies: random plies before the first observation, so starts differ."""
    kalaha = KalahaEnv(seat=0, opening_plies=4)
    starts = {tuple(kalaha.reset(seed=s)[0].tolist()) for s in range(10)}
    assert len(starts) > 1


# --- training ------------------------------------------------------------------------


def test_maskable_ppo_trains_on_a_vec_env(one_torch_thread):
    """sb3-contrib's MaskablePPO learns ~2048 steps on 4 envs without error, finds
    the masks through the VecEnv, and predicts legal actions afterwards."""
    vec = DummyVecEnv([lambda: KalahaEnv(opponent="random") for _ in range(4)])
    model = MaskablePPO(
        "MlpPolicy",
        vec,
        n_steps=64,
        batch_size=64,
        policy_kwargs={"net_arch": [16, 16]},
        device="cpu",
        seed=0,
        verbose=0,
    )
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    obs = vec.reset()
    masks = np.array(vec.env_method("action_masks"))
    actions, _ = model.predict(obs, action_masks=masks, deterministic=True)
    assert masks[np.arange(4), actions].all()
    vec.close()
