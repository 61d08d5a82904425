"""Save a study to a SQLite file and load it into another storage: a study that moves.

Why: a study can outlive one sitting on one machine (a rented GPU node, a laptop),
and a fresh PostgreSQL on the next machine starts empty. ``tuner save STUDY --to
FILE`` writes the study into a SQLite file that can be copied or committed
(``docs/results/STUDY/study.sqlite3``); ``tuner load FILE`` puts it into the
storage the workers use there, and ``tuner tune STUDY`` goes on where it stopped.

Both are :func:`optuna.copy_study`: the study's directions, its user attrs (the
tuner's stored spec and spec changes) and system attrs, and every trial as it is:
state, values, parameters with their distributions, intermediate values, user
attrs and system attrs (where Optuna keeps the artifact references of the trial's
model), start and end times. What it does not copy, and what the caller is told:

- the model files themselves: they are in the artifact store (``runs/artifacts``)
  of the machine that trained them, and a trial refers to them by id
  (``model_artifact_id``); copying that folder alongside makes ``tuner evaluate
  --study`` and the dashboard find them again;
- heartbeats: a trial saved while it ran stays RUNNING, without a heartbeat, so
  the first worker on the loaded study fails it as an orphan and queues it again
  with the same parameters (``tuner.trial.lifecycle``), as after a killed worker.

A study's companion of verify jobs (``STUDY:verify``) moves with it.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

from tuner.base.errors import UserError
from tuner.storage.rdb import describe, study_names
from tuner.storage.record import TrialAttr

COMPANION_SUFFIX = ":verify"  # tuner.commands.verify.companion names it so


@dataclass(frozen=True)
class Copied:
    """What one save or load moved: the studies, their trials, and what needs a word."""

    studies: tuple[str, ...]
    trials: int
    running: int  # saved as RUNNING: failed and re-queued as orphans where they are loaded
    artifacts: int  # trials that refer to a model in the artifact store

    def notes(self, artifacts_dir: Path | None = None) -> list[str]:
        """Lines for the user: running trials, and the model files that did not move."""
        out = []
        if self.running:
            out.append(
                f"{self.running} trial(s) were RUNNING and are copied as RUNNING: the first "
                "worker on the loaded study fails them (orphaned) and queues them again"
            )
        if self.artifacts:
            where = f" ({artifacts_dir})" if artifacts_dir is not None else ""
            out.append(
                f"{self.artifacts} trial(s) refer to a model in the artifact store{where}: the "
                "references are copied, the files are not; copy that folder to the new "
                "machine's runs/artifacts too (rsync -a runs/artifacts/ HOST:PATH/runs/artifacts/)"
            )
        return out


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _same_storage(a: str, b: str) -> bool:
    ua, ub = sqlalchemy.engine.make_url(a), sqlalchemy.engine.make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "sqlite":
        return os.path.abspath(ua.database or "") == os.path.abspath(ub.database or "")
    return ua.render_as_string(hide_password=False) == ub.render_as_string(hide_password=False)


def open_sqlite_file(path: Path, *, must_exist: bool) -> optuna.storages.RDBStorage:
    """A SQLite file as an Optuna storage; one line when it is missing or not one."""
    if path.exists() and not path.is_file():
        raise UserError(f"{path}: expected a SQLite file, but it is a folder")
    if must_exist and not path.is_file():
        raise UserError(f"{path}: no such file; expected a study file written by `tuner save`")
    magic = b""
    if path.is_file():
        with path.open("rb") as head:
            magic = head.read(16)
    if magic and magic != b"SQLite format 3\x00":
        raise UserError(f"{path}: not a SQLite file; expected a study file written by `tuner save`")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(sqlite_url(path))
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as err:
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not an Optuna study file ({line[:200]})") from None


def _with_companion(name: str, stored: list[str]) -> list[str]:
    companion = name + COMPANION_SUFFIX
    return [name, companion] if companion in stored else [name]


def _copy(
    names: list[str],
    source: optuna.storages.BaseStorage,
    target: optuna.storages.BaseStorage,
    rename: dict[str, str],
) -> Copied:
    trials = running = artifacts = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name in names:
            optuna.copy_study(
                from_study_name=name,
                from_storage=source,
                to_storage=target,
                to_study_name=rename.get(name, name),
            )
            study = optuna.load_study(study_name=name, storage=source)
            for t in study.get_trials(deepcopy=False):
                trials += 1
                running += t.state == TrialState.RUNNING
                artifacts += TrialAttr.MODEL_ARTIFACT_ID in t.user_attrs
    return Copied(tuple(rename.get(n, n) for n in names), trials, running, artifacts)


def save_study(
    name: str, source: optuna.storages.BaseStorage, source_url: str, path: Path, *, force: bool
) -> Copied:
    """Study ``name`` (and its companion) from ``source`` into the SQLite file ``path``.

    The file may hold other studies. Written through a copy of the file that replaces
    it at the end, so an interrupted save never leaves a half-written study behind;
    ``force`` replaces a study of the same name that the file already holds.
    """
    stored = study_names(source)
    if name not in stored:
        raise UserError(
            f"no study named {name!r} in {describe(source_url)}; expected one of {stored}"
        )
    if _same_storage(source_url, sqlite_url(path)):
        raise UserError(f"--to {path}: that is the study's own storage; save it to another file")
    names = _with_companion(name, stored)
    if path.exists():
        there = study_names(open_sqlite_file(path, must_exist=True))
        clash = [n for n in names if n in there]
        if clash and not force:
            raise UserError(
                f"{path} already holds the study {clash[0]!r}; pass --force to replace it "
                "with this one, or save to another file"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    if path.exists():
        shutil.copyfile(path, tmp)
    try:
        target = open_sqlite_file(tmp, must_exist=False)
        for old in set(names) & set(study_names(target)):
            optuna.delete_study(study_name=old, storage=target)
        copied = _copy(names, source, target, {})
        target.engine.dispose()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return copied


def load_saved(
    path: Path,
    name: str | None,
    target: optuna.storages.BaseStorage,
    target_url: str,
    *,
    as_name: str | None = None,
) -> Copied:
    """Study ``name`` (and its companion) from the SQLite file ``path`` into ``target``.

    ``name`` may be left out when the file holds one study (its companion aside).
    A study of the same name in ``target`` is never touched: the load is refused,
    or goes under ``as_name``.
    """
    if _same_storage(target_url, sqlite_url(path)):
        raise UserError(f"{path} is the storage it would load into; pass another --storage")
    source = open_sqlite_file(path, must_exist=True)
    stored = study_names(source)
    mains = [n for n in stored if not n.endswith(COMPANION_SUFFIX)]
    if name is None:
        if len(mains) != 1:
            raise UserError(
                f"{path} holds {len(mains)} studies {mains}; name the one to load: "
                f"tuner load {path} STUDY"
            )
        name = mains[0]
    if name not in stored:
        raise UserError(f"{path} holds no study named {name!r}; expected one of {mains}")
    names = _with_companion(name, stored)
    new = as_name or name
    rename = {name: new, name + COMPANION_SUFFIX: new + COMPANION_SUFFIX}
    there = study_names(target)
    clash = [rename[n] for n in names if rename[n] in there]
    if clash:
        raise UserError(
            f"{describe(target_url)} already has a study named {clash[0]!r}; loading never "
            f"replaces one: load it under another name (--as NAME), or delete that study "
            f"first (optuna delete-study --study-name {clash[0]!r} --storage URL)"
        )
    return _copy(names, source, target, rename)
