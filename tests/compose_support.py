"""Read docker-compose.yml as Docker Compose does: YAML (anchors, merge keys, ``!reset``)
plus ``${VAR}`` interpolation from the environment and ``.env``.

There is no Docker engine on the test machine, so the tests parse the file
themselves; the interpolation rules are Compose's:
``$$`` is a literal ``$``; ``${VAR}`` and ``$VAR``; ``${VAR:-default}`` (unset
or empty) and ``${VAR-default}`` (unset); ``${VAR:?message}`` and
``${VAR?message}`` fail; ``${VAR:+alt}`` and ``${VAR+alt}``.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import yaml
from support import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CPU_FILE = REPO_ROOT / "docker-compose.cpu.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"


class Reset:
    """Compose's ``!reset`` tag: the value replaces (not merges with) the base file's."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Reset({self.value!r})"


class ComposeLoader(yaml.SafeLoader):
    pass


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    if isinstance(node, yaml.SequenceNode):
        return Reset(loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Reset(loader.construct_mapping(node))
    return Reset(loader.construct_scalar(node) or None)


ComposeLoader.add_constructor("!reset", _reset)


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=ComposeLoader)


class MissingVariable(Exception):
    """``${VAR:?message}`` with VAR unset (or empty)."""


_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate_text(text: str, env: dict[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        if op is None:
            return value or ""
        empty_counts = op.startswith(":")
        is_set = value is not None and (value != "" or not empty_counts)
        kind = op[-1]
        if kind == "-":
            return value if is_set else arg
        if kind == "?":
            if not is_set:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return arg if is_set else ""  # "+"

    return _PATTERN.sub(replace, text)


def interpolate(doc: Any, env: dict[str, str]) -> Any:
    """Interpolate every string of a loaded document (keys stay as written)."""
    if isinstance(doc, str):
        return interpolate_text(doc, env)
    if isinstance(doc, list):
        return [interpolate(v, env) for v in doc]
    if isinstance(doc, dict):
        return {k: interpolate(v, env) for k, v in doc.items()}
    if isinstance(doc, Reset):
        return Reset(interpolate(doc.value, env))
    return doc


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines skipped, as Compose reads ``.env``."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        env[key.strip()] = value.strip().strip('"').strip("'")
    return env


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge, ``!reset`` replaces."""
    if isinstance(override, Reset):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = (
                merge(base.get(k), v) if k in base else (v.value if isinstance(v, Reset) else v)
            )
        return out
    return override


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (Compose accepts a list too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_project_name() -> str:
    """A compose project name of its own for one test run: two runs on one host (or one
    left behind by a killed run) never share a container, volume or network name."""
    return f"kalaha-tuner-test-{secrets.token_hex(4)}"
