"""The lookahead features agree with the rules engine, move by move.

``env.networks.Lookahead`` restates sowing in closed form so that a batch of
boards is a few tensor operations; one place where a rule could drift from
env/rules.py, so every legal move of a few thousand reachable boards is checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from env import rules
from env.networks import Lookahead, _sow_all
from env.observation import observation_space, observe
from env.options import GameOptions


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
    assert plain["features_extractor_class"] is Lookahead
    assert plain["features_extractor_kwargs"] == {"plies": 1, "stones": 5, "empty_capture": True}
    both = materialize({"policy_kwargs": {"lookahead": 2, "shared_trunk": [32]}}, game)
    kwargs = both["policy_kwargs"]["features_extractor_kwargs"]
    assert kwargs["hidden"] == [32] and both["policy_kwargs"]["share_features_extractor"]
    off = materialize({"policy_kwargs": {"lookahead": 0, "net_arch": [8]}}, game)
    assert off["policy_kwargs"] == {"net_arch": [8]}
