"""Where a study's files live: below the runs folder.

The folder is ``Settings.runs_dir`` (``$KALAHA_RUNS``, default ``runs``), passed in
by the caller: read once by the CLI, never looked up here. The SQLite storage, the trial artifacts, TensorBoard logs, reports and retrained
models all go below it. Kept apart from the training code so that commands that
only read a study (the dashboard, ``status``, ``report``) start without loading
torch.
"""

from __future__ import annotations

from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore


def name_part(name: str, what: str = "study name") -> str:
    """``name`` as one path component: no separator, not ``.`` or ``..``, not empty.

    Study names come from study files, from the database (any Optuna client can
    create a study) and from export files; a name such as ``..`` or ``a/../../x``
    would put logs, reports and models outside the folder meant for them.
    """
    from tuner.base.errors import UserError

    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or len(name) > 200
    ):
        raise UserError(
            f"{what} {name!r} cannot name a file: expected letters, digits, '_', '-' or '.' "
            "(not '.' or '..', no '/'); rename it"
        )
    return name


def confined(base: Path, *names: str) -> Path:
    """``base / name / ...``, each name checked by :func:`name_part`."""
    path = base
    for name in names:
        path = path / name_part(name)
    return path


def tensorboard_dir(runs_dir: Path, name: str) -> Path:
    """TensorBoard runs of study ``name`` (one run per trial below it)."""
    return confined(runs_dir / "tensorboard", name)


def artifacts_dir(runs_dir: Path) -> Path:
    """The artifact store trials upload their models to, and the dashboard lists."""
    return runs_dir / "artifacts"


def artifact_store(directory: Path) -> FileSystemArtifactStore:
    directory.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(directory))
