"""Where a study's files live: the runs folder (``$KALAHA_RUNS``, default ``runs``).

The SQLite storage, the trial artifacts, TensorBoard logs, reports and retrained
models all go below it. Kept apart from the training code so that commands that
only read a study (the dashboard, ``status``, ``report``) start without loading
torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore


def runs_dir() -> Path:
    return Path(os.environ.get("KALAHA_RUNS", "runs"))


def tensorboard_dir(name: str) -> Path:
    """TensorBoard runs of study ``name`` (one run per trial below it)."""
    return runs_dir() / "tensorboard" / name


def artifacts_dir() -> Path:
    """The artifact store trials upload their models to, and the dashboard lists."""
    return runs_dir() / "artifacts"


def artifact_store(directory: Path | None = None) -> FileSystemArtifactStore:
    path = directory if directory is not None else artifacts_dir()
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))
