"""Build the Kubernetes manifests under deploy/k8s/ as ``kubectl kustomize`` does, offline.

The test machine has no cluster and may have no kustomize, so the tests render the
overlays themselves. Only the part of kustomize the manifests use is implemented, and
:func:`render` refuses any other key, so a manifest cannot quietly rely on a feature this
renderer would ignore:

- ``resources`` (files with one or more documents, or folders with a kustomization),
- ``components`` (``kind: Component``: its resources and patches join the including one),
- ``images`` (``newName`` / ``newTag`` for containers whose image is ``name``),
- ``patches`` with a ``path``: a strategic merge patch aimed by its own kind and name.

Strategic merge as Kubernetes does it for the fields used: mappings merge; the lists
below merge item by item on their key; every other list is replaced.

Where ``kubectl`` (or ``kustomize``) is installed, a test compares this renderer's output
with the real one, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from support import REPO_ROOT

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "components", "images", "patches"}
# Kubernetes' patchMergeKey of each list field the manifests patch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}

Doc = dict[str, Any]


class UnsupportedKustomization(Exception):
    """A kustomization uses a key this renderer does not implement."""


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(folder: Path) -> list[Doc]:
    """Every object that ``kubectl kustomize FOLDER`` would print, in kustomize's order."""
    docs: list[Doc] = []
    _build(folder, docs)
    return docs


def _build(folder: Path, docs: list[Doc]) -> None:
    """Add the objects of one kustomization (or component) to ``docs``, in place."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{folder}: {sorted(unknown)}")
    own: list[Doc] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            _build(path, own)
        else:
            own.extend(load_docs(path))
    for entry in spec.get("components", []):
        _build((folder / entry).resolve(), own)
    for patch in spec.get("patches", []):
        _apply_patch(own, load_docs(folder / patch["path"])[0])
    for image in spec.get("images", []):
        _set_image(own, image)
    docs.extend(own)


def _apply_patch(docs: list[Doc], patch: Doc) -> None:
    key = (patch["kind"], patch["metadata"]["name"])
    targets = [d for d in docs if (d["kind"], d["metadata"]["name"]) == key]
    assert len(targets) == 1, f"patch {key}: expected one target, but found {len(targets)}"
    merged = strategic_merge(targets[0], patch)
    targets[0].clear()
    targets[0].update(merged)


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """``patch`` merged into ``base`` (neither is changed)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            out[k] = strategic_merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        out = copy.deepcopy(base)
        for item in patch:
            at = [i for i, old in enumerate(out) if old.get(key) == item.get(key)]
            if at:
                out[at[0]] = strategic_merge(out[at[0]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _set_image(docs: list[Doc], image: Doc) -> None:
    for container in containers(docs):
        name, _, _ = container["image"].partition(":")
        if name == image["name"]:
            tag = image.get("newTag")
            new = image.get("newName", name)
            container["image"] = f"{new}:{tag}" if tag else new


def pod_spec(doc: Doc) -> Doc | None:
    """The pod template's spec of a workload (Job, Deployment, StatefulSet), else None."""
    template = doc.get("spec", {}).get("template")
    return template["spec"] if template else None


def containers(docs: list[Doc]) -> list[Doc]:
    out = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec:
            out.extend(spec.get("initContainers", []) + spec["containers"])
    return out


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` in a container's args: a defined variable is replaced, an
    undefined one is left as written, ``$$`` is a literal ``$``."""

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REFERENCE.sub(replace, text)


def container_env(
    docs: list[Doc], container: Doc, secrets: dict[str, dict[str, str]], index: int = 0
) -> dict[str, str]:
    """The environment the kubelet gives ``container``: ``envFrom`` ConfigMaps, then
    ``env`` (which wins), with Secrets from ``secrets`` and the Job's completion index."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        env.update(find(docs, "ConfigMap", ref)["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[var["name"]] = find(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            path = source["fieldRef"]["fieldPath"]
            assert "job-completion-index" in path, f"{var['name']}: unexpected {path}"
            env[var["name"]] = str(index)
    return env
