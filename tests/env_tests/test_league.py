"""The self-play league: snapshots that refresh, stay frozen, are drawn as configured, and
answer all their games in one forward pass; epsilon opponents that really explore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO

from env.games import GameTable
from env.league import Learner, SnapshotPool, attach_learner, build_sources
from env.opponents import GreedyOpponent, _greedy_scores, make_opponent
from env.options import GameOptions
from env.rules import legal_masks
from env.vec_env import KalahaVecEnv


def _model(n_envs: int = 4) -> MaskablePPO:
    return MaskablePPO(
        "MlpPolicy", KalahaVecEnv(n_envs, seed=0), policy_kwargs={"net_arch": [8]}, seed=0
    )


def test_snapshot_is_frozen_while_the_learner_changes():
    model = _model()
    pool = SnapshotPool(size=2, sampling="uniform")
    member = pool.add(model.policy, timestep=0)
    before = [p.clone() for p in member.model.parameters()]
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(1.0)
    after = list(member.model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert not any(p.requires_grad for p in after)


def test_pool_keeps_the_newest_size_snapshots():
    model = _model()
    pool = SnapshotPool(size=3, sampling="uniform")
    for t in range(0, 5000, 1000):
        pool.add(model.policy, timestep=t)
    assert [m.name for m in pool.members] == ["pool@2000", "pool@3000", "pool@4000"]
    assert pool.added == 5


def test_pfsp_draws_most_often_the_snapshots_the_learner_loses_to():
    model = _model()
    pool = SnapshotPool(size=3, sampling="pfsp")
    beaten, even, losing = (pool.add(model.policy, t) for t in (0, 1, 2))
    for _ in range(40):
        pool.record(beaten, +1)
        pool.record(even, +1)
        pool.record(even, -1)
        pool.record(losing, -1)
    w = pool.weights()
    assert w[2] > w[1] > w[0]
    assert w[2] > 0.7
    u = np.random.default_rng(0).random(2000)
    picks = [pool.pick(x).name for x in u]
    assert picks.count(losing.name) > 0.7 * len(picks)


def test_recent_sampling_prefers_newer_snapshots_and_uniform_does_not():
    model = _model()
    recent = SnapshotPool(size=4, sampling="recent")
    uniform = SnapshotPool(size=4, sampling="uniform")
    for t in range(4):
        recent.add(model.policy, t)
        uniform.add(model.policy, t)
    assert np.all(np.diff(recent.weights()) > 0)
    np.testing.assert_allclose(uniform.weights(), 0.25)


class CountingGreedy(GreedyOpponent):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def act(self, boards, players, rng):
        self.calls.append(len(boards))
        return super().act(boards, players, rng)


def test_each_opponent_acts_once_per_ply_for_all_games_facing_it():
    """16 games against one opponent: every reply is one call over all waiting games."""
    counting = CountingGreedy()
    table = GameTable(16, GameOptions(opponents=(counting,)), seat=1)
    for i in range(16):
        table.streams.reseed(i, np.random.default_rng(i))
    table.start(np.arange(16))
    assert counting.calls[0] == 16  # the opening reply of all 16 games, in one call


def test_league_sources_play_and_hear_results():
    """pool and self need the learner; once attached, episodes against them are recorded.

    The vec env builds the league from the options (the pool with their size), and hands
    its sources back for the learner to be attached."""
    options = GameOptions(opponents={"pool": 0.5, "self": 0.5}, pool_size=2)
    assert build_sources(options)[1] == [0.5, 0.5]
    vec = KalahaVecEnv(8, options, seed=0)
    sources = vec.sources
    assert next(s for s in sources if isinstance(s, SnapshotPool)).size == 2
    with pytest.raises(RuntimeError, match=r"attach|empty"):
        vec.reset()
    model = _model()
    attach_learner(sources, model.policy)
    pool = next(s for s in sources if isinstance(s, SnapshotPool))
    assert isinstance(sources[1], Learner) and len(pool.members) == 1
    vec.reset()
    rng = np.random.default_rng(0)
    for _ in range(200):
        masks = vec.action_masks()
        vec.step((rng.random(masks.shape) * masks).argmax(axis=1))
    assert pool.results[id(pool.members[0])][1] > 5  # games against the snapshot were recorded


def test_epsilon_opponent_plays_random_moves_at_its_rate():
    """greedy@0.3 leaves greedy's best moves at the rate a 30% share of random moves predicts."""
    rng = np.random.default_rng(0)
    n = 4000
    boards = np.tile(np.array([4] * 6 + [0] + [4] * 6 + [0], dtype=np.int32), (n, 1))
    boards[:, :6] = rng.integers(0, 9, size=(n, 6))
    boards[boards[:, :6].sum(axis=1) == 0, 0] = 1
    players = np.zeros(n, dtype=np.int64)
    scores = _greedy_scores(boards, players, False)
    best = scores == scores.max(axis=1, keepdims=True)
    legal = legal_masks(boards, players)
    expected = 0.3 * (1 - best.sum(axis=1) / legal.sum(axis=1)).mean()
    eps = make_opponent("greedy@0.3")
    assert eps.name == "greedy@0.3"
    moves = eps.act(boards, players, np.random.default_rng(1))
    assert legal[np.arange(n), moves].all()
    off_best = (~best[np.arange(n), moves]).mean()
    assert expected > 0.05
    assert off_best == pytest.approx(expected, abs=0.03)
    plain = make_opponent("greedy").act(boards, players, np.random.default_rng(1))
    assert best[np.arange(n), plain].all()


@pytest.mark.parametrize("spec", ["random@0.1", "greedy@1.5", "minimax:2@x", "greedy@"])
def test_bad_epsilon_specs_are_rejected(spec):
    with pytest.raises(ValueError, match=r"@EPS"):
        make_opponent(spec)


def _distinct_pool(size: int, **policy_kwargs) -> tuple[SnapshotPool, MaskablePPO]:
    """A pool of ``size`` snapshots with different weights (the learner nudged between)."""
    model = MaskablePPO(
        "MlpPolicy",
        KalahaVecEnv(4, lookahead=policy_kwargs.pop("lookahead", 0), seed=0),
        policy_kwargs={"net_arch": [16, 16], **policy_kwargs},
        seed=0,
    )
    pool = SnapshotPool(size=size, sampling="uniform")
    for t in range(size):
        with torch.no_grad():
            for p in model.policy.parameters():
                p.add_(0.3 * torch.randn_like(p))
        pool.add(model.policy, timestep=t)
    return pool, model


def _positions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    table = GameTable(n, GameOptions(opening_plies=9))
    for i in range(n):
        table.streams.reseed(i, np.random.default_rng(seed + i))
    table.start(np.arange(n))
    return table.boards.copy(), table.seat.copy()


@pytest.mark.parametrize("lookahead", [0, 2])
def test_a_pool_answers_all_its_members_games_in_one_pass_as_each_member_would(lookahead):
    """The stacked pass gives each game its own member's action distribution: the same
    greedy actions as the member alone, sampled ones with the same frequencies."""
    from env.networks import PrecomputedLookahead

    extra = {}
    if lookahead:
        extra = {
            "lookahead": lookahead,
            "features_extractor_class": PrecomputedLookahead,
            "features_extractor_kwargs": {"plies": lookahead},
        }
    pool, _ = _distinct_pool(4, **extra)
    boards, players = _positions(120)
    stacked = pool._stack()
    assert stacked is not None
    obs = pool.members[0].observation(boards, players)
    # Every member with games (one pass over the stack), and two of four (each alone).
    for index in (np.arange(120) % 4, 1 + np.arange(120) % 2):
        greedy = stacked(obs, legal_masks(boards, players), index, deterministic=True)
        for k in np.unique(index):
            rows = np.flatnonzero(index == k)
            alone = pool.members[k].model.predict(
                obs[rows], action_masks=legal_masks(boards[rows], players[rows]), deterministic=True
            )[0]
            np.testing.assert_array_equal(greedy[rows], alone)
    # Sampled: one position per member, 4,000 draws each, against predict's probabilities.
    one = np.repeat(np.arange(4), 4000)  # member k plays position k, 4,000 times
    drawn = pool.act_together([pool.members[k] for k in one], boards[one], players[one], None)
    for k, member in enumerate(pool.members):
        dist = member.model.get_distribution(
            torch.as_tensor(obs[k : k + 1]), legal_masks(boards[k : k + 1], players[k : k + 1])
        )
        probs = dist.distribution.probs.detach().numpy()[0]
        freq = np.bincount(drawn[one == k], minlength=6) / 4000
        np.testing.assert_allclose(freq, probs, atol=0.03)


def test_games_whose_snapshot_left_the_pool_are_still_answered_by_it():
    pool, model = _distinct_pool(2)
    gone = pool.members[0]
    pool.add(model.policy, timestep=99)  # the oldest leaves a full pool
    assert gone not in pool.members
    boards, players = _positions(10)
    faced = [gone] * 5 + pool.members[:1] * 5
    torch.manual_seed(0)
    pits = pool.act_together(faced, boards, players, None)
    masks = legal_masks(boards, players)
    assert masks[np.arange(10), pits].all()
    alone = gone.model.predict(
        gone.observation(boards[:5], players[:5]), action_masks=masks[:5], deterministic=True
    )[0]
    gone.deterministic = True
    np.testing.assert_array_equal(
        pool.act_together([gone] * 5, boards[:5], players[:5], None), alone
    )
