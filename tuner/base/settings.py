"""Every environment variable the tuner reads, read once and checked up front.

``tuner.cli.main`` calls :meth:`Settings.from_env` before it runs any command and
passes the fields down as parameters; no other module reads these variables. A bad
value is one :class:`~tuner.base.errors.UserError` line (which variable, what was
expected, what was found, how to fix it) whatever the command, even one that does
not use that setting: a typo in a compose file should fail on the first command
that sees it, not on the first that happens to read it.

Light on purpose (no optuna, torch or numba imported here): the CLI reads the
settings before it knows which heavy module a command needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tuner.base.errors import UserError

# The default of a variable, and what its parser returns: they differ where the default
# means "unset" (WORKER_INDEX: None, else an int).
D = TypeVar("D")
P = TypeVar("P")

# Relative to the working directory unless the environment says otherwise: a fresh
# checkout (and the image, whose WORKDIR is /app) runs from the folder holding both.
DEFAULT_RUNS = Path("runs")
DEFAULT_STUDIES = Path("studies")
DEVICES = "auto, cpu, cuda or cuda:N"
# A worker's storage settings, bounded: a day is far above any useful interval, and far
# below what a thread's wait overflows on. The grace period is at least this many
# heartbeat intervals, so that one late beat never fails a live trial as stale.
MAX_SECONDS = 86_400
BEATS_PER_GRACE = 3


@dataclass(frozen=True)
class StorageSettings:
    """Heartbeat and connection settings of a worker's storage (``KALAHA_*`` below)."""

    heartbeat_interval: int = 10
    grace_period: int = 60
    max_retry: int = 2
    pool_size: int = 2
    connect_attempts: int = 5
    # How long a storage call keeps retrying while the database is unreachable.
    retry_seconds: int = 120
    connect_timeout: int = 5


@dataclass(frozen=True)
class Settings:
    """What the environment configures; the defaults are those of an empty environment."""

    storage_url: str | None = None  # OPTUNA_STORAGE; --storage wins
    runs_dir: Path = DEFAULT_RUNS  # KALAHA_RUNS
    studies_dir: Path = DEFAULT_STUDIES  # KALAHA_STUDIES
    device: str = "auto"  # KALAHA_DEVICE; --device wins
    torch_threads: int = 1  # KALAHA_TORCH_THREADS; --threads wins
    worker_index: int | None = None  # WORKER_INDEX; --worker-index wins
    storage: StorageSettings = field(default_factory=StorageSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; a :class:`UserError` names the first bad one."""
        env = _Reader(os.environ if environ is None else environ)
        settings = cls(
            storage_url=env.text("OPTUNA_STORAGE"),
            runs_dir=Path(env.text("KALAHA_RUNS") or DEFAULT_RUNS),
            studies_dir=Path(env.text("KALAHA_STUDIES") or DEFAULT_STUDIES),
            device=env.parsed("KALAHA_DEVICE", "auto", _device, DEVICES, "--device"),
            torch_threads=env.integer("KALAHA_TORCH_THREADS", 1, 1, 1024, "--threads"),
            worker_index=env.integer("WORKER_INDEX", None, 0, None, "--worker-index"),
            storage=StorageSettings(
                heartbeat_interval=env.integer(
                    "KALAHA_HEARTBEAT_INTERVAL", 10, 1, 3600, "heartbeat interval (seconds)"
                ),
                grace_period=env.integer(
                    "KALAHA_GRACE_PERIOD", 60, 1, MAX_SECONDS, "heartbeat grace period (seconds)"
                ),
                max_retry=env.integer("KALAHA_MAX_RETRY", 2, 0, None, "retries of a dead trial"),
                pool_size=env.integer("KALAHA_POOL_SIZE", 2, 1, None, "connection pool size"),
                connect_attempts=env.integer(
                    "KALAHA_CONNECT_ATTEMPTS", 5, 1, None, "connection attempts at start"
                ),
                retry_seconds=env.integer(
                    "KALAHA_RETRY_SECONDS", 120, 0, MAX_SECONDS, "storage retry window (seconds)"
                ),
            ),
        )
        check_storage(settings.storage)
        return settings

    def storage_url_for(self, url: str | None) -> str:
        """``--storage`` first, then ``$OPTUNA_STORAGE``, then the SQLite file in the runs folder."""
        return url or self.storage_url or default_storage_url(self.runs_dir)


def check_storage(storage: StorageSettings) -> None:
    """Settings that contradict each other: a :class:`UserError` line naming both variables.

    A heartbeat interval near or above the grace period fails live trials as stale
    (another worker sees a beat older than the grace period between two beats).
    """
    interval, grace = storage.heartbeat_interval, storage.grace_period
    if grace < BEATS_PER_GRACE * interval:
        raise UserError(
            f"heartbeat grace period (seconds): expected at least {BEATS_PER_GRACE} heartbeat "
            f"intervals ({BEATS_PER_GRACE} * {interval} = {BEATS_PER_GRACE * interval}), but "
            f"got {grace} (from $KALAHA_GRACE_PERIOD, with $KALAHA_HEARTBEAT_INTERVAL={interval}); "
            "raise KALAHA_GRACE_PERIOD or lower KALAHA_HEARTBEAT_INTERVAL, or unset both for "
            "10 and 60"
        )


def default_storage_url(runs_dir: Path = DEFAULT_RUNS) -> str:
    """The embedded storage: a SQLite file in the runs folder, so a checkout tunes alone."""
    return f"sqlite:///{runs_dir / 'optuna.db'}"


def _device(text: str) -> str:
    """The spelling ``resolve_device`` accepts (whether the GPU exists is its business)."""
    low = text.strip().lower()
    if low in ("auto", "cpu", "cuda") or (low.startswith("cuda:") and low[5:].isdigit()):
        return text
    raise ValueError(text)


class _Reader:
    """Reads variables from one mapping; an unset or empty variable is its default."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def text(self, name: str) -> str | None:
        raw = self.environ.get(name, "").strip()
        return raw or None

    def parsed(
        self,
        name: str,
        default: D,
        parse: Callable[[str], P],
        expected: str,
        subject: str,
    ) -> P | D:
        """The variable parsed, or ``default`` when unset; ``subject`` (a flag or what the
        variable sets) opens the error line."""
        raw = self.environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            shown = "unset it" if default is None else f"unset it for the default {default}"
            raise UserError(
                f"{subject}: expected {expected}, but got {raw!r} (from ${name}); "
                f"set {name} to {expected}, or {shown}"
            ) from None

    def integer(self, name: str, default: D, low: int, high: int | None, subject: str) -> int | D:
        limits = f"between {low} and {high}" if high is not None else f">= {low}"

        def parse(text: str) -> int:
            value = int(text)
            if value < low or (high is not None and value > high):
                raise ValueError(text)
            return value

        return self.parsed(name, default, parse, f"an integer {limits}", subject)
