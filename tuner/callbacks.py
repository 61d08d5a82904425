"""The evaluate / report / prune callback that runs inside ``MaskablePPO.learn()``.

Like SB3's own callbacks, the public ``on_step`` hook (BaseCallback) does the
bookkeeping and calls our private ``_on_step``; returning False stops training.
Every ``eval_every`` timesteps it measures strength, logs it to TensorBoard beside
SB3's training curves, reports it to the Optuna trial with the timestep as step,
and stops ``learn()`` when the pruner says so. It never raises ``TrialPruned``
itself: the objective does that after the envs are closed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from stable_baselines3.common.callbacks import BaseCallback

from tuner.evaluate import OpponentResult, Strength
from tuner.rating import Rating

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


class TrialEvalCallback(BaseCallback):
    """Evaluate every ``eval_every`` timesteps; report to ``trial``; stop on prune.

    Args:
        evaluate: model -> :class:`~tuner.evaluate.Strength` (value, per-opponent results,
            rating).
        eval_every: timesteps between evaluations.
        max_inline: at most this many evaluations during ``learn()`` (the caller
            evaluates once more at the end); ``None`` for no limit.
        trial: the Optuna trial to report to (``None`` outside a study, e.g. ``tuner train``).
        should_stop: polled each step; a non-empty string stops training with that reason
            (a worker asked to shut down).
        on_evaluation: called after each evaluation (progress display).
        on_step: called with the timestep count after each env step (progress display).
    """

    def __init__(
        self,
        evaluate: EvaluateFn,
        eval_every: int,
        max_inline: int | None = None,
        trial: optuna.Trial | None = None,
        should_stop: Callable[[], str | None] | None = None,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        on_step: Callable[[int], None] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.evaluate = evaluate
        self.eval_every = max(1, int(eval_every))
        self.max_inline = max_inline
        self.trial = trial
        self.should_stop = should_stop
        self.on_evaluation = on_evaluation
        self.on_step_hook = on_step
        self.progress = TrialProgress()
        self._next_eval = self.eval_every

    def _on_step(self) -> bool:
        if self.on_step_hook is not None:
            self.on_step_hook(self.num_timesteps)
        if self.should_stop is not None:
            reason = self.should_stop()
            if reason:
                self.progress.stopped = reason
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
        """Evaluate, log and report at the current timestep; False means stop training.

        ``final`` marks the evaluation after the whole budget is spent: it is reported
        but the pruner is not asked, since pruning a finished trial saves no compute
        and would throw away a complete result the sampler can learn from.
        """
        if self.progress.diverged or not params_finite(self.model):
            self.progress.diverged = self.progress.diverged or (
                f"non-finite policy weights after {self.num_timesteps} steps"
            )
            return False
        start = time.perf_counter()
        strength = self.evaluate(self.model)
        score = strength.value
        ev = Evaluation(
            self.num_timesteps,
            score,
            strength.results,
            time.perf_counter() - start,
            strength.rating,
        )
        self.progress.evaluations.append(ev)
        if strength.rating is not None:
            self.logger.record("eval/rating", strength.rating.rating)
            self.logger.record("eval/rating_low", strength.rating.low)
            self.logger.record("eval/rating_high", strength.rating.high)
        else:
            self.logger.record("eval/score", score)
        for name, r in strength.results.items():
            self.logger.record(f"eval/score/{name}", r.score)
            self.logger.record(f"eval/games/{name}", r.games)
        self.logger.record("eval/seconds", ev.seconds)
        self.logger.dump(self.num_timesteps)
        if self.on_evaluation is not None:
            self.on_evaluation(ev)
        if not math.isfinite(score):
            self.progress.diverged = f"non-finite evaluation value {score}"
            return False
        if self.trial is not None:
            self.trial.report(score, step=self.num_timesteps)
            if not final and self.trial.should_prune():
                self.progress.pruned = True
                return False
        return True
