"""The curriculum inside ``learn()``: each evaluation's results move the opponents' shares.

The weighting rule is the env's (``env/curriculum.py``: PFSP on the learner's score
against each ladder member); this callback is its feedback loop. A trial already
evaluates its learner a few times while it trains (for the pruner); the same
results, per opponent and with the rating where there is one, go to every
curriculum in the running vec env, so that the next episodes are drawn from the
members the learner now wins about half its games against. Nothing extra is
played: the curriculum costs no evaluation games of its own.

The shares are logged to TensorBoard (``curriculum/MEMBER``) and the trial records
their history in its ``league`` user attr (:func:`curriculum_summary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from env.curriculum import Curriculum
from tuner.trial.callbacks import Evaluation, TrialCallback


def curricula(sources: Sequence[Any]) -> list[Curriculum]:
    """The curricula among a vec env's opponent sources."""
    return [s for s in sources if isinstance(s, Curriculum)]


class CurriculumCallback(TrialCallback):
    """After each evaluation, give its per-opponent scores and rating to ``curricula``."""

    def __init__(self, curricula: Sequence[Curriculum]) -> None:
        super().__init__()
        self.curricula = list(curricula)

    def _on_training_start(self) -> None:
        for curriculum in self.curricula:  # where the run starts, before any evaluation
            if not curriculum.history:
                curriculum.history.append(
                    {
                        "timestep": int(self.num_timesteps),
                        "rating": round(curriculum.rating, 1),
                        "shares": curriculum.shares(),
                    }
                )

    def on_evaluation(self, ev: Evaluation, final: bool) -> bool:
        if final:
            return True  # no episode is drawn after the last evaluation
        results = {name: (r.score, r.games) for name, r in ev.results.items()}
        rating = ev.rating.rating if ev.rating is not None else None
        for curriculum in self.curricula:
            shares = curriculum.update(results, rating, ev.timestep)
            for member, share in shares.items():
                self.logger.record(f"curriculum/{member}", share)
        return True


def curriculum_summary(curricula: Sequence[Curriculum]) -> list[dict[str, Any]]:
    """What a trial records: per curriculum, its members' shares after each evaluation."""
    return [{"name": c.name, "history": list(c.history)} for c in curricula]
