"""The compose stack for real: built, run, switched, scaled, stopped and started on Docker.

``make compose-test`` runs this module (after ``make wheelhouse``). It drives the stack
through the Makefile's own targets, as a user would, as a compose project of its own
(``kalaha-tuner-test``) with its own settings file and free ports, so it neither touches a
user's ``.env`` and stack nor collides with the host's PostgreSQL. The image is the CPU
variant built from the wheelhouse (``WHEELHOUSE=1``): the build needs no network.

Without a Docker daemon (and Compose v2) the module is skipped with the reason; with
``KALAHA_DOCKER_TESTS=require`` (``make compose-test``) that is a failure instead. Under
``CI`` it is skipped too: on a fresh 2-core machine the stand-in images alone took 13
minutes (README, "Testing the stack"), more than CI's whole budget.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_support import load_trials, wait_for
from optuna.trial import TrialState
from support import REPO_ROOT

from tuner.config.spec import load_spec
from tuner.storage.record import TrialAttr
from tuner.trial.lifecycle import budget_used

PROJECT = "kalaha-tuner-test"
LONG_STUDY = "net_arch"  # trials that train for minutes: still running when scaled down
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # Compose's logs clear each line (ESC[2K)
TRIAL_LINE = re.compile(r"^trial\s+\d+\s+(COMPLETE|PRUNED|FAIL)\s", re.M)
# Settings of the caller's shell that Compose would prefer over the settings file, and an
# outer make's variables (`make compose-test ARGS=...` must not reach `make status`).
SHELL_SETTINGS = re.compile(
    r"^(COMPOSE_.*|DOCKER_BUILDKIT|STUDY|WORKERS|TORCH_.*|WHEELHOUSE|PIP_INDEX_URL|PYTHON_IMAGE"
    r"|POSTGRES_.*|DB_HOST|DB_PORT|DASHBOARD_PORT|OPTUNA_STORAGE|KALAHA_.*"
    r"|MAKEFLAGS|MFLAGS|MAKELEVEL|MAKEOVERRIDES|ARGS|ENV_FILE|COMPOSE)$"
)


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not SHELL_SETTINGS.match(k)}


pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]


def docker_missing() -> str | None:
    """Why this host cannot run the stack, or None when it can."""
    if not shutil.which("docker"):
        return "no docker command on PATH"
    check = subprocess.run(
        ["sh", "docker/check-versions.sh"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return check.stderr.strip() or None if check.returncode else None


@pytest.fixture(scope="module", autouse=True)
def docker_host() -> None:
    required = os.environ.get("KALAHA_DOCKER_TESTS") == "require"
    if os.environ.get("CI") and not required:
        pytest.skip(
            "the compose stack test is not part of CI: stand-in images, wheelhouse and build "
            "take well over CI's budget on 2 cores; run `make compose-test` on a Docker host"
        )
    reason = docker_missing()
    if reason:
        message = f"compose stack test needs a Docker host: {reason}"
        if required:
            pytest.fail(message)
        pytest.skip(f"{message}; see README, 'Testing the stack'")


@dataclass
class Stack:
    """One compose project: its settings file, the Makefile targets and docker queries."""

    env_file: Path
    settings: dict[str, str]

    def make(self, *args: str, timeout: float = 900) -> str:
        """``make ARGS ENV_FILE=...``; fails the test with the output when make fails."""
        result = subprocess.run(
            ["make", "--no-print-directory", *args, f"ENV_FILE={self.env_file}"],
            cwd=REPO_ROOT,
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"make {' '.join(args)} failed:\n{output[-6000:]}"
        return output

    def compose(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["docker", "compose", "--env-file", str(self.env_file), *args],
            cwd=REPO_ROOT,
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0 or not check, result.stdout + result.stderr
        return result.stdout

    def containers(self, service: str) -> list[dict]:
        """``docker compose ps -a`` rows of one service (Compose prints JSON lines or a list)."""
        out = self.compose("ps", "-a", "--format", "json", service).strip()
        if not out:
            return []
        rows = json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines()]
        return [r for r in rows if r["Service"] == service]

    def ids(self, service: str) -> set[str]:
        return {r["ID"] for r in self.containers(service)}

    def logs(self, service: str) -> str:
        return ANSI.sub("", self.compose("logs", "--no-color", "--no-log-prefix", service))

    @property
    def url(self) -> str:
        return self.make("-s", "compose-url").strip()

    def trials(self, study: str) -> list:
        return load_trials(self.url, study)

    def project_objects(self, kind: str) -> list[str]:
        stopped_too = ["-a"] if kind == "container" else []
        out = subprocess.run(
            [
                "docker",
                kind,
                "ls",
                "-q",
                *stopped_too,
                "--filter",
                f"label=com.docker.compose.project={PROJECT}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_host: None) -> Iterator[Stack]:
    """A fresh compose project; removed with its volumes afterwards, whatever happened."""
    make_wheelhouse = subprocess.run(
        ["make", "--no-print-directory", "wheelhouse", "TORCH_VARIANT=cpu"],
        cwd=REPO_ROOT,
        env=clean_environ(),
        capture_output=True,
        text=True,
    )
    assert make_wheelhouse.returncode == 0, make_wheelhouse.stdout + make_wheelhouse.stderr
    settings = {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "COMPOSE_FILE": f"{REPO_ROOT / 'docker-compose.yml'}:{REPO_ROOT / 'docker-compose.cpu.yml'}",
        "TORCH_VARIANT": "cpu",
        "WHEELHOUSE": "1",
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "POSTGRES_PORT": str(_unused_port()),
        "DASHBOARD_PORT": str(_unused_port()),
        "STUDY": "smoke",
        "KALAHA_HEARTBEAT_INTERVAL": "5",
    }
    env_file = tmp_path_factory.mktemp("compose") / "stack.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    s = Stack(env_file, settings)
    s.compose("down", "-v", "--remove-orphans", check=False)  # a previous run's leftovers
    try:
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)


def workers_done(stack: Stack, n: int) -> list[dict] | None:
    rows = stack.containers("worker")
    if len(rows) == n and all(r["State"] == "exited" for r in rows):
        return rows
    if any(r["State"] == "restarting" for r in rows):
        pytest.fail("a worker is restarting:\n" + stack.logs("worker")[-4000:])
    return None


def test_up_runs_the_smoke_study_with_two_workers(stack):
    out = stack.make("up", "WORKERS=2", "STUDY=smoke", timeout=1800)
    # One build for the three services that share the image (a build per service, each
    # exporting and re-tagging the image, was defect 5).
    assert len(re.findall(r"naming to \S*kalaha-tuner:cpu", out)) == 1, out[-4000:]
    assert "docker/dockerfile" not in out, "no frontend image is fetched"

    rows = wait_for(lambda: workers_done(stack, 2), 900, "both smoke workers to finish")
    logs = stack.logs("worker")
    assert all(r["ExitCode"] == 0 for r in rows), logs[-4000:]
    assert "Traceback" not in logs
    spec = load_spec("smoke")
    assert len(TRIAL_LINE.findall(logs)) == spec.n_trials, logs[-4000:]
    trials = stack.trials("smoke")
    assert budget_used(trials) == spec.n_trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs[TrialAttr.WORKER] for t in trials}) == 2, "both workers ran trials"


def test_dashboard_answers_on_localhost(stack):
    port = stack.settings["DASHBOARD_PORT"]

    def studies() -> list:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
            return json.load(r)["study_summaries"]

    listed = wait_for(studies, 120, "the dashboard to answer")
    assert "smoke" in [s["study_name"] for s in listed]


def test_make_status_from_the_host_reads_the_compose_database(stack):
    url = stack.url
    assert f"@127.0.0.1:{stack.settings['POSTGRES_PORT']}/" in url
    out = stack.make("status", "STUDY=smoke", f"OPTUNA_STORAGE={url}")
    assert "smoke" in out and "COMPLETE" in out, out


def test_switching_study_keeps_postgres_and_scale_down_requeues(stack):
    # PostgreSQL keeps running. The dashboard is recreated with create-study: it depends
    # on it (so that it never races create-study to make Optuna's tables), and Compose v2
    # recreates the dependents of a recreated service (docker/compose#10308).
    postgres = stack.ids("postgres")
    stack.make("up", "WORKERS=2", f"STUDY={LONG_STUDY}", timeout=900)
    assert stack.ids("postgres") == postgres, "PostgreSQL was recreated"

    def two_learning() -> list | None:
        """Two RUNNING trials whose learn() began: SB3 made their TensorBoard run folders.

        A worker polls for a stop at each training step, not while it builds the envs
        and the model (numba compiles then): a signal there waits for the first step.
        """
        running = [t for t in stack.trials(LONG_STUDY) if t.state == TrialState.RUNNING]
        runs = stack.compose(
            "exec", "-T", "dashboard", "ls", f"/app/runs/tensorboard/{LONG_STUDY}", check=False
        )
        learning = {int(n) for n in re.findall(r"trial_(\d+)_\d+", runs)}
        return running if len(running) == 2 and {t.number for t in running} <= learning else None

    wait_for(two_learning, 900, "both workers to train a trial", every=2)
    stack.make("scale", "WORKERS=1", timeout=300)
    assert len(stack.containers("worker")) == 1

    def stopped() -> list | None:
        trials = stack.trials(LONG_STUDY)
        return trials if any(t.state == TrialState.FAIL for t in trials) else None

    trials = wait_for(stopped, 180, "the stopped worker's trial to be recorded")
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.user_attrs[TrialAttr.FAIL_REASON].startswith("worker stopped: SIGTERM received")
    (retry,) = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == failed.number]
    assert retry.state in (TrialState.WAITING, TrialState.RUNNING)
    assert retry.params == failed.params
    assert [t.state for t in trials].count(TrialState.RUNNING) <= 1
    # create-study ran for both studies and every worker loaded its study: no insert failed.
    assert "duplicate key" not in stack.logs("postgres")


def test_down_then_up_keeps_the_studies(stack):
    before = {name: len(stack.trials(name)) for name in ("smoke", LONG_STUDY)}
    stack.make("down", timeout=300)
    assert not stack.project_objects("container")
    stack.make("up", "WORKERS=1", "STUDY=smoke", timeout=900)
    rows = wait_for(lambda: workers_done(stack, 1), 300, "the smoke worker to see its budget done")
    assert rows[0]["ExitCode"] == 0
    assert "is ready" in stack.logs("create-study")
    assert "duplicate key" not in stack.logs("postgres")
    after = {name: len(stack.trials(name)) for name in before}
    assert after["smoke"] == before["smoke"] == load_spec("smoke").n_trials
    assert after[LONG_STUDY] >= before[LONG_STUDY]


def test_down_v_removes_containers_and_volumes(stack):
    assert stack.project_objects("volume"), "the stack has its volumes before"
    stack.make("down", "ARGS=-v", timeout=300)
    assert not stack.project_objects("container")
    assert not stack.project_objects("volume")


def _unused_port() -> int:
    """A port nothing listens on now. Docker publishes it itself, so the test cannot hold
    it open meanwhile; a clash would fail the stack's start loudly, not pass silently."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
