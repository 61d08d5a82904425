"""What a worker prints while it runs: a bar on a terminal, one line per finished trial always."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import optuna
from optuna.trial import create_trial
from support import REPO_ROOT, cli_env, run_cli

from tuner.trial.callbacks import Evaluation
from tuner.trial.progress import Reporter

SUMMARY = re.compile(
    r"^trial +(\d+)  (COMPLETE|PRUNED|FAIL) +value +(\S+) +(\d+) steps +[\d.]+s +\d+ steps/s  best (.+)$",
    re.M,
)


def _study_with_best(value: float) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=value))
    return study


def _run_trial(reporter: Reporter, total: int = 3072, prune_at: int | None = None) -> None:
    for t in range(4, total + 1, 4):
        reporter.on_step(t)
        if t % 1024 == 0:
            reporter.on_evaluation(Evaluation(t, 0.25 + t / 10240, {}, 0.01))
            if prune_at == t:
                return
        if t % 256 == 0:
            time.sleep(0.01)


def test_bar_shows_timesteps_score_and_speed() -> None:
    out, bar = io.StringIO(), io.StringIO()
    reporter = Reporter(3072, stream=out, bar=True, bar_stream=bar)
    reporter.on_trial_start(7)
    _run_trial(reporter)
    assert reporter._bar is not None
    reporter._bar.refresh()
    drawn = bar.getvalue()
    assert "trial 7" in drawn
    assert "3072/3072 steps" in drawn
    assert "score 0.550" in drawn  # the latest evaluation: 0.25 + 3072 / 10240
    assert re.search(r"\d+ steps/s", drawn)
    reporter.on_trial_end(_study_with_best(0.6), 7, "COMPLETE", 0.55, 1.5)
    (line,) = out.getvalue().splitlines()
    m = SUMMARY.match(line)
    assert m, line
    assert m.groups()[:4] == ("7", "COMPLETE", "0.550", "3072")
    assert "2048 steps/s" in line  # 3072 steps in 1.5 s
    assert m.group(5) == "0.600 (trial 0)"


def test_summary_of_a_pruned_trial_gives_its_last_score() -> None:
    out = io.StringIO()
    reporter = Reporter(3072, stream=out, bar=False)
    _run_trial(reporter, prune_at=1024)
    reporter.on_trial_end(optuna.create_study(), 3, "PRUNED", None, 0.5)
    line = out.getvalue().strip()
    m = SUMMARY.match(line.split("  (")[0])
    assert m, line
    assert m.groups()[:4] == ("3", "PRUNED", "-", "1024")
    assert m.group(5) == "none yet"
    assert line.endswith("(last score 0.350 at step 1024)")


def test_a_rating_evaluation_shows_the_rating_and_its_interval() -> None:
    """With objective: rating, the bar and the summary line show the rating, not a score."""
    from tuner.strength.rating import Rating

    out, bar = io.StringIO(), io.StringIO()
    reporter = Reporter(1024, stream=out, bar=True, bar_stream=bar)
    reporter.on_trial_start(2)
    reporter.on_step(1024)
    reporter.on_evaluation(Evaluation(1024, 612.4, {}, 0.5, Rating(612.4, 560.2, 671.9)))
    assert reporter.postfix().startswith("rating 612 [560, 672], ")
    reporter.on_trial_end(_study_with_best(612.4), 2, "COMPLETE", 612.4, 1.0)
    (line,) = out.getvalue().splitlines()
    assert line.endswith("(last rating 612 [560, 672] at step 1024)"), line


def test_no_bar_when_output_is_not_a_terminal() -> None:
    out, bar = io.StringIO(), io.StringIO()
    reporter = Reporter(3072, stream=out, bar_stream=bar)  # StringIO is no terminal
    assert not reporter.show_bar
    _run_trial(reporter)
    reporter.on_trial_end(_study_with_best(0.5), 0, "COMPLETE", 0.5, 1.0)
    assert bar.getvalue() == ""
    assert len(out.getvalue().splitlines()) == 1


def test_worker_piped_prints_summary_lines_only(runs: Path) -> None:
    result = run_cli("tune", "smoke", "--n-trials", "1", "--worker-index", "0", runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout + result.stderr
    assert "steps [" not in result.stderr
    lines = SUMMARY.findall(result.stdout)
    assert [n for n, *_ in lines] == ["0"], result.stdout


def test_worker_on_a_terminal_draws_the_bar(runs: Path) -> None:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "tune", "smoke", "--n-trials", "2", "--worker-index", "0"],
        cwd=REPO_ROOT,
        env=cli_env(runs),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    # The bar redraws in place: a carriage return not followed by a newline (a terminal
    # turns every "\n" into "\r\n", so a bare "\r" in the text would prove nothing).
    assert re.search(r"\r(?!\n)", text), text[-2000:]
    assert re.search(r"\d+/3072 steps \[", text), text[-2000:]
    assert re.search(r"score \d\.\d{3}, \d+ steps/s", text), text[-2000:]
    lines = SUMMARY.findall(text.replace("\r", "\n"))
    assert [n for n, *_ in lines] == ["0", "1"], text[-2000:]
    assert all(state == "COMPLETE" for _, state, *_ in lines)
