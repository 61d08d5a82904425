"""docker-compose.yml, the Dockerfile and the make targets, without a Docker engine.

The structure tests parse the compose file as Compose would (anchors, merge
keys, ``${VAR}`` interpolation from ``.env.example``). The last tests take the
command lines and environments the ``create-study``, ``worker`` and
``dashboard`` services run and run them as local processes against a fresh
database on the real PostgreSQL: the same ``tuner`` subcommands, the same study,
the same settings, only the database host is this machine's.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from compose_support import (
    COMPOSE_FILE,
    CPU_FILE,
    ENV_EXAMPLE,
    MissingVariable,
    environment,
    interpolate,
    load,
    merge,
    read_env_file,
)
from fault_support import load_trials, wait_for
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from support import REPO_ROOT, wait_for_line

from tuner.cli import build_parser
from tuner.spec import load_spec
from tuner.storage import worker_connections
from tuner.worker import budget_used

TUNER_SERVICES = ("create-study", "worker", "dashboard")
DUMMY_PASSWORD = "example-password-for-tests"


def example_env(**overrides: str) -> dict[str, str]:
    env = read_env_file()
    env.update({"POSTGRES_PASSWORD": DUMMY_PASSWORD}, **overrides)
    return env


@pytest.fixture(scope="module")
def raw() -> dict:
    return load()


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    return interpolate(raw, example_env())


def subcommands() -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)


# --- structure -----------------------------------------------------------------------


def test_services_and_start_order(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "create-study", "worker", "dashboard"}

    pg = services["postgres"]
    image, _, tag = pg["image"].partition(":")
    assert image == "postgres" and tag.split(".")[0].isdigit() and int(tag.split(".")[0]) >= 16
    check = pg["healthcheck"]
    assert "pg_isready" in " ".join(check["test"])
    assert check["interval"] and check["retries"] >= 3
    (volume,) = pg["volumes"]
    name, _, target = volume.partition(":")
    assert name in compose["volumes"], "the database lives in a named volume"
    assert target.startswith("/var/lib/postgresql")

    create = services["create-study"]
    assert create["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert create["restart"] == "no", "create-study is a one-shot"
    for name in ("worker", "dashboard"):
        assert services[name]["depends_on"]["create-study"] == {
            "condition": "service_completed_successfully"
        }


def test_worker_is_scalable_and_gets_the_gpus(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert worker["init"] is True, "signals reach the worker through a real PID 1"
    assert worker["stop_grace_period"]
    assert worker["restart"].startswith("on-failure")
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == "all"
    assert "gpu" in device["capabilities"]
    env = environment(worker)
    assert env["KALAHA_DEVICE"] == "auto" and env["KALAHA_TORCH_THREADS"] == "1"
    assert env["OMP_NUM_THREADS"] == env["KALAHA_TORCH_THREADS"]


def test_cpu_only_hosts_drop_the_gpu_reservation(raw):
    cpu = load(CPU_FILE)
    merged = interpolate(merge(raw, cpu), example_env(TORCH_VARIANT="cpu"))
    worker = merged["services"]["worker"]
    assert worker["deploy"]["resources"]["reservations"]["devices"] == []
    assert environment(worker)["KALAHA_DEVICE"] == "cpu"
    assert worker["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert environment(worker)["OPTUNA_STORAGE"], "the rest of the worker is kept"
    example = ENV_EXAMPLE.read_text()
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml" in example
    assert "docker-compose.cpu.yml" in (REPO_ROOT / "README.md").read_text()


def test_shared_settings_come_from_one_yaml_anchor(raw, compose):
    text = COMPOSE_FILE.read_text()
    assert re.search(r"^x-tuner: &tuner$", text, re.M)
    for name in TUNER_SERVICES:
        block = text.split(f"\n  {name}:\n", 1)[1]
        assert block.lstrip().startswith("<<: *tuner"), name
    services = compose["services"]
    storages = {environment(services[n])["OPTUNA_STORAGE"] for n in TUNER_SERVICES}
    assert len(storages) == 1, "one storage for every tuner service"
    assert len({services[n]["image"] for n in TUNER_SERVICES}) == 1
    assert all(services[n]["volumes"] == ["runs:/app/runs"] for n in TUNER_SERVICES)
    assert "runs" in compose["volumes"]


def test_no_secret_is_committed(raw):
    text = COMPOSE_FILE.read_text()
    # Every credential comes from the environment; the password is required.
    assert not re.search(r"://[^:/@\s]+:(?!\$\{)[^@\s]+@", text), "a literal password in a URL"
    pg_env = environment(raw["services"]["postgres"])
    assert pg_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw, read_env_file())  # .env.example leaves it empty
    assert read_env_file()["POSTGRES_PASSWORD"] == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO_ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert tracked.stdout.strip() == ""
    assert ".env" in (REPO_ROOT / ".dockerignore").read_text().split()


def test_published_ports_are_bound_to_localhost(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "ports" not in compose["services"]["create-study"]


def test_every_command_names_a_cli_subcommand_and_a_study(compose):
    known = subcommands()
    parser = build_parser()
    for name in TUNER_SERVICES:
        command = compose["services"][name]["command"]
        assert command[0] in known, (name, command)
        args = parser.parse_args(command)  # exits (fails the test) on an unknown option
        if hasattr(args, "study"):
            spec = load_spec(args.study)  # studies/$STUDY.yaml exists and validates
            assert spec.study_name == read_env_file()["STUDY"]
    assert compose["services"]["worker"]["command"][:1] == ["tune"]
    assert compose["services"]["create-study"]["command"][:1] == ["create"]


def test_dockerfile(compose):
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim AS base$", text, re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cuda$", text, re.M), "CUDA torch by default"
    assert "download.pytorch.org/whl/cpu" in text, "a CPU-only build argument"
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image runs as a non-root user"
    assert re.search(r"^COPY studies/ studies/$", text, re.M)
    # The dependency layer sees pyproject.toml only: editing code does not reinstall.
    deps = text.split("FROM base AS deps", 1)[1].split("FROM base AS runtime", 1)[0]
    assert re.findall(r"^COPY (\S+)", deps, re.M) == ["pyproject.toml"]
    assert '"python", "-m", "tuner"' in text
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "runs", ".git"} <= set(ignore)
    assert compose["services"]["worker"]["build"]["context"] == "."


@pytest.mark.parametrize(
    "target, expected",
    [
        ("up WORKERS=3", "docker compose up -d --build --scale worker=3"),
        ("scale WORKERS=5", "docker compose up -d --no-recreate --scale worker=5 worker"),
        ("down", "docker compose down"),
        ("logs", "docker compose logs -f"),
    ],
)
def test_make_targets(target, expected):
    result = subprocess.run(
        ["make", "-n", *shlex.split(target)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout, result.stdout


# --- the services' command lines, run here --------------------------------------------


def service_run(compose_doc: dict, name: str, runs: Path) -> tuple[list[str], dict[str, str]]:
    """The service's argv (its command after the image's ``python -m tuner``) and env."""
    import os

    service = compose_doc["services"][name]
    env = dict(os.environ)
    env.update(environment(service))
    env["KALAHA_RUNS"] = str(runs)  # /app/runs in the container
    env["PYTHONUNBUFFERED"] = "1"
    return [sys.executable, "-m", "tuner", *service["command"]], env


@pytest.mark.postgres
def test_services_command_lines_run_a_study_on_postgres(runs, pg_url):
    """create-study once, then two workers (``--scale worker=2``), then the dashboard."""
    u = make_url(pg_url)
    compose_doc = interpolate(
        load(),
        example_env(
            POSTGRES_USER=u.username or "postgres",
            POSTGRES_PASSWORD=u.password or DUMMY_PASSWORD,  # trust auth ignores it
            DB_HOST=u.host or "127.0.0.1",
            DB_PORT=str(u.port or 5432),
            POSTGRES_DB=u.database,
        ),
    )
    argv, env = service_run(compose_doc, "create-study", runs)
    assert make_url(env["OPTUNA_STORAGE"]).database == u.database
    created = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    assert "is ready" in created.stdout
    study = read_env_file()["STUDY"]
    spec = load_spec(study)

    argv, env = service_run(compose_doc, "worker", runs)
    workers = [
        subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    peak: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 300
        while any(p.poll() is None for p in workers) and time.monotonic() < deadline:
            for app, n in worker_connections(pg_url).items():
                peak[app] = max(peak.get(app, 0), n)
            time.sleep(0.3)
        outputs = [p.communicate(timeout=60) for p in workers]
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.communicate()
    # The service's own --device auto: the CPU here, a GPU on a GPU host.
    device = "device cuda:" if torch.cuda.is_available() else "device cpu"
    for p, (out, err) in zip(workers, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err and device in out, out
    trials = load_trials(pg_url, spec.study_name)
    assert budget_used(trials) == spec.n_trials == len(trials)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2, "both workers ran trials"
    # Each worker stays within its pool: pool size plus as many overflow connections.
    pool = int(environment(compose_doc["services"]["worker"])["KALAHA_POOL_SIZE"])
    worker_apps = [a for a in peak if any(a.endswith(f":{p.pid}") for p in workers)]
    assert len(worker_apps) == 2, peak
    assert all(1 <= peak[a] <= 2 * pool for a in worker_apps), peak

    # The dashboard's command on port 0: it binds a free port itself and prints its URL
    # (8080 may be taken on a test machine).
    argv, env = service_run(compose_doc, "dashboard", runs)
    argv[argv.index("--port") + 1] = "0"
    dash = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        port = int(wait_for_line(dash, r"Open http://[\d.]+:(\d+)/", 60).group(1))

        def studies() -> list | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                return json.load(r)["study_summaries"]

        listed = wait_for(studies, 60, "the dashboard to answer")
        assert [s["study_name"] for s in listed] == [spec.study_name]
    finally:
        dash.terminate()
        dash.wait(timeout=30)  # its stdout belongs to wait_for_line's reader
        dash.stderr.close()
