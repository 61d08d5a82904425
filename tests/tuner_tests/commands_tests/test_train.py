"""``tuner train``: what it shows while it trains, its checkpoints, and a stop that keeps
the model (Ctrl-C or SIGTERM), run as a user runs it: the CLI in a process of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sb3_contrib import MaskablePPO
from support import REPO_ROOT, cli_env, run_cli

from env.policy_files import load_policy

SHIPPED = REPO_ROOT / "studies" / "best" / "selfplay.yaml"


def tiny_export(tmp_path: Path, total: int = 2048, evaluations: int = 2) -> Path:
    """The shipped export shrunk to seconds: a small net, 4 envs, a few games."""
    doc = yaml.safe_load(SHIPPED.read_text())
    doc["ppo_kwargs"].update(n_steps=64, batch_size=64, n_epochs=1)
    doc["ppo_kwargs"]["policy_kwargs"] = {"net_arch": [16]}
    doc["env_kwargs"]["opponents"] = ["random"]
    doc["budget"].update(total_timesteps=total, n_evaluations=evaluations, n_envs=4)
    doc["evaluation"].update(opponents=["random"], games=4)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.slow
def test_train_prints_each_evaluation_and_saves_checkpoints(runs, tmp_path):
    export = tiny_export(tmp_path, total=1024, evaluations=2)
    out = tmp_path / "agent.zip"
    result = run_cli("train", str(export), "--out", str(out), "--save-every", "512", runs_path=runs)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("training the export of study 'selfplay' (trial 1): 1024 ")
    assert "a checkpoint every 512" in lines[0]
    evaluations = [line for line in lines if line.startswith("step ")]
    # n_evaluations 2: half way, and the final one once the budget is spent.
    assert [e.split()[1] for e in evaluations] == ["512/1024", "1024/1024"], lines
    assert all("score" in e and "steps/s" in e for e in evaluations)
    checkpoints = [tmp_path / "agent_512_steps.zip", tmp_path / "agent_1024_steps.zip"]
    for path in checkpoints:
        assert f": {path}" in result.stdout, result.stdout
        load_policy(path)  # saved as the tuner saves a model: no --trust-pickle needed
    assert MaskablePPO.load(checkpoints[0], device="cpu").num_timesteps == 512
    assert f"model saved to {out}" in result.stdout
    # TensorBoard: below the study's folder, which `make tensorboard STUDY=selfplay` shows.
    assert (runs / "tensorboard" / "selfplay" / "train_1").is_dir()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_training_and_saves_the_model(runs, tmp_path, sig, code):
    export = tiny_export(tmp_path, total=10_000_000, evaluations=1000)
    out = tmp_path / "agent.zip"
    log = tmp_path / "stdout.txt"
    with log.open("w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner", "train", str(export), "--out", str(out)],
            cwd=REPO_ROOT,
            env=cli_env(runs),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            while "step " not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    text = log.read_text()
    assert proc.returncode == code, text + err
    assert f"{sig.name} received: stopping after the current step" in err
    assert "Traceback" not in err
    (line,) = [x for x in text.splitlines() if x.startswith(f"{sig.name} received")]
    steps = int(line.split("stopped at step ")[1].split()[0])
    assert 0 < steps < 10_000_000 and line.endswith(f"model saved to {out}")
    assert MaskablePPO.load(out, device="cpu").num_timesteps == steps
