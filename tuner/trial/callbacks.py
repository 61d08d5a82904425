"""The SB3 callbacks of a training run: evaluate, prune, stop on a signal.

``train`` passes them to ``MaskablePPO.learn(callback=[...])``, SB3's own idiom,
instead of threading hooks by hand. :class:`EvaluationCallback` (built by
``train``) measures strength every ``eval_every`` timesteps, logs it to
TensorBoard beside SB3's training curves and keeps the run's
:class:`RunState` (its evaluations, and whether it was pruned, diverged or
stopped). The callbacks a caller passes in that are
:class:`TrialCallback`s share that state and hear of each evaluation:
:class:`PruningCallback` reports to the Optuna trial with the timestep as step
and stops ``learn()`` when the pruner says so (it never raises ``TrialPruned``
itself: the objective does that after the envs are closed);
:class:`StopOnSignalCallback` stops ``learn()`` when the worker is asked to
shut down; ``tuner.trial.progress.ProgressCallback`` drives the progress display;
:class:`CheckpointCallback` saves the model every so many timesteps (``tuner train``).
Like SB3's callbacks, returning False from a step stops training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from stable_baselines3.common.callbacks import BaseCallback

from env.policy_files import save_model
from tuner.strength.evaluate import OpponentResult, Strength
from tuner.strength.perfect import PerfectScore
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
    perfect: PerfectScore | None = None

    def describe(self) -> str:
        """``rating 512 [480, 545]`` or ``score 0.381``, then ``optimal 0.553 regret 3.09``
        where the perfect-play numbers were recorded."""
        return Strength(self.value, self.results, self.rating, self.perfect).describe()

    def as_dict(self) -> dict[str, Any]:
        """The trial's user attr record of this evaluation."""
        out: dict[str, Any] = {"timestep": self.timestep, "value": round(self.value, 4)}
        if self.rating is not None:
            out["rating"] = self.rating.as_dict()
        if self.perfect is not None:
            p = self.perfect.as_dict()
            out["perfect"] = {k: p[k] for k in ("optimal", "regret", "blunders")}
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class RunState:
    """Where a training run stands: its evaluations, and whether it was pruned,
    diverged or stopped; the callbacks write it, the objective reads it after
    ``learn()`` returns. (Not the progress display: :mod:`tuner.trial.progress`.)"""

    evaluations: list[Evaluation] = field(default_factory=list)
    pruned: bool = False
    diverged: str | None = None
    stopped: str | None = None
    # No env step for too long outside an evaluation (tuner.trial.watchdog): the reason.
    stalled: str | None = None

    @property
    def eval_seconds(self) -> float:
        return sum(e.seconds for e in self.evaluations)


def params_finite(model: Any) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


class TrialCallback(BaseCallback):
    """A callback of one training run that shares its :class:`RunState`.

    :class:`EvaluationCallback` binds ``state`` to its own and calls
    :meth:`on_evaluation` after each evaluation, so a callback can act on strength
    (prune) or show it (progress) without owning the evaluation. Its SB3 ``_on_step``
    runs before the evaluation of the same step (``train`` puts it first in the list).
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.state = RunState()

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
            self.state.stopped = reason
            return False
        return True


class CheckpointCallback(BaseCallback):
    """Saves the model each time the run passes a multiple of ``every`` timesteps.

    An hour-long ``tuner train`` that dies (a lost node, an OOM kill) keeps what it had
    learned at the last checkpoint. Saved as the tuner saves every model
    (:func:`~env.policy_files.save_model`), so ``tuner evaluate`` and ``tuner play``
    load a checkpoint without ``--trust-pickle``. ``on_save`` hears of each file.
    """

    def __init__(
        self,
        every: int,
        path_for: Callable[[int], Path],
        on_save: Callable[[Path, int], None] | None = None,
    ) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every: expected a positive number of timesteps, but got {every}")
        self.every = every
        self.path_for = path_for
        self.on_save = on_save
        self.saved: list[Path] = []
        self._passed = 0  # multiples of ``every`` passed so far

    def _on_step(self) -> bool:
        passed = self.num_timesteps // self.every
        if passed > self._passed:  # a rollout may jump past two multiples: one file
            self._passed = passed
            path = self.path_for(self.num_timesteps)
            path.parent.mkdir(parents=True, exist_ok=True)
            path = save_model(self.model, path)
            self.saved.append(path)
            if self.on_save is not None:
                self.on_save(path, self.num_timesteps)
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
            self.state.pruned = True
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
        listeners: the run's :class:`TrialCallback`s; they share :attr:`state`
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
        self.state = RunState()
        self.listeners = list(listeners)
        for listener in self.listeners:
            listener.state = self.state
        self._next_eval = self.eval_every

    def _on_step(self) -> bool:
        if self.state.stopped:  # a stop callback earlier in the list ended this run
            return False
        if self.num_timesteps < self._next_eval or self.inline_done():
            return True
        while self._next_eval <= self.num_timesteps:
            self._next_eval += self.eval_every
        return self.evaluate_now()

    def inline_done(self) -> bool:
        """The last evaluation is left for the end of training, where the budget is spent."""
        return self.max_inline is not None and len(self.state.evaluations) >= self.max_inline

    def _on_rollout_end(self) -> None:
        # Catch divergence at the update that caused it, not at the next evaluation.
        if self.state.diverged is None and not params_finite(self.model):
            self.state.diverged = f"non-finite policy weights after {self.num_timesteps} steps"

    def evaluate_now(self, final: bool = False) -> bool:
        """Evaluate, log and tell the listeners at the current timestep; False: stop.

        ``final`` marks the evaluation after the whole budget is spent (see
        :class:`PruningCallback`).
        """
        if self.state.diverged or not params_finite(self.model):
            self.state.diverged = self.state.diverged or (
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
            strength.perfect,
        )
        self.state.evaluations.append(ev)
        self._log(ev)
        # Every listener hears of every evaluation (the display shows a NaN too).
        go_on = [listener.on_evaluation(ev, final) for listener in self.listeners]
        if not math.isfinite(ev.value):
            self.state.diverged = f"non-finite evaluation value {ev.value}"
            return False
        return all(go_on)

    def _log(self, ev: Evaluation) -> None:
        """The evaluation into TensorBoard, beside SB3's ``train/*`` and ``rollout/*``.

        TensorBoard sorts a group's charts by name: the ``eval`` group holds the value the
        pruner sees (``eval/rating`` or ``eval/score``, first) and its time; the perfect-play
        numbers have a group of their own (``eval_perfect/*``: under ``objective: perfect``
        ``eval_perfect/optimal`` is the value); each
        opponent's score and games go to a group of their own, ``eval_opponents``.
        """
        if ev.rating is not None:
            self.logger.record("eval/rating", ev.rating.rating)
            self.logger.record("eval/rating_low", ev.rating.low)
            self.logger.record("eval/rating_high", ev.rating.high)
        elif ev.results or ev.perfect is None:  # under objective: perfect, no games
            self.logger.record("eval/score", ev.value)
        if ev.perfect is not None:
            self.logger.record("eval_perfect/optimal", ev.perfect.optimal.mean)
            self.logger.record("eval_perfect/regret", ev.perfect.regret.mean)
            self.logger.record("eval_perfect/blunders", ev.perfect.blunders.mean)
        self.logger.record("eval/seconds", ev.seconds)
        for name, r in ev.results.items():
            self.logger.record(f"eval_opponents/{name}/score", r.score)
            self.logger.record(f"eval_opponents/{name}/games", r.games)
        self.logger.dump(self.num_timesteps)
