"""The SB3 callbacks of a training run: evaluate, prune, stop on a signal.

``train`` passes them to ``MaskablePPO.learn(callback=[...])``, SB3's own idiom,
instead of threading hooks by hand. :class:`EvaluationCallback` (built by
``train``) measures strength every ``eval_every`` timesteps, logs it to
TensorBoard beside SB3's training curves and keeps the run's
:class:`TrialProgress`. The callbacks a caller passes in that are
:class:`TrialCallback`s share that record and hear of each evaluation:
:class:`PruningCallback` reports to the Optuna trial with the timestep as step
and stops ``learn()`` when the pruner says so (it never raises ``TrialPruned``
itself: the objective does that after the envs are closed);
:class:`StopOnSignalCallback` stops ``learn()`` when the worker is asked to
shut down; ``tuner.trial.progress.ProgressCallback`` drives the progress display.
Like SB3's callbacks, returning False from a step stops training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from stable_baselines3.common.callbacks import BaseCallback

from tuner.strength.evaluate import OpponentResult, Strength
from tuner.strength.rating import Rating

EvaluateFn = Callable[[Any], Strength]


@dataclass
class Evaluation:
    """One evaluation of a trial: ``value`` (the rating or the combined score) is reported."""

    timestep: int
    value: float
    results: dict[str, OpponentResult]
    seconds: float
    rating: Rating | None = None

    def describe(self) -> str:
        """``rating 512 [480, 545]`` or ``score 0.381``."""
        return Strength(self.value, self.results, self.rating).describe()

    def as_dict(self) -> dict[str, Any]:
        """The trial's user attr record of this evaluation."""
        out: dict[str, Any] = {"timestep": self.timestep, "value": round(self.value, 4)}
        if self.rating is not None:
            out["rating"] = self.rating.as_dict()
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class TrialProgress:
    """What the callback learned, read by the objective after ``learn()`` returns."""

    evaluations: list[Evaluation] = field(default_factory=list)
    pruned: bool = False
    diverged: str | None = None
    stopped: str | None = None

    @property
    def eval_seconds(self) -> float:
        return sum(e.seconds for e in self.evaluations)


def params_finite(model: Any) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


class TrialCallback(BaseCallback):
    """A callback of one training run that shares its :class:`TrialProgress`.

    :class:`EvaluationCallback` binds ``progress`` to its own record and calls
    :meth:`on_evaluation` after each evaluation, so a callback can act on strength
    (prune) or show it (progress) without owning the evaluation. Its SB3 ``_on_step``
    runs before the evaluation of the same step (``train`` puts it first in the list).
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.progress = TrialProgress()

    def _on_step(self) -> bool:
        return True

    def on_evaluation(self, ev: Evaluation, final: bool) -> bool:
        """Called after each evaluation (``final``: the one after the budget is spent);
        False stops training."""
        return True


class StopOnSignalCallback(TrialCallback):
    """Polls ``should_stop`` each step; a non-empty reason stops training with it.

    The worker's signal handler only sets a flag: the trial stops at its next step,
    so its envs are closed and its state recorded rather than killed mid-update.
    """

    def __init__(self, should_stop: Callable[[], str | None]) -> None:
        super().__init__()
        self.should_stop = should_stop

    def _on_step(self) -> bool:
        reason = self.should_stop()
        if reason:
            self.progress.stopped = reason
            return False
        return True


class PruningCallback(TrialCallback):
    """Reports each evaluation's value to ``trial`` (step = timestep) and stops on prune.

    The final evaluation is reported but the pruner is not asked: pruning a
    finished trial saves no compute and would throw away a complete result the
    sampler can learn from. A non-finite value is not reported: the evaluation
    callback stops the run as diverged.
    """

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def on_evaluation(self, ev: Evaluation, final: bool) -> bool:
        if not math.isfinite(ev.value):
            return True
        self.trial.report(ev.value, step=ev.timestep)
        if not final and self.trial.should_prune():
            self.progress.pruned = True
            return False
        return True


class EvaluationCallback(BaseCallback):
    """Evaluate every ``eval_every`` timesteps; tell ``listeners``; stop on divergence.

    Args:
        evaluate: model -> :class:`~tuner.strength.evaluate.Strength` (value, per-opponent results,
            rating).
        eval_every: timesteps between evaluations.
        max_inline: at most this many evaluations during ``learn()`` (the caller
            evaluates once more at the end); ``None`` for no limit.
        listeners: the run's :class:`TrialCallback`s; they share :attr:`progress`
            and hear of each evaluation, in order.
    """

    def __init__(
        self,
        evaluate: EvaluateFn,
        eval_every: int,
        max_inline: int | None = None,
        listeners: Sequence[TrialCallback] = (),
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.evaluate = evaluate
        self.eval_every = max(1, int(eval_every))
        self.max_inline = max_inline
        self.progress = TrialProgress()
        self.listeners = list(listeners)
        for listener in self.listeners:
            listener.progress = self.progress
        self._next_eval = self.eval_every

    def _on_step(self) -> bool:
        if self.progress.stopped:  # a stop callback earlier in the list ended this run
            return False
        if self.num_timesteps < self._next_eval or self.inline_done():
            return True
        while self._next_eval <= self.num_timesteps:
            self._next_eval += self.eval_every
        return self.evaluate_now()

    def inline_done(self) -> bool:
        """The last evaluation is left for the end of training, where the budget is spent."""
        return self.max_inline is not None and len(self.progress.evaluations) >= self.max_inline

    def _on_rollout_end(self) -> None:
        # Catch divergence at the update that caused it, not at the next evaluation.
        if self.progress.diverged is None and not params_finite(self.model):
            self.progress.diverged = f"non-finite policy weights after {self.num_timesteps} steps"

    def evaluate_now(self, final: bool = False) -> bool:
        """Evaluate, log and tell the listeners at the current timestep; False: stop.

        ``final`` marks the evaluation after the whole budget is spent (see
        :class:`PruningCallback`).
        """
        if self.progress.diverged or not params_finite(self.model):
            self.progress.diverged = self.progress.diverged or (
                f"non-finite policy weights after {self.num_timesteps} steps"
            )
            return False
        start = time.perf_counter()
        strength = self.evaluate(self.model)
        ev = Evaluation(
            self.num_timesteps,
            strength.value,
            strength.results,
            time.perf_counter() - start,
            strength.rating,
        )
        self.progress.evaluations.append(ev)
        self._log(ev)
        # Every listener hears of every evaluation (the display shows a NaN too).
        go_on = [listener.on_evaluation(ev, final) for listener in self.listeners]
        if not math.isfinite(ev.value):
            self.progress.diverged = f"non-finite evaluation value {ev.value}"
            return False
        return all(go_on)

    def _log(self, ev: Evaluation) -> None:
        """The evaluation into TensorBoard, beside SB3's ``train/*`` and ``rollout/*``."""
        if ev.rating is not None:
            self.logger.record("eval/rating", ev.rating.rating)
            self.logger.record("eval/rating_low", ev.rating.low)
            self.logger.record("eval/rating_high", ev.rating.high)
        else:
            self.logger.record("eval/score", ev.value)
        for name, r in ev.results.items():
            self.logger.record(f"eval/score/{name}", r.score)
            self.logger.record(f"eval/games/{name}", r.games)
        self.logger.record("eval/seconds", ev.seconds)
        self.logger.dump(self.num_timesteps)
