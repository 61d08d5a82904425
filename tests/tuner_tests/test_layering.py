"""Where things live: the imports the layout promises, checked where a test can see them.

The contracts between packages and layers are import-linter's (``make lint``); what
is checked here is what a contract cannot say: which third-party stacks an import
pulls in at run time, and where the tests' own helpers must sit to be importable.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO_ROOT, cli_env

HEAVY = ("torch", "sb3_contrib", "stable_baselines3", "optuna", "tuner.config.study")
# What a command that only reads a study must not load: the training stack and the game's
# compiled rules (each costs seconds of CPU at start-up).
TRAINING_STACK = ("torch", "sb3_contrib", "stable_baselines3", "numba")


def test_reading_a_study_spec_imports_no_training_stack():
    """``import tuner.config.spec`` is cheap: the models are a leaf (no env, numba, torch or
    optuna); MaskablePPO's signature is read by tuner.config.checks when a file is loaded,
    the sampler and pruner are built then too, and the study module is not needed to
    read a spec (spec and study import each other no more)."""
    heavy = (*HEAVY, "numba", "env", "yaml")
    code = f"import sys, tuner.config.spec; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.fixture
def created_study(runs: Path) -> Path:
    """``tuner create smoke`` in a fresh runs folder, and two finished trials to report on."""
    import optuna

    from tuner.config.loading import load_spec
    from tuner.config.study import create_study
    from tuner.storage.rdb import make_storage

    runs.mkdir(parents=True, exist_ok=True)
    study = create_study(load_spec("smoke"), make_storage(f"sqlite:///{runs / 'optuna.db'}"))
    gamma = optuna.distributions.FloatDistribution(0.9, 0.999)
    for i, value in enumerate((0.4, 0.6)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"gamma": 0.9 + 0.05 * i},
                distributions={"gamma": gamma},
                value=value,
                intermediate_values={1024: value / 2, 3072: value},
            )
        )
    return runs


@pytest.mark.parametrize("command", ["status", "report"])
def test_status_and_report_load_no_training_stack(created_study, command):
    """``tuner status NAME`` and ``tuner report NAME`` read a study: its name is one key of
    the study file, its recorded spec goes through the models alone, and the report's
    figures need Optuna's plots, not the training stack (they once cost 4 to 7 s of CPU
    per call, most of it importing torch, sb3-contrib and numba)."""
    code = (
        "import sys; from tuner.cli import main; code = main(sys.argv[1:]); "
        f"print('LOADED', [m for m in {TRAINING_STACK!r} if m in sys.modules]); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, command, "smoke"],
        cwd=REPO_ROOT,
        env=cli_env(created_study),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED []", done.stdout


def test_validating_ppo_keys_reads_maskableppo_then():
    """The lazy signature still catches a misspelt PPO key, with the usual one-line error."""
    from tuner.base.errors import UserError
    from tuner.config.loading import load_spec, parse_spec

    data = load_spec("smoke").model_dump(mode="json")
    data["ppo"]["lerning_rate"] = 0.1
    with pytest.raises(UserError, match=r"ppo\.lerning_rate: unknown setting"):
        parse_spec(data, "typo")


def test_the_report_and_its_verification_section_import_no_training_stack():
    """``tuner report`` draws from the storage alone: its verification section once reached
    torch and SB3 through the verify job queue (report -> verify -> objective)."""
    modules = "tuner.commands.report, tuner.commands.verify.report_section"
    code = f"import sys, {modules}; print([m for m in {HEAVY[:3]!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_test_helpers_sit_beside_support_py():
    """Test folders are packages (module names repeat across them: env_tests/test_league.py,
    strength_tests/test_league.py), so only tests/ itself is on the import path: a helper
    put in a test folder is not found by ``from my_support import ...``. Helpers go beside
    tests/support.py; a test folder holds tests, conftest.py and __init__.py only."""
    tests = REPO_ROOT / "tests"
    misplaced = [
        str(path.relative_to(tests))
        for path in sorted(tests.glob("*/**/*.py"))
        if not path.name.startswith("test_") and path.name not in ("conftest.py", "__init__.py")
    ]
    assert misplaced == [], f"move these helpers to tests/: {misplaced}"
