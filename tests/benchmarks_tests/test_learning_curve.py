"""`make learning-curve`: a model's checkpoints found in step order, each rated and scored
against perfect play, and the figure and numbers written (a tiny untrained net: the
numbers are not checked, only that each checkpoint was measured from its own file)."""

from __future__ import annotations

import json

from sb3_contrib import MaskablePPO
from support import run_module

from benchmarks.learning_curve import checkpoints
from env.kalaha_env import KalahaEnv
from env.policy_files import save_model


def test_checkpoints_are_found_in_step_order_with_the_final_model_last(tmp_path):
    for name in ("agent_1000000_steps.zip", "agent_200000_steps.zip", "agent.zip",
                 "other_5_steps.zip", "agent_x_steps.zip"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    found = checkpoints(tmp_path / "agent.zip")
    assert [(s, p.name) for s, p in found] == [
        (200000, "agent_200000_steps.zip"), (1000000, "agent_1000000_steps.zip"),
        (None, "agent.zip"),
    ]  # fmt: skip
    assert checkpoints(tmp_path / "missing.zip") == []


def test_learning_curve_measures_every_checkpoint_and_writes_the_figure(tmp_path):
    for seed, name in ((0, "agent_64_steps.zip"), (1, "agent.zip")):
        model = MaskablePPO("MlpPolicy", KalahaEnv(), n_steps=64, batch_size=64, seed=seed,
                            policy_kwargs={"net_arch": [16, 16]}, device="cpu")  # fmt: skip
        save_model(model, tmp_path / name)
    done = run_module("benchmarks.learning_curve", str(tmp_path / "agent.zip"), "--games", "20",
                      "--final-steps", "128")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "learning_curve.json").read_text())
    assert [(r["steps"], r["model"]) for r in rows] == [
        (64, "agent_64_steps.zip"),
        (128, "agent.zip"),
    ]
    for r in rows:
        assert r["low"] <= r["rating"] <= r["high"] and r["games"] == 20
        assert r["perfect"]["positions"] == 5010
    assert rows[0]["perfect"] != rows[1]["perfect"], "two different nets scored the same"
    assert (tmp_path / "learning_curve.png").stat().st_size > 10_000
    missing = run_module("benchmarks.learning_curve", str(tmp_path / "none.zip"))
    assert (
        missing.returncode == 2
        and "expected" in missing.stderr
        and "Traceback" not in missing.stderr
    )
