"""A member's checkpoint: what one unit hands the next, through Optuna's artifact store.

A unit ends by saving its member's state, and the next unit of that member (or of a
member that copies it) starts by loading it, on whichever worker claims it. The state
is what training needs to go on as if it had never stopped:

- the policy's weights and the optimizer's state (Adam's moments and step counts),
  so that a copy continues the donor's optimization rather than restarting it;
- the timestep and update counts, so that logs, snapshots and schedules line up;
- the self-play pool: each snapshot's weights, name and the learner's results
  against it (which ``pfsp`` sampling weighs by), and how many were ever taken.

The model itself is not in the file: every unit builds its model and envs afresh from
its own configuration (the same ``to_config`` as any trial), which is how a changed
learning rate or opponent mix takes effect, and then loads the state into it. The file
is written with ``torch.save`` and read with ``torch.load(weights_only=True)``: tensors,
numbers and strings only, so a checkpoint cannot run code when it is loaded (SB3's own
``.zip`` unpickles, see ``env/policy_files.py``).
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import download_artifact, upload_artifact

from env.league import SnapshotPool, frozen_copy
from env.opponents import PolicyOpponent
from tuner.base.errors import ConfigError
from tuner.base.runs import artifact_store, artifacts_dir

FORMAT = "kalaha-tuner/pbt-checkpoint/v1"


def weights_digest(policy: Any) -> str:
    """A short digest of a policy's weights: equal digests, equal weights (the lineage check)."""
    h = hashlib.sha256()
    for name, tensor in sorted(policy.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class MemberState:
    """Everything of a member that outlives one unit (see the module's docstring)."""

    policy: dict[str, Any]
    optimizer: dict[str, Any]
    num_timesteps: int
    n_updates: int
    pools: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def capture(
        cls, model: Any, pools: list[SnapshotPool], carried: MemberState | None = None
    ) -> MemberState:
        """The state of ``model`` and its pools, copied (training may go on afterwards).

        A unit whose opponent mix has no pool carries the pool it was given, so that a
        later interval that plays the pool again finds its snapshots.
        """
        saved = [_pool_state(pool) for pool in pools]
        if not pools and carried is not None:
            saved = copy.deepcopy(carried.pools)
        return cls(
            policy=copy.deepcopy(model.policy.state_dict()),
            optimizer=copy.deepcopy(model.policy.optimizer.state_dict()),
            num_timesteps=int(model.num_timesteps),
            n_updates=int(getattr(model, "_n_updates", 0)),
            pools=saved,
        )

    def restore(self, model: Any, pools: list[SnapshotPool]) -> None:
        """Load this state into a freshly built ``model`` and its (empty) pools.

        The model must have the same network (a PBT study cannot search it); a mismatch
        is a :class:`ConfigError` naming the cause.
        """
        try:
            model.policy.load_state_dict(self.policy)
            model.policy.optimizer.load_state_dict(self.optimizer)
        except (RuntimeError, ValueError, KeyError) as err:
            raise ConfigError(
                f"the member's checkpoint does not fit the unit's model: {str(err).splitlines()[0]}"
            ) from None
        model.num_timesteps = self.num_timesteps
        model._n_updates = self.n_updates
        for pool, saved in zip(pools, self.pools, strict=False):
            _restore_pool(pool, saved, model.policy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "policy": self.policy,
            "optimizer": self.optimizer,
            "num_timesteps": self.num_timesteps,
            "n_updates": self.n_updates,
            "pools": self.pools,
        }

    def save(self, path: Path) -> Path:
        import torch

        torch.save(self.as_dict(), path)
        return path

    @classmethod
    def load(cls, path: Path) -> MemberState:
        """Read a checkpoint: tensors and plain data only (``weights_only``), onto the CPU."""
        import torch

        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{path.name}: expected a checkpoint {FORMAT!r}, but got {found!r}")
        return cls(
            policy=data["policy"],
            optimizer=data["optimizer"],
            num_timesteps=int(data["num_timesteps"]),
            n_updates=int(data["n_updates"]),
            pools=list(data["pools"]),
        )


def _pool_state(pool: SnapshotPool) -> dict[str, Any]:
    members = []
    for m in pool.members:
        members.append(
            {
                "name": m.name,
                "weights": copy.deepcopy(m.model.state_dict()),
                "results": [float(x) for x in pool.results.get(id(m), [0.0, 0.0])],
            }
        )
    return {"added": int(pool.added), "members": members}


def _restore_pool(pool: SnapshotPool, saved: dict[str, Any], policy: Any) -> None:
    """Refill ``pool`` with the saved snapshots (the newest ``pool.size`` of them)."""
    for snap in saved["members"][-pool.size :]:
        clone = frozen_copy(policy)
        clone.load_state_dict(snap["weights"])
        member = PolicyOpponent(clone, stones=pool.stones, deterministic=False, name=snap["name"])
        pool.members.append(member)
        pool.results[id(member)] = list(snap["results"])
    pool.added = int(saved["added"])


def upload_state(trial: optuna.Trial, state: MemberState, name: str, runs_dir: Path) -> str:
    """Save ``state`` as ``name`` in the artifact store, attached to ``trial``; its id."""
    with tempfile.TemporaryDirectory() as tmp:
        path = state.save(Path(tmp) / name)
        return upload_artifact(
            artifact_store=artifact_store(artifacts_dir(runs_dir)),
            file_path=str(path),
            study_or_trial=trial,
        )


def download_state(artifact_id: str, runs_dir: Path) -> MemberState:
    """The checkpoint ``artifact_id`` from the artifact store."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        download_artifact(
            artifact_store=artifact_store(artifacts_dir(runs_dir)),
            file_path=str(path),
            artifact_id=artifact_id,
        )
        return MemberState.load(path)
