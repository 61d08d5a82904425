"""Fixtures of the tuner's tests: the one tiny study that trial-running tests start from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import REPO_ROOT

TinySpec = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def tiny_spec() -> TinySpec:
    """``tiny_spec(**overrides)``: the smoke study with 20 evaluation games, as a dict.

    Small enough that a worker runs several trials in seconds (a few thousand steps
    of a tiny net each); read from studies/smoke.yaml so that it follows the shipped
    file instead of drifting from a copy. ``overrides`` replace top-level keys; each
    call returns a fresh dict, so tests change it freely. Session-scoped (the
    function holds no state) so that module-scoped fixtures can use it too.
    """
    import yaml  # here, not at the top: `make compat-latest` loads this file in a bare venv

    text = (REPO_ROOT / "studies" / "smoke.yaml").read_text()

    def make(**overrides: Any) -> dict[str, Any]:
        data = yaml.safe_load(text)
        data["evaluation"]["games"] = 20
        data.update(overrides)
        return data

    return make
