"""The self-play league inside ``learn()``: snapshots of the learner join the pool.

The env side (who plays whom, how a snapshot is drawn) is ``env/league.py``;
this SB3 callback does the bookkeeping during training: every ``snapshot_every``
timesteps it freezes the learner's current policy into each pool, and it logs
the pool's size and the learner's score against it to TensorBoard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from env.league import SnapshotPool


class SnapshotCallback(BaseCallback):
    """Add a frozen copy of the learner to ``pools`` every ``snapshot_every`` timesteps."""

    def __init__(self, pools: Sequence[SnapshotPool], snapshot_every: int) -> None:
        super().__init__()
        self.pools = list(pools)
        self.snapshot_every = max(1, int(snapshot_every))
        self._next = self.snapshot_every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            while self._next <= self.num_timesteps:
                self._next += self.snapshot_every
            for pool in self.pools:
                pool.add(self.model.policy, self.num_timesteps)
        return True

    def _on_rollout_end(self) -> None:
        for pool in self.pools:
            scores = [pool.score_against(m) for m in pool.members]
            self.logger.record("league/pool_size", len(pool.members))
            self.logger.record("league/snapshots_taken", pool.added)
            if scores:
                self.logger.record("league/score_vs_pool", sum(scores) / len(scores))
                self.logger.record("league/score_vs_newest", scores[-1])


def league_summary(pools: Sequence[SnapshotPool]) -> dict[str, Any]:
    """What a trial records about its league: snapshots taken, and its score per snapshot."""
    out: dict[str, Any] = {}
    for pool in pools:
        out = {
            "snapshots_taken": pool.added,
            "pool": {m.name: round(pool.score_against(m), 3) for m in pool.members},
        }
    return out
