"""The lookahead features: right by the rules, computed once per step, and old agents still play.

``env.networks.Lookahead`` restates sowing in closed form so that a batch of
boards is a few tensor operations; one place where a rule could drift from
env/rules.py, so every legal move of a few thousand reachable boards is checked.
The env now computes the same features with the rules engine itself
(``env/features.py``), once per step, and the network only reads them: the two
must agree bit for bit, and an agent saved before (``studies/best/selfplay.zip``,
a ``Lookahead`` network) must still play the moves it played then (recorded in
``fixtures/selfplay_moves.json`` by the code before the change).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from env import rules
from env.arena import play_match
from env.features import lookahead_features
from env.kalaha_env import KalahaEnv
from env.networks import Lookahead, PrecomputedLookahead, _sow_all
from env.observation import Observation, observation_space, observe
from env.opponents import PolicyOpponent, make_opponent
from env.options import GameOptions
from env.vec_env import KalahaVecEnv

FIXTURE = Path(__file__).parent / "fixtures" / "selfplay_moves.json"
COMMITTED_AGENT = Path(__file__).resolve().parents[2] / "studies" / "best" / "selfplay.zip"


def _reachable(rng: np.random.Generator, n: int, empty_capture: bool) -> list[tuple]:
    """Boards and movers from random playouts of random length, none finished."""
    out = []
    while len(out) < n:
        board, player = rules.initial_board(4), 0
        for _ in range(int(rng.integers(0, 45))):
            board, player, over = rules.apply_move(
                board, player, int(rng.choice(rules.legal_pits(board, player))), empty_capture
            )
            if over:
                break
        if not rules.is_over(board):
            out.append((board, player))
    return out


def _view(board: list[int], player: int) -> np.ndarray:
    return np.round(observe(np.array([board]), np.array([player]), 1)[0]).astype(np.int64)


@pytest.mark.parametrize("empty_capture", [False, True])
def test_every_move_matches_the_rules_engine(empty_capture: bool) -> None:
    positions = _reachable(np.random.default_rng(7), 1500, empty_capture)
    views = torch.tensor(np.stack([_view(b, p) for b, p in positions]), dtype=torch.float32)
    after, legal, extra, over = _sow_all(views, empty_capture)
    checked = 0
    for i, (board, player) in enumerate(positions):
        legal_pits = rules.legal_pits(board, player)
        assert legal[i].nonzero().flatten().tolist() == legal_pits
        for pit in legal_pits:
            board2, nxt, done = rules.apply_move(board, player, pit, empty_capture)
            assert after[i, pit].long().tolist() == _view(board2, player).tolist(), (board, pit)
            assert bool(over[i, pit]) == done
            assert bool(extra[i, pit]) == (nxt == player and not done)
            checked += 1
    assert checked > 5000


def _best_gain(board: list[int], mover: int) -> int:
    """The largest store gain one move of ``mover`` makes (rules engine)."""
    store = 7 * mover + 6
    gains = [
        rules.apply_move(board, mover, pit)[0][store] - board[store]
        for pit in rules.legal_pits(board, mover)
    ]
    return max(gains, default=0)


def test_two_ply_features_are_the_next_movers_best_gain() -> None:
    positions = _reachable(np.random.default_rng(3), 300, False)
    boards = np.array([b for b, _ in positions])
    players = np.array([p for _, p in positions])
    extractor = Lookahead(observation_space(4), plies=2, stones=4)
    feats = extractor(torch.as_tensor(observe(boards, players, 4)))
    per_move = feats[:, 14:].reshape(len(positions), 6, Lookahead.PER_MOVE[2])
    for i, (board, player) in enumerate(positions):
        for pit in rules.legal_pits(board, player):
            board2, nxt, done = rules.apply_move(board, player, pit)
            expected = 0 if done else _best_gain(board2, nxt) * (1 if nxt == player else -1)
            assert per_move[i, pit, 17].item() * 4 == pytest.approx(expected), (board, pit)


def test_features_keep_the_observation_and_have_the_declared_width() -> None:
    space = observation_space(4)
    for plies in (1, 2):
        extractor = Lookahead(space, plies=plies)
        obs = torch.as_tensor(observe(np.array([rules.initial_board(4)]), np.array([0]), 4))
        feats = extractor(obs)
        assert feats.shape == (1, extractor.features_dim)
        assert torch.equal(feats[:, :14], obs)
    with pytest.raises(ValueError, match="expected 1 or 2 plies"):
        Lookahead(space, plies=3)


def test_a_study_asks_for_lookahead_by_plies_with_or_without_a_trunk() -> None:
    from tuner.config.space import materialize

    game = GameOptions(stones=5, empty_capture=True)
    plain = materialize({"policy_kwargs": {"lookahead": 1}}, game)["policy_kwargs"]
    assert plain["features_extractor_class"] is PrecomputedLookahead
    assert plain["features_extractor_kwargs"] == {"plies": 1, "stones": 5, "empty_capture": True}
    both = materialize({"policy_kwargs": {"lookahead": 2, "shared_trunk": [32]}}, game)
    kwargs = both["policy_kwargs"]["features_extractor_kwargs"]
    assert kwargs["hidden"] == [32] and both["policy_kwargs"]["share_features_extractor"]
    off = materialize({"policy_kwargs": {"lookahead": 0, "net_arch": [8]}}, game)
    assert off["policy_kwargs"] == {"net_arch": [8]}


# --- the features once per step: the env computes them, the network reads them --------


def reachable_boards(
    n: int, empty_capture: bool, stones: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct (board, mover) pairs of unfinished games, from batched random playouts."""
    rng = np.random.default_rng(seed)
    boards, players = rules.random_positions(3 * n, rng, (0, 50), stones, empty_capture)
    pairs = np.concatenate([boards, players[:, None].astype(boards.dtype)], axis=1)
    distinct = np.unique(pairs, axis=0)
    assert len(distinct) >= n, f"expected {n} distinct boards, but got {len(distinct)}"
    pick = distinct[rng.permutation(len(distinct))[:n]]
    return np.ascontiguousarray(pick[:, :-1]), pick[:, -1].astype(np.int64)


@pytest.mark.parametrize(
    ("empty_capture", "stones", "n"), [(False, 4, 10_000), (True, 4, 10_000), (False, 3, 2_000)]
)
def test_the_env_computes_the_networks_features_bit_for_bit(empty_capture, stones, n) -> None:
    """The rules engine's features equal what ``Lookahead`` computes in torch, exactly."""
    boards, players = reachable_boards(n, empty_capture, stones)
    counts = observe(boards, players, stones)
    for plies in (1, 2):
        network = Lookahead(observation_space(stones), plies, stones, empty_capture)
        expected = network(torch.as_tensor(counts)).numpy()
        got = Observation(stones, plies, empty_capture)(boards, players)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(
            got[:, 14:], lookahead_features(boards, players, stones, plies, empty_capture)
        )


def test_the_envs_show_the_counts_then_the_features_of_their_games() -> None:
    vec = KalahaVecEnv(16, GameOptions(opponents=("random", "greedy")), lookahead=2, seed=3)
    obs = vec.reset()
    assert obs.shape == (16, 14 + 6 * 19) and vec.observation_space.shape == (128,)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(60):
        table = vec.table
        np.testing.assert_array_equal(obs, Observation(4, 2)(table.boards, table.seat))
        assert all(vec.observation_space.contains(o) for o in obs)
        masks = vec.action_masks()
        obs, _, dones, infos = vec.step((rng.random(masks.shape) * masks).argmax(axis=1))
        for i in np.flatnonzero(dones):
            assert infos[i]["terminal_observation"].shape == (128,)
            finished += 1
    assert finished > 0
    single = KalahaEnv(lookahead=1, illegal_action="lose")
    assert single.observation_space.shape == (14 + 6 * 17,)
    check_env(single, skip_render_check=True)


def test_a_network_that_reads_features_refuses_the_counts_alone() -> None:
    with pytest.raises(ValueError, match=r"expected observations of 128 values.*but got 14"):
        PrecomputedLookahead(observation_space(4), plies=2)
    with pytest.raises(ValueError, match="expected 1 or 2 plies"):
        Observation(4, lookahead=3)


def test_the_committed_agent_plays_the_moves_it_played_before_the_change() -> None:
    """``selfplay.zip`` (a ``Lookahead`` network, saved before) loads as a network that
    reads the env's features, and plays as it did: the same move on 1,000 boards, the
    same games against minimax:2."""
    fixture = json.loads(FIXTURE.read_text())
    boards = np.array([[int(x) for x in b.split()] for b in fixture["boards"]], dtype=np.int32)
    players = np.array(fixture["players"], dtype=np.int64)
    agent = make_opponent(f"policy:{COMMITTED_AGENT}")
    assert isinstance(agent, PolicyOpponent)
    assert isinstance(agent.model.features_extractor, PrecomputedLookahead)
    assert agent.observation == Observation(4, 2, False)
    moves = agent.act(boards, players, np.random.default_rng(0))
    assert moves.tolist() == fixture["moves"]
    match = fixture["match"]
    opponent = make_opponent(match["opponent"], tie_break=match["tie_break"])
    result = play_match(agent, opponent, match["games"], rng=match["rng"])
    assert result.outcomes.tolist() == match["outcomes"]
    assert result.margins.tolist() == match["margins"]


def test_training_evaluation_and_the_league_read_the_features_from_the_env(
    tmp_path, monkeypatch, one_torch_thread
) -> None:
    """A trial's training, its league opponents and its evaluation never compute the
    features in a network; the saved agent says what it reads, and loads and plays so."""
    from env.policy_files import load_policy, save_model
    from tuner.config.spec import EvaluationSpec
    from tuner.trial.training import train

    def computed_in_the_network(*args, **kwargs):
        raise AssertionError("the features were computed in the network's forward pass")

    monkeypatch.setattr(Lookahead, "forward", computed_in_the_network)
    ppo = {"n_steps": 64, "batch_size": 256, "n_epochs": 2}
    ppo["policy_kwargs"] = {"net_arch": [16], "lookahead": 2}
    run = train(
        ppo,
        GameOptions(opponents={"pool": 0.5, "self": 0.2, "greedy@0.1": 0.3}, snapshot_every=512),
        total_timesteps=1024,
        n_envs=8,
        n_evaluations=1,
        evaluation=EvaluationSpec(opponents=["greedy"], games=20),
        seed=1,
        device="cpu",
    )
    assert run.timesteps == 1024 and run.league["snapshots_taken"] == 3
    assert run.model.observation_space.shape == (128,)
    path = save_model(run.model, tmp_path / "agent.zip")
    loaded = load_policy(path)
    assert isinstance(loaded.features_extractor, PrecomputedLookahead)
    boards, players = reachable_boards(200, False, seed=5)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(
        PolicyOpponent(loaded).act(boards, players, rng),
        PolicyOpponent(run.model).act(boards, players, rng),
    )


def test_training_learns_what_it_learned_when_the_network_computed_the_features(
    one_torch_thread,
) -> None:
    """Same seed, same steps: the features from the env give the very weights that the
    network computing them gave (league opponents included), bit for bit."""
    from tuner.config.spec import EvaluationSpec
    from tuner.trial.training import train

    def trained(policy_kwargs: dict) -> dict[str, torch.Tensor]:
        run = train(
            {"n_steps": 32, "batch_size": 128, "n_epochs": 2, "policy_kwargs": policy_kwargs},
            GameOptions(
                opponents={"pool": 0.5, "self": 0.2, "greedy@0.1": 0.3}, snapshot_every=256
            ),
            total_timesteps=512,
            n_envs=8,
            n_evaluations=1,
            evaluation=EvaluationSpec(opponents=["random"], games=2),
            seed=4,
            device="cpu",
        )
        return run.model.policy.state_dict()

    now = trained({"net_arch": [16], "lookahead": 2})
    before = trained(
        {
            "net_arch": [16],
            "features_extractor_class": Lookahead,
            "features_extractor_kwargs": {"plies": 2, "stones": 4, "empty_capture": False},
        }
    )
    assert now.keys() == before.keys()
    for name, weights in now.items():
        assert torch.equal(weights, before[name]), name
