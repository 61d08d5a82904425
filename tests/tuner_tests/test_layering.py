"""Where things live: the imports the layout promises, checked where a test can see them.

The contracts between packages and layers are import-linter's (``make lint``); what
is checked here is what a contract cannot say: which third-party stacks an import
pulls in at run time.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import REPO_ROOT

HEAVY = ("torch", "sb3_contrib", "stable_baselines3", "optuna", "tuner.config.study")


def test_reading_a_study_spec_imports_no_training_stack():
    """``import tuner.config.spec`` is cheap: MaskablePPO's signature is read when ppo keys are
    validated, the sampler and pruner are built then too, and the study module is not
    needed to read a spec (spec and study import each other no more)."""
    code = f"import sys, tuner.config.spec; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_validating_ppo_keys_reads_maskableppo_then():
    """The lazy signature still catches a misspelt PPO key, with the usual one-line error."""
    from tuner.base.errors import UserError
    from tuner.config.spec import load_spec, parse_spec

    data = load_spec("smoke").model_dump(mode="json")
    data["ppo"]["lerning_rate"] = 0.1
    with pytest.raises(UserError, match=r"ppo\.lerning_rate: unknown setting"):
        parse_spec(data, "typo")
