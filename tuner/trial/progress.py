"""What a worker shows while it runs: a bar for the current trial, a line per finished trial.

The bar (timesteps, latest evaluation: score or rating, steps per second) is drawn on
stderr, and only when stderr is a terminal: piped into a file, a CI log or
``docker compose logs`` there is no bar and no carriage-return noise. The one
summary line per finished trial (number, state, value, timesteps, duration,
steps per second, best so far) goes to stdout always, since it is exactly what
such a log should hold.

A reporter is a :class:`TrialHooks`. The worker calls ``on_trial_start`` when it
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
    """What a worker tells its reporter; each hook does nothing unless overridden.

    A reporter (the progress display, a benchmark's clock) overrides the hooks it
    needs and inherits the rest, so a new hook never breaks an existing reporter.
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
    """Feeds a training run's steps and evaluations to a reporter's hooks.

    ``offset`` is added to the timestep count: the runs of a trial with several
    seeds share one bar, the second starting where the first ended.
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


class Reporter(TrialHooks):
    """Progress of one worker.

    Args:
        total_timesteps: the budget of one trial (the bar's total).
        stream: where summary lines go (default stdout).
        bar: draw the bar (default: only when ``bar_stream`` is a terminal).
        bar_stream: where the bar goes (default stderr).
    """

    def __init__(
        self,
        total_timesteps: int,
        stream: TextIO | None = None,
        bar: bool | None = None,
        bar_stream: TextIO | None = None,
    ) -> None:
        self.total = total_timesteps
        self.stream = stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.show_bar = _isatty(self.bar_stream) if bar is None else bar
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
            desc = f"trial {self._number}" if self._number is not None else "trial"
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
        if now - self._last_postfix > 0.25:
            self._last_postfix = now
            self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(timesteps - self._shown)
        self._shown = timesteps

    def on_evaluation(self, ev: Evaluation) -> None:
        self._last = ev
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix())

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
        if self._last is not None and (value is None or self._last.rating is not None):
            line += f"  (last {self._last.describe()} at step {self._last.timestep})"
        return line

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
