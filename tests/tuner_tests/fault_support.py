"""Helpers for the fault and scale-out tests: workers as processes, polling, a private cluster.

Workers run with a 1 s heartbeat and a 3 s grace period so that a dead worker's
trial is noticed within seconds. Every wait polls with a bounded deadline; no
test asserts on how long something took.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState
from pgadmin import create_database
from support import REPO_ROOT, spawn_cli

from tuner.storage.record import TrialAttr

FAULTS = str(REPO_ROOT / "tests" / "tuner_tests" / "studies" / "faults.yaml")
FAULTS_NAME = "faults"
FAST_HEARTBEAT = {"KALAHA_HEARTBEAT_INTERVAL": "1", "KALAHA_GRACE_PERIOD": "3"}
T = TypeVar("T")

optuna.logging.set_verbosity(optuna.logging.WARNING)


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # the database may be restarting
            last_error = err
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})"
    )


def load_trials(url: str, name: str = FAULTS_NAME) -> list[FrozenTrial]:
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return study.get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def by_state(trials: list[FrozenTrial], state: TrialState) -> list[FrozenTrial]:
    return [t for t in trials if t.state == state]


def running_trial_of(url: str, pid: int, name: str = FAULTS_NAME) -> FrozenTrial | None:
    """The RUNNING trial of worker process ``pid`` once its training has begun."""
    try:
        trials = load_trials(url, name)
    except KeyError:  # the study does not exist yet
        return None
    for t in trials:
        worker = str(t.user_attrs.get(TrialAttr.WORKER, ""))
        if (
            t.state == TrialState.RUNNING
            and worker.endswith(f":{pid}")
            and TrialAttr.CONFIG in t.user_attrs
        ):
            return t
    return None


def spawn_worker(url: str, runs: Path, index: int | None = None, *args: str, study: str = FAULTS):
    extra = ["--worker-index", str(index)] if index is not None else []
    return spawn_cli(
        "tune",
        study,
        "--storage",
        url,
        "--device",
        "cpu",
        *extra,
        *args,
        runs_path=runs,
        **FAST_HEARTBEAT,
    )


def finish(procs: list[subprocess.Popen], timeout: float) -> list[tuple[str, str]]:
    """Wait for every process; kill the rest if one overruns (the test then fails)."""
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=timeout))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return outputs


@contextlib.contextmanager
def reaping(procs: list[subprocess.Popen]) -> Iterator[list[subprocess.Popen]]:
    """Kill whatever is still running when the test leaves (never leak a worker)."""
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.communicate()


@contextlib.contextmanager
def unused_port() -> Iterator[int]:
    """A local port where nothing listens, held for the ``with`` block.

    The socket is bound but never listens: a connection there is refused at once,
    and no other program can take the port meanwhile (a port merely found free
    and released can be taken before the test uses it).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def pg_bindir() -> Path | None:
    """The PostgreSQL server binaries (initdb, pg_ctl): ``pg_config --bindir``, else Debian's.

    ``pg_config`` names the installation's own bin folder on any layout; Debian keeps
    the server binaries off ``PATH`` under ``/usr/lib/postgresql/N/bin``.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    candidates += [p.parent for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))][::-1]
    for bindir in candidates:
        if (bindir / "pg_ctl").is_file() and (bindir / "initdb").is_file():
            return bindir
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, so a test can restart its server.

    The shared server is never restarted under other tests. As root (initdb
    refuses root) the cluster runs as the ``postgres`` user.
    """

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError(
                "no PostgreSQL server binaries (initdb, pg_ctl): not in `pg_config --bindir` "
                "nor under /usr/lib/postgresql/*/bin"
            )
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="kalaha-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0  # chosen at each start
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self.as_user, *args], check=True, capture_output=True, text=True, timeout=timeout
        )

    def pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def init_and_start(self) -> None:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=60"
        )

    def start(self, attempts: int = 5) -> None:
        """Start the server; on the first start pick a port, and another if it was taken.

        A port found free can be taken by another program before the server binds it;
        the server then fails to start and says so in its log, and we try another.
        A restart keeps the port (the workers' URL names it).
        """
        first = self.port == 0
        for attempt in range(attempts if first else 1):
            if first:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    self.port = s.getsockname()[1]
            try:
                self.pg_ctl("-o", self._options(), "-l", str(self.log), "-w", "start")
                return
            except subprocess.CalledProcessError:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                if not first or "could not bind" not in log or attempt == attempts - 1:
                    raise

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    @property
    def server(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}"

    def create_database(self, name: str) -> str:
        return create_database(self.server, name)

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
