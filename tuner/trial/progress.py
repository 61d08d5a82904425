"""What a worker shows while it runs: a bar for the current trial, a line per finished trial.

The bar (timesteps, latest evaluation: score or rating, and the perfect-play numbers
where recorded; steps per second) is drawn on
stderr, and only when stderr is a terminal: piped into a file, a CI log or
``docker compose logs`` there is no bar and no carriage-return noise. The one
summary line per finished trial (number, state, value, timesteps, duration,
steps per second, best so far) goes to stdout always, since it is exactly what
such a log should hold.

The display is a :class:`TrialHooks`. The worker calls ``on_trial_start`` when it
claims a trial and ``on_trial_end`` when the trial is told; during training the
SB3 callback :class:`ProgressCallback` (in the list the objective passes to
``learn()``) calls ``on_step`` with the timestep count after each env step and
``on_evaluation`` after each evaluation.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import optuna
from tqdm import tqdm

from tuner.trial.callbacks import Evaluation, TrialCallback

BAR_FORMAT = (
    "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}]{postfix}"
)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int | None:
    """The terminal's width, or None where it reports none (a pty nobody sized)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, ValueError, OSError):
        return None


class TrialHooks:
    """What a worker tells whoever follows its progress; each hook does nothing unless
    overridden.

    A follower (the progress display, a benchmark's clock) overrides the hooks it
    needs and inherits the rest, so a new hook never breaks an existing one.
    """

    def on_trial_start(self, number: int) -> None:
        """The worker claimed trial ``number`` and is about to train it."""

    def on_step(self, timesteps: int) -> None:
        """``timesteps`` trained so far in the current trial."""

    def on_evaluation(self, ev: Evaluation) -> None:
        """An evaluation of the current trial finished."""

    def on_trial_end(
        self, study: optuna.Study, number: int, state: str, value: float | None, seconds: float
    ) -> None:
        """Trial ``number`` was told with ``state`` (and ``value`` when COMPLETE)."""


class ProgressCallback(TrialCallback):
    """Feeds a training run's steps and evaluations to the progress hooks.

    ``offset`` is added to the timestep count: the runs of a trial with several
    runs (``budget.runs``) share one bar, the second starting where the first ended.
    """

    def __init__(self, hooks: TrialHooks, offset: int = 0) -> None:
        super().__init__()
        self.hooks = hooks
        self.offset = offset

    def _on_step(self) -> bool:
        self.hooks.on_step(self.offset + self.num_timesteps)
        return True

    def on_evaluation(self, ev: Evaluation, final: bool) -> bool:
        self.hooks.on_evaluation(ev)
        return True


class ProgressDisplay(TrialHooks):
    """What a person watches of one worker: the bar, and the line per finished trial.

    Args:
        total_timesteps: the budget of one trial (the bar's total).
        stream: where summary lines go (default stdout).
        bar: draw the bar (default: only when ``bar_stream`` is a terminal).
        bar_stream: where the bar goes (default stderr).
        evaluation_lines: also print a line per evaluation to ``stream`` (``tuner train``:
            one run of an hour has no per-trial lines to show its progress).
        name: what the bar calls a run (``trial 7``; ``train``).
    """

    def __init__(
        self,
        total_timesteps: int,
        stream: TextIO | None = None,
        bar: bool | None = None,
        bar_stream: TextIO | None = None,
        evaluation_lines: bool = False,
        name: str = "trial",
    ) -> None:
        self.total = total_timesteps
        self.stream = stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.show_bar = _isatty(self.bar_stream) if bar is None else bar
        self.evaluation_lines = evaluation_lines
        self.name = name
        self._bar: tqdm | None = None
        self._reset()

    def _reset(self) -> None:
        self._number: int | None = None
        self._timesteps = 0
        self._shown = 0
        self._start: float | None = None
        self._last: Evaluation | None = None
        self._last_postfix = 0.0

    # --- live values --------------------------------------------------------------

    @property
    def steps_per_second(self) -> float:
        if self._start is None:
            return 0.0
        return self._timesteps / max(time.perf_counter() - self._start, 1e-9)

    def postfix(self) -> str:
        """``score 0.381, 4578 steps/s`` or ``rating 512 [480, 545], ...``: the latest
        evaluation and the training speed."""
        shown = self._last.describe() if self._last is not None else "no evaluation yet"
        return f"{shown}, {self.steps_per_second:.0f} steps/s"

    # --- hooks --------------------------------------------------------------------

    def on_trial_start(self, number: int) -> None:
        self._close_bar()
        self._reset()
        self._number = number

    def on_step(self, timesteps: int) -> None:
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        self._timesteps = timesteps
        if not self.show_bar:
            return
        if self._bar is None:
            desc = self.name if self._number is None else f"{self.name} {self._number}"
            sized = _columns(self.bar_stream) is not None
            self._bar = tqdm(
                total=self.total,
                desc=desc,
                unit="step",
                leave=False,
                dynamic_ncols=sized,
                ncols=None if sized else 100,  # unsized, tqdm would draw nothing
                nrows=None if sized else 20,
                file=self.bar_stream,
                bar_format=BAR_FORMAT,
            )
        if timesteps > self._bar.total:
            # SB3 trains whole rollouts (n_steps x n_envs), so a run ends at or past its
            # budget: past it, tqdm would drop the total and show "0%| 500160/?".
            self._bar.total = timesteps
        if now - self._last_postfix > 0.25:
            self._last_postfix = now
            self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(timesteps - self._shown)
        self._shown = timesteps

    def on_evaluation(self, ev: Evaluation) -> None:
        self._last = ev
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix())
        if self.evaluation_lines:
            self.print_line(self.evaluation_line(ev))

    def print_line(self, line: str) -> None:
        """A line on ``stream`` that leaves the bar (on the terminal's other stream) whole."""
        if self._bar is not None:
            self._bar.clear()
        print(line, file=self.stream, flush=True)
        if self._bar is not None:
            self._bar.refresh()

    def on_trial_end(
        self, study: optuna.Study, number: int, state: str, value: float | None, seconds: float
    ) -> None:
        self._close_bar()
        print(self.summary_line(study, number, state, value, seconds), file=self.stream, flush=True)
        self._reset()

    # --- output -------------------------------------------------------------------

    def summary_line(
        self, study: optuna.Study, number: int, state: str, value: float | None, seconds: float
    ) -> str:
        try:
            best: Any = f"{study.best_value:.3f} (trial {study.best_trial.number})"
        except (ValueError, RuntimeError):
            best = "none yet"
        shown = f"{value:.3f}" if value is not None else "-"
        speed = self._timesteps / seconds if seconds > 0 else 0.0
        line = (
            f"trial {number:4d}  {state:<8s}  value {shown:>6s}  {self._timesteps:>8d} steps"
            f"  {seconds:6.1f}s  {speed:6.0f} steps/s  best {best}"
        )
        last = self._last
        behind = last is not None and (last.rating is not None or last.perfect is not None)
        if last is not None and (value is None or behind):
            line += f"  (last {last.describe()} at step {last.timestep})"
        return line

    def evaluation_line(self, ev: Evaluation) -> str:
        """``step   40960/200000  score 0.381  (2.1 s of games, 4578 steps/s)``; the
        perfect-play numbers follow the value where recorded (``score 0.381, optimal 0.553
        regret 3.09``), and are the value under ``objective: perfect``."""
        width = len(str(self.total))
        spent = "evaluation" if ev.perfect is not None and not ev.results else "games"
        return (
            f"step {ev.timestep:>{width}d}/{self.total}  {ev.describe()}  "
            f"({ev.seconds:.1f} s of {spent}, "
            f"{self.steps_per_second:.0f} steps/s)"
        )

    def close(self) -> None:
        """Take the bar off the terminal (a run that ends without ``on_trial_end``)."""
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
