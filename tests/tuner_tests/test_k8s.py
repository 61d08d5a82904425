"""deploy/k8s/: the Kubernetes manifests, checked offline (there is no cluster here).

The overlays are rendered as kustomize does (``k8s_support``; compared with the real
``kubectl kustomize`` where one is installed), every object is validated against the
Kubernetes OpenAPI schemas of the oldest and the newest version supported
(``kubernetes-validate``, strict: an unknown field is an error), and the commands the
containers run are parsed by the CLI's own parser, with the environment the kubelet
would give them read by the tuner's own settings. The create-study Job's command line
then runs for real against PostgreSQL. What is not checked here: scheduling, volumes,
GPUs and images on a real cluster (README, "Running a study on Kubernetes").
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml
from compose_support import environment, interpolate, load, read_env_file
from k8s_support import (
    K8S_DIR,
    OVERLAYS,
    UnsupportedKustomization,
    container_env,
    containers,
    expand,
    find,
    pod_spec,
    render,
)
from support import REPO_ROOT

from tuner.base.settings import Settings
from tuner.cli import build_parser
from tuner.config.loading import load_spec

# Elastic Indexed Jobs (parallelism and completions changed together) need 1.27.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
SECRETS = {
    "kalaha-tuner-storage": {"url": "postgresql+psycopg2://tuner:pw@kalaha-postgres:5432/optuna"},
    "kalaha-postgres": {"POSTGRES_PASSWORD": "pw"},
}
TUNER_IMAGE = "kalaha-tuner"


def tuner_containers(docs: list[dict]) -> list[dict]:
    return [c for c in containers(docs) if c["image"].partition(":")[0] == TUNER_IMAGE]


def workload(docs: list[dict], component: str) -> dict:
    (doc,) = [
        d
        for d in docs
        if pod_spec(d) and d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return doc


def tuner_argv(docs: list[dict], component: str) -> tuple[list[str], dict[str, str]]:
    """The ``tuner`` arguments and environment of a component's container, as run."""
    (container,) = pod_spec(workload(docs, component))["containers"]
    env = container_env(docs, container, SECRETS)
    return [expand(a, env) for a in container["args"]], env


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render(K8S_DIR / "overlays" / request.param)


# --- the manifests are valid Kubernetes objects ----------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("folder", ["overlays/cpu", "overlays/gpu", "base"])
def test_every_object_validates_against_the_kubernetes_schemas(folder, version):
    docs = render(K8S_DIR / folder)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path)
            pytest.fail(
                f"{folder}: {doc['kind']} {doc['metadata']['name']}: {where}: {err.message}"
            )


def test_a_misspelt_field_fails_the_validation(overlay):
    """The check above can fail: strict validation rejects an unknown field."""
    _, docs = overlay
    job = dict(find(docs, "Job", "kalaha-worker"))
    job["spec"] = dict(job["spec"], paralelism=2)
    with pytest.raises(kubernetes_validate.ValidationError, match="paralelism"):
        kubernetes_validate.validate(job, K8S_VERSIONS[-1], strict=True)


def test_the_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(UnsupportedKustomization, match="namePrefix"):
        render(tmp_path)


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(_kustomize_command() is None, reason="neither kustomize nor kubectl installed")
@pytest.mark.parametrize("folder", ["overlays/cpu", "overlays/gpu", "base"])
def test_the_renderer_agrees_with_kustomize(folder):
    command = _kustomize_command()
    result = subprocess.run(
        [*command, str(K8S_DIR / folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr

    def by_name(docs: list[dict]) -> dict:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert by_name(yaml.safe_load_all(result.stdout)) == by_name(render(K8S_DIR / folder))


# --- the commands are the CLI's ---------------------------------------------------------


def test_every_tuner_command_parses_with_the_cli_and_names_a_study(overlay):
    _, docs = overlay
    parser = build_parser()
    study = find(docs, "ConfigMap", "kalaha-tuner-settings")["data"]["STUDY"]
    for component, command in [("create-study", "create"), ("worker", "tune")]:
        argv, env = tuner_argv(docs, component)
        assert argv == [command, study], argv
        args = parser.parse_args(argv)  # exits (fails the test) on an unknown option
        assert args.func.__name__ == f"cmd_{command}"
        assert load_spec(args.study).study_name == study
        settings = Settings.from_env(env)  # every variable is one the tuner accepts
        assert settings.storage_url == SECRETS["kalaha-tuner-storage"]["url"]
    argv, env = tuner_argv(docs, "dashboard")
    args = parser.parse_args(argv)
    assert args.func.__name__ == "cmd_dashboard"
    assert args.host == "0.0.0.0"
    (port,) = pod_spec(workload(docs, "dashboard"))["containers"][0]["ports"]
    assert args.port == port["containerPort"]


def test_the_image_runs_tuner_so_args_are_tuner_arguments():
    """The containers set ``args``, never ``command``: the image's entrypoint is the CLI."""
    assert 'ENTRYPOINT ["python", "-m", "tuner"]' in (REPO_ROOT / "Dockerfile").read_text()
    for name in OVERLAYS:
        for container in tuner_containers(render(K8S_DIR / "overlays" / name)):
            assert "command" not in container and container["args"], container["name"]


def test_settings_are_the_compose_defaults():
    """Same image tags and worker settings as docker-compose.yml with .env.example."""
    compose = interpolate(load(), {**read_env_file(), "POSTGRES_PASSWORD": "pw"})
    compose_env = environment(compose["services"]["worker"])
    settings = find(render(K8S_DIR / "base"), "ConfigMap", "kalaha-tuner-settings")["data"]
    shared = {k for k in settings if k.startswith("KALAHA_") and k in compose_env}
    shared -= {"KALAHA_RUNS", "KALAHA_DEVICE"}  # a path in each; the device per overlay
    assert len(shared) >= 7, shared
    assert {k: settings[k] for k in shared} == {k: compose_env[k] for k in shared}
    assert settings["KALAHA_RUNS"] == compose_env["KALAHA_RUNS"] == "/app/runs"
    assert settings["STUDY"] == read_env_file()["STUDY"]
    for name, variant in [("cpu", "cpu"), ("gpu", "cuda")]:
        tags = {c["image"] for c in tuner_containers(render(K8S_DIR / "overlays" / name))}
        assert tags == {f"kalaha-tuner:{variant}"}, tags
    assert compose["services"]["worker"]["image"] == "kalaha-tuner:cuda"


@pytest.mark.postgres
def test_the_create_study_job_runs_twice_on_postgres(pg_url, tmp_path):
    """The Job's command and environment, run as a process: creates, then only loads."""
    docs = render(K8S_DIR / "overlays" / "cpu")
    (container,) = pod_spec(find(docs, "Job", "kalaha-create-study"))["containers"]
    secrets = dict(SECRETS, **{"kalaha-tuner-storage": {"url": pg_url}})
    env = container_env(docs, container, secrets)
    env.update(KALAHA_RUNS=str(tmp_path / "runs"), PYTHONPATH=str(REPO_ROOT))
    argv = [sys.executable, "-m", "tuner", *(expand(a, env) for a in container["args"])]
    for _ in range(2):  # a Job retried, or applied again: the study exists by then
        run = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert f"study {env['STUDY']!r} is ready" in run.stdout
    import optuna

    (summary,) = optuna.get_all_study_summaries(pg_url)
    assert (summary.study_name, summary.n_trials) == (env["STUDY"], 0)


# --- what the cluster gets ---------------------------------------------------------------


def test_the_storage_url_and_passwords_come_from_secrets_only(overlay):
    _, docs = overlay
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret is committed"
    for container in containers(docs):
        for var in container.get("env", []):
            if var["name"] in ("OPTUNA_STORAGE", "POSTGRES_PASSWORD"):
                assert "secretKeyRef" in var["valueFrom"], (container["name"], var)
    for data in [d["data"] for d in docs if d["kind"] == "ConfigMap"]:
        assert not any("postgresql" in str(v) or "PASSWORD" in k for k, v in data.items())


def test_workers_are_an_indexed_job_whose_index_seeds_the_sampler(overlay):
    _, docs = overlay
    job = find(docs, "Job", "kalaha-worker")["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["parallelism"] == job["completions"] >= 2
    (container,) = job["template"]["spec"]["containers"]
    env = container_env(docs, container, SECRETS, index=3)
    assert Settings.from_env(env).worker_index == 3
    assert job["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def test_gpus_are_requested_in_the_gpu_overlay_only(overlay):
    name, docs = overlay
    for component in ("worker", "create-study", "dashboard"):
        (container,) = pod_spec(workload(docs, component))["containers"]
        gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
        assert gpus == (1 if name == "gpu" and component == "worker" else None), component
    device = find(docs, "ConfigMap", "kalaha-tuner-settings")["data"]["KALAHA_DEVICE"]
    assert device == {"gpu": "cuda", "cpu": "cpu"}[name]


def test_services_select_their_pods_and_the_dashboard_stays_inside(overlay):
    _, docs = overlay
    for service in [d for d in docs if d["kind"] == "Service"]:
        assert service["spec"]["type"] == "ClusterIP"
        selector = service["spec"]["selector"].items()
        matched = [
            d for d in docs if pod_spec(d) and selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]  # fmt: skip
        assert len(matched) == 1, service["metadata"]["name"]
        names = {
            p.get("name") for c in pod_spec(matched[0])["containers"] for p in c.get("ports", [])
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    for doc in [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]:
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_volumes_and_claims_exist(overlay):
    _, docs = overlay
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for doc in [d for d in docs if pod_spec(d)]:
        spec = pod_spec(doc)
        templates = {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in templates, mount
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
    runs = find(docs, "ConfigMap", "kalaha-tuner-settings")["data"]["KALAHA_RUNS"]
    for component in ("worker", "dashboard"):
        (container,) = pod_spec(workload(docs, component))["containers"]
        assert runs in {m["mountPath"] for m in container["volumeMounts"]}, component


def test_without_the_postgres_component_nothing_runs_a_database():
    """An external PostgreSQL: base alone, the URL from the same Secret."""
    docs = render(K8S_DIR / "base")
    assert not [c for c in containers(docs) if c["image"].startswith("postgres")]
    argv, env = tuner_argv(docs, "worker")
    assert argv[0] == "tune" and env["OPTUNA_STORAGE"] == SECRETS["kalaha-tuner-storage"]["url"]


def test_the_postgres_component_matches_the_url_readme_gives():
    docs = render(K8S_DIR / "overlays" / "cpu")
    (container,) = pod_spec(find(docs, "StatefulSet", "kalaha-postgres"))["containers"]
    env = container_env(docs, container, SECRETS)
    port = find(docs, "Service", "kalaha-postgres")["spec"]["ports"][0]["port"]
    url = (
        f"postgresql+psycopg2://{env['POSTGRES_USER']}:{{}}@kalaha-postgres:{port}/"
        f"{env['POSTGRES_DB']}"
    )
    assert url.format("$PASSWORD") in (REPO_ROOT / "README.md").read_text()
    component = K8S_DIR / "components" / "postgres" / "kustomization.yaml"
    assert url.format("PASSWORD") in component.read_text()
