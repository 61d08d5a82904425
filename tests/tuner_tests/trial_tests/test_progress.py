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
import pytest
from optuna.trial import create_trial
from support import REPO_ROOT, cli_env, run_cli

from tuner.trial.callbacks import Evaluation
from tuner.trial.progress import ProgressDisplay

SUMMARY = re.compile(
    r"^trial +(\d+)  (COMPLETE|PRUNED|FAIL) +value +(\S+) +(\d+) steps +[\d.]+s +\d+ steps/s  best (.+)$",
    re.M,
)


def _study_with_best(value: float) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=value))
    return study


def _run_trial(display: ProgressDisplay, total: int = 3072, prune_at: int | None = None) -> None:
    for t in range(4, total + 1, 4):
        display.on_step(t)
        if t % 1024 == 0:
            display.on_evaluation(Evaluation(t, 0.25 + t / 10240, {}, 0.01))
            if prune_at == t:
                return
        if t % 256 == 0:
            time.sleep(0.01)


def test_bar_shows_timesteps_score_and_speed() -> None:
    out, bar = io.StringIO(), io.StringIO()
    display = ProgressDisplay(3072, stream=out, bar=True, bar_stream=bar)
    display.on_trial_start(7)
    _run_trial(display)
    assert display._bar is not None
    display._bar.refresh()
    drawn = bar.getvalue()
    assert "trial 7" in drawn
    assert "3072/3072 steps" in drawn
    assert "score 0.550" in drawn  # the latest evaluation: 0.25 + 3072 / 10240
    assert re.search(r"\d+ steps/s", drawn)
    display.on_trial_end(_study_with_best(0.6), 7, "COMPLETE", 0.55, 1.5)
    (line,) = out.getvalue().splitlines()
    m = SUMMARY.match(line)
    assert m, line
    assert m.groups()[:4] == ("7", "COMPLETE", "0.550", "3072")
    assert "2048 steps/s" in line  # 3072 steps in 1.5 s
    assert m.group(5) == "0.600 (trial 0)"


def test_summary_of_a_pruned_trial_gives_its_last_score() -> None:
    out = io.StringIO()
    display = ProgressDisplay(3072, stream=out, bar=False)
    _run_trial(display, prune_at=1024)
    display.on_trial_end(optuna.create_study(), 3, "PRUNED", None, 0.5)
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
    display = ProgressDisplay(1024, stream=out, bar=True, bar_stream=bar)
    display.on_trial_start(2)
    display.on_step(1024)
    display.on_evaluation(Evaluation(1024, 612.4, {}, 0.5, Rating(612.4, 560.2, 671.9)))
    assert display.postfix().startswith("rating 612 [560, 672], ")
    display.on_trial_end(_study_with_best(612.4), 2, "COMPLETE", 612.4, 1.0)
    (line,) = out.getvalue().splitlines()
    assert line.endswith("(last rating 612 [560, 672] at step 1024)"), line


def test_a_run_past_its_budget_keeps_a_total_on_the_bar() -> None:
    """SB3 trains whole rollouts, so 500000 steps end at 500160: the bar grows its total
    (tqdm would otherwise show ``0%| 500160/? steps``)."""
    out, bar = io.StringIO(), io.StringIO()
    reporter = ProgressDisplay(500_000, stream=out, bar=True, bar_stream=bar)
    reporter.on_trial_start(3)
    for t in (250_080, 500_160):
        reporter.on_step(t)
    reporter._bar.refresh()
    drawn = bar.getvalue().split("\r")[-1]
    assert "100%" in drawn and "500160/500160 steps" in drawn, drawn
    assert "/?" not in bar.getvalue()


def test_evaluation_lines_say_the_step_the_score_and_its_games() -> None:
    """``tuner train``'s reporter: a line per evaluation, with the bar's stream untouched."""
    from tuner.strength.evaluate import OpponentResult

    out, bar = io.StringIO(), io.StringIO()
    reporter = ProgressDisplay(
        4096, stream=out, bar=True, bar_stream=bar, evaluation_lines=True, name="train"
    )
    reporter.on_step(2048)
    result = OpponentResult("greedy", 200, 150, 10, 40, 0.775, 0.7, 0.84, 0.8, 0.75, 190, 95)
    reporter.on_evaluation(Evaluation(2048, 0.775, {"greedy": result}, 1.5))
    (line,) = out.getvalue().splitlines()
    assert re.fullmatch(
        r"step 2048/4096  score 0\.775 over 200 games  \(1\.5 s of games, \d+ steps/s\)", line
    ), line
    assert "train" in bar.getvalue() and "step 2048/4096" not in bar.getvalue()
    reporter.close()


def test_the_perfect_play_numbers_follow_the_value_in_every_line() -> None:
    """Recorded beside a score: the evaluation line, the bar and the trial's summary line
    show them; as the value (``objective: perfect``) they are the value, with no games."""
    from tuner.strength.evaluate import OpponentResult
    from tuner.strength.perfect import Measure, PerfectScore

    perfect = PerfectScore(
        5010, Measure(0.8042, 0.011), Measure(1.0691, 0.08), Measure(0.045, 0.006)
    )
    out, bar = io.StringIO(), io.StringIO()
    reporter = ProgressDisplay(
        4096, stream=out, bar=True, bar_stream=bar, evaluation_lines=True, name="train"
    )
    reporter.on_step(2048)
    result = OpponentResult("greedy", 200, 150, 10, 40, 0.775, 0.7, 0.84, 0.8, 0.75, 190, 95)
    reporter.on_evaluation(Evaluation(2048, 0.775, {"greedy": result}, 1.5, None, perfect))
    reporter.on_evaluation(Evaluation(4096, 0.8042, {}, 0.1, None, perfect))
    scored, alone = out.getvalue().splitlines()
    assert re.fullmatch(
        r"step 2048/4096  score 0\.775 over 200 games, optimal 0\.804 regret 1\.07  "
        r"\(1\.5 s of games, \d+ steps/s\)",
        scored,
    ), scored
    assert re.fullmatch(
        r"step 4096/4096  optimal 0\.804 regret 1\.07  \(0\.1 s of evaluation, \d+ steps/s\)",
        alone,
    ), alone
    assert "optimal 0.804 regret 1.07" in reporter.postfix()
    summary = reporter.summary_line(_study_with_best(0.8042), 0, "COMPLETE", 0.8042, 1.0)
    assert "(last optimal 0.804 regret 1.07 at step 4096)" in summary, summary
    reporter.close()


def test_no_bar_when_output_is_not_a_terminal() -> None:
    out, bar = io.StringIO(), io.StringIO()
    display = ProgressDisplay(3072, stream=out, bar_stream=bar)  # StringIO is no terminal
    assert not display.show_bar
    _run_trial(display)
    display.on_trial_end(_study_with_best(0.5), 0, "COMPLETE", 0.5, 1.0)
    assert bar.getvalue() == ""
    assert len(out.getvalue().splitlines()) == 1


@pytest.mark.slow
def test_worker_piped_prints_summary_lines_only(runs: Path) -> None:
    result = run_cli("tune", "smoke", "--n-trials", "1", "--worker-index", "0", runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout + result.stderr
    assert "steps [" not in result.stderr
    lines = SUMMARY.findall(result.stdout)
    assert [n for n, *_ in lines] == ["0"], result.stdout


@pytest.mark.slow
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
    # The smoke study plays Kalah(6,4): the perfect-play numbers follow the score.
    shown = r"score \d\.\d{3} over \d+ games, optimal \d\.\d{3} regret \d+\.\d{2}, \d+ steps/s"
    assert re.search(shown, text), text[-2000:]
    lines = SUMMARY.findall(text.replace("\r", "\n"))
    assert [n for n, *_ in lines] == ["0", "1"], text[-2000:]
    assert all(state == "COMPLETE" for _, state, *_ in lines)
