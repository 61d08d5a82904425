"""What a worker shows while it runs: a bar for the current trial, a line per finished trial.

The bar (timesteps, latest evaluation score, steps per second) is drawn only on
a terminal; the summary lines are always printed, so logs of a compose worker
or a CI run stay readable.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import optuna
from tqdm import tqdm

from tuner.callbacks import Evaluation


class Reporter:
    def __init__(self, total_timesteps: int, stream: TextIO | None = None, bar: bool | None = None):
        self.total = total_timesteps
        self.stream = stream or sys.stdout
        self.show_bar = sys.stderr.isatty() if bar is None else bar
        self._bar: tqdm | None = None
        self._last = 0

    def on_step(self, timesteps: int) -> None:
        if not self.show_bar:
            return
        if self._bar is None:
            self._bar = tqdm(total=self.total, unit="step", leave=False, dynamic_ncols=True)
        self._bar.update(timesteps - self._last)
        self._last = timesteps

    def on_evaluation(self, ev: Evaluation) -> None:
        if self._bar is not None:
            self._bar.set_postfix(score=f"{ev.score:.3f}")

    def on_trial_end(
        self, study: optuna.Study, number: int, state: str, value: float | None, seconds: float
    ) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar, self._last = None, 0
        try:
            best: Any = f"{study.best_value:.3f} (trial {study.best_trial.number})"
        except ValueError:
            best = "none yet"
        shown = f"{value:.3f}" if value is not None else "-"
        print(
            f"trial {number:4d}  {state:<8s} value {shown:>6s}  {seconds:7.1f}s  best {best}",
            file=self.stream,
            flush=True,
        )
