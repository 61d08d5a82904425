"""Which trial ``tuner export`` takes: the verified best when a verification is finished,
else the best trial; the rule it followed goes into the export file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.base.errors import UserError
from tuner.commands.status import state_counts
from tuner.commands.verify.statistics import CONFIDENCE, Verification, VerifiedConfig
from tuner.commands.verify.summary import summarize


@dataclass
class Selection:
    """Which trial to export, by which rule, and what the verification found."""

    trial: FrozenTrial
    rule: str
    verification: dict[str, Any] | None = None
    note: str | None = None  # why a verification was not used

    def record(self) -> dict[str, Any]:
        return {"selection": self.rule, "verification": self.verification}


SINGLE_SEED = (
    "single seed: the completed trial with the best objective value, from one training "
    "run (one seed); `tuner verify {study} --top K --fresh-seeds S` re-trains the top K with "
    "fresh seeds"
)
VERIFIED = (
    "verified: the configuration with the best mean objective value over its fresh "
    "seeds in {companion} (the original single-seed run left out: it was picked for "
    "being high), among {k} verified configurations"
)


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The completed trial with the best value (one seed); a clear error when there is none."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        counts = state_counts(study.get_trials(deepcopy=False))
        found = ", ".join(f"{k}={v}" for k, v in counts.items()) or "no trials"
        raise UserError(
            f"study {study.study_name!r} has no completed trial to export ({found}); "
            "run `make tune` until one completes"
        )
    return study.best_trial


def select_for_export(study: optuna.Study) -> Selection:
    """The verified best when the verification of ``study`` is finished, else the best trial.

    A population-based study exports its best member's schedule instead (tuner.pbt.summary).
    """
    from tuner.pbt.summary import select_best

    picked = select_best(study)
    if picked is not None:
        return Selection(picked[0], picked[1], note=picked[2])
    single = SINGLE_SEED.format(study=study.study_name)
    v = summarize(study)
    if v is None:
        return Selection(best_trial(study), single)
    if not v.done:
        return Selection(
            best_trial(study),
            single,
            note=f"the verification in {v.companion} is not finished ({v.pending} jobs waiting "
            f"or running; `tuner tune {v.companion}` runs them), so it was not used",
        )
    if not v.verified:
        return Selection(
            best_trial(study), single, note=f"no verify job in {v.companion} completed"
        )
    best = v.verified[0]
    rule = VERIFIED.format(companion=v.companion, k=len(v.verified))
    return Selection(best.original, rule, _verification_record(v, best))


def _verification_record(v: Verification, best: VerifiedConfig) -> dict[str, Any]:
    """What the export file says about the verification behind its choice."""
    iv = best.interval
    return {
        "study": v.companion,
        "original_trial": best.original.number,
        "original_value": best.original.value,
        "original_rank": best.original_rank,
        "verified_rank": best.verified_rank,
        "seeds": best.seeds,
        "values": best.values,
        "failed_seeds": best.failed,
        "mean": best.mean,
        "std": best.std,
        "confidence": CONFIDENCE,
        "interval": list(iv) if iv else None,
        "configurations": len(v.verified),
        "rank_correlation": v.rank_correlation,
        "winners_curse": v.winners_curse,
    }
