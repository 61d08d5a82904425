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
from tuner.config.spec import load_spec
from tuner.storage.rdb import worker_connections
from tuner.storage.record import StudyAttr, TrialAttr
from tuner.trial.lifecycle import budget_used

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
    # No "# syntax=" line: it makes every build fetch a frontend image from Docker Hub.
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS base$", text, re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cuda$", text, re.M), "CUDA torch by default"
    for arg in ("PIP_INDEX_URL=https://pypi.org/simple", "TORCH_INDEX_URL=", "WHEELHOUSE="):
        assert re.search(rf"^ARG {re.escape(arg)}$", text, re.M), arg
    assert "https://" not in "".join(re.findall(r"^RUN.*(?:\n\s+.*)*", text, re.M)), (
        "no index URL hard-coded in a RUN: it is a build argument"
    )
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image runs as a non-root user"
    assert re.search(r"^COPY studies/ studies/$", text, re.M)
    # The dependency layer sees pyproject.toml only: editing code does not reinstall.
    deps = text.split("FROM base AS deps", 1)[1].split("FROM base AS runtime", 1)[0]
    assert re.findall(r"^COPY (\S+)", deps, re.M) == ["pyproject.toml"]
    # The wheelhouse is mounted, never copied into a layer; the folder is in every checkout.
    assert deps.count("--mount=type=bind,source=wheelhouse,target=/wheelhouse") == 2
    assert (REPO_ROOT / "wheelhouse" / "README.md").is_file()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "wheelhouse/cpu/torch.whl"], cwd=REPO_ROOT
    )
    assert ignored.returncode == 0, "downloaded wheels are git-ignored"
    assert '"python", "-m", "tuner"' in text
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "runs", ".git"} <= set(ignore)
    assert not {"wheelhouse", "docker"} & set(ignore), "the build mounts both folders"
    assert compose["services"]["worker"]["build"]["context"] == "."


def test_the_image_is_built_once_and_shared(compose):
    """Only the worker builds; create-study and the dashboard use its image by tag."""
    services = compose["services"]
    assert [n for n, s in services.items() if "build" in s] == ["worker"]
    assert len({services[n]["image"] for n in TUNER_SERVICES}) == 1


def test_images_and_package_indexes_are_settings(raw):
    mirror = example_env(
        PYTHON_IMAGE="mirror.example/library/python:3.11-slim",
        POSTGRES_IMAGE="mirror.example/library/postgres:18",
        PIP_INDEX_URL="https://pypi.mirror.example/simple",
        TORCH_INDEX_URL="https://torch.mirror.example/cpu",
        WHEELHOUSE="1",
    )
    services = interpolate(raw, mirror)["services"]
    args = services["worker"]["build"]["args"]
    for key in ("PYTHON_IMAGE", "PIP_INDEX_URL", "TORCH_INDEX_URL", "WHEELHOUSE"):
        assert args[key] == mirror[key], key
    assert services["postgres"]["image"] == mirror["POSTGRES_IMAGE"]
    defaults = interpolate(raw, example_env())["services"]
    assert defaults["postgres"]["image"] == "postgres:18"
    assert defaults["worker"]["build"]["args"]["PYTHON_IMAGE"] == "python:3.11-slim"
    assert defaults["worker"]["build"]["args"]["WHEELHOUSE"] == ""


def test_the_default_port_leaves_a_host_postgresql_alone(raw):
    """5432 is the host's PostgreSQL (here, and on most machines that have one)."""
    env = read_env_file()
    assert env["POSTGRES_PORT"] != "5432"
    unset = {k: v for k, v in example_env().items() if k != "POSTGRES_PORT"}
    (port,) = interpolate(raw, unset)["services"]["postgres"]["ports"]
    assert port == f"127.0.0.1:{env['POSTGRES_PORT']}:5432", "the file's default is .env.example's"
    readme = (REPO_ROOT / "README.md").read_text()
    assert "@127.0.0.1:5432" not in readme, "the README's example follows POSTGRES_PORT"


def test_compose_url_follows_the_settings(tmp_path):
    settings = tmp_path / "stack.env"
    settings.write_text("POSTGRES_PASSWORD=abc123\nPOSTGRES_PORT=25432\nPOSTGRES_DB=studies\n")
    result = subprocess.run(
        ["make", "-s", "compose-url", f"ENV_FILE={settings}"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgresql+psycopg2://tuner:abc123@127.0.0.1:25432/studies"


@pytest.mark.parametrize(
    "target, expected",
    [
        ("up WORKERS=3", "docker compose --env-file .env up -d --build --scale worker=3"),
        # --no-deps: scaling never reruns create-study
        ("scale WORKERS=5", "up -d --no-deps --no-recreate --scale worker=5 worker"),
        ("down", "docker compose --env-file .env down"),
        ("down ARGS=-v", "docker compose --env-file .env down -v"),
        ("logs", "docker compose --env-file .env logs -f"),
    ],
)
def test_make_targets(target, expected):
    result = subprocess.run(
        ["make", "-n", *shlex.split(target)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout, result.stdout


# --- what `make up` checks first, and the image build's pip step, without Docker ----------


def fake_docker(tmp_path: Path, engine: str | None, compose: str | None) -> dict[str, str]:
    """A ``docker`` command that reports these versions (None: that part fails)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then '
        + (f"echo {engine}; exit 0; fi\n" if engine else "echo 'Cannot connect' >&2; exit 1; fi\n")
        + 'if [ "$1" = compose ]; then '
        + (
            f"echo {compose}; exit 0; fi\n"
            if compose
            else 'echo "unknown command" >&2; exit 1; fi\n'
        )
        + "exit 1\n"
    )
    script.chmod(0o755)
    import os

    env = {k: v for k, v in os.environ.items() if k != "DOCKER_BUILDKIT"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


@pytest.mark.parametrize(
    "engine, compose, extra, expected",
    [
        ("20.10.24+dfsg1", "2.26.1-4", {}, None),
        ("28.2.2", "v2.24.0", {}, None),
        (None, "2.26.1", {}, "expected a running Docker daemon"),
        ("19.03.15", "2.26.1", {}, "expected Docker Engine 20.10 or newer"),
        ("20.10.24", None, {}, "expected Docker Compose v2"),
        ("20.10.24", "1.29.2", {}, "expected Docker Compose 2.24 or newer"),
        ("20.10.24", "2.20.3", {}, "expected Docker Compose 2.24 or newer"),
        (
            "24.0.7",
            "2.26.1",
            {"DOCKER_BUILDKIT": "0"},
            "DOCKER_BUILDKIT=0 selects the legacy builder",
        ),
    ],
)
def test_up_checks_the_docker_versions_first(tmp_path, engine, compose, extra, expected):
    env = fake_docker(tmp_path, engine, compose) | extra
    (tmp_path / "stack.env").write_text("POSTGRES_PASSWORD=abc\n")
    result = subprocess.run(
        ["make", "-s", "up", f"ENV_FILE={tmp_path / 'stack.env'}", "COMPOSE=docker compose"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if expected is None:  # the check passes; the fake then fails `compose up` itself
        assert "error:" not in result.stderr, result.stderr
        return
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if not x.startswith("make")]
    assert line.startswith("error: ") and expected in line, line
    assert "Traceback" not in result.stderr


def test_up_without_a_settings_file_says_how_to_make_one(tmp_path):
    result = subprocess.run(
        ["make", "-s", "up", f"ENV_FILE={tmp_path / 'missing.env'}"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cp .env.example .env" in result.stderr


def pip_install(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    base = {"PATH": os.environ["PATH"], "TORCH_VERSION": "2.13.0", "WHEELHOUSE_ROOT": str(tmp_path)}
    base |= {"PIP_INDEX_URL": "https://pypi.org/simple"}
    return subprocess.run(
        ["sh", "docker/pip-install.sh", *args],
        cwd=REPO_ROOT, env=base | env, capture_output=True, text=True,
    )  # fmt: skip


def test_image_build_rejects_a_bad_variant_and_an_empty_wheelhouse(tmp_path):
    bad = pip_install(tmp_path, "torch", TORCH_VARIANT="rocm")
    assert bad.returncode == 2
    assert "TORCH_VARIANT: expected cuda or cpu, but got 'rocm'" in bad.stderr
    (tmp_path / "cpu").mkdir()
    empty = pip_install(tmp_path, "torch", TORCH_VARIANT="cpu", WHEELHOUSE="1")
    assert empty.returncode == 2
    assert "expected wheels in wheelhouse/cpu/" in empty.stderr
    assert "make wheelhouse TORCH_VARIANT=cpu" in empty.stderr


def test_image_and_wheelhouse_read_the_dependencies_from_pyproject():
    """One list, pyproject.toml's: a dependency added there reaches image and wheelhouse."""
    import tomllib

    out = subprocess.run(
        [sys.executable, "docker/requirements.py", "pyproject.toml"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    listed = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert out == [d.replace(" ", "") for d in listed]
    dry = subprocess.run(
        ["make", "-n", "wheelhouse", "TORCH_VARIANT=cpu"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert "docker/requirements.py pyproject.toml" in dry
    assert "--python-version 3.11" in dry and "--only-binary=:all:" in dry


@pytest.mark.postgres
def test_create_study_again_inserts_nothing(pg_url):
    """A rerun of create-study (each `up`) and each worker start only read the study.

    An INSERT that fails on the unique study name is what wrote `duplicate key value
    violates unique constraint` into PostgreSQL's log at every `up`.
    """
    from tuner.config.study import create_study, load_study, worker_seed
    from tuner.storage.rdb import make_storage

    spec = load_spec("smoke")
    storage = make_storage(pg_url)
    inserts: list[str] = []
    real = storage.create_new_study

    def counting(*args, **kwargs):
        inserts.append(spec.study_name)
        return real(*args, **kwargs)

    storage.create_new_study = counting  # type: ignore[method-assign]
    first = create_study(spec, storage)
    assert inserts == ["smoke"]
    again = create_study(spec, storage)
    load_study(spec, storage, worker_seed(spec, 0))
    assert inserts == ["smoke"], "an existing study is loaded, not inserted again"
    assert again._study_id == first._study_id
    assert again.user_attrs[StudyAttr.N_TRIALS] == spec.n_trials


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
    assert len({t.user_attrs[TrialAttr.WORKER] for t in trials}) == 2, "both workers ran trials"
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
