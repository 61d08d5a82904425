"""A PBT study's trials read as a population: which member's which interval stands where.

Each unit of work (member ``m``'s interval ``k``) is an Optuna trial whose system attrs
name ``m`` and ``k``; a retry copies them, so a unit may have several trials: failed
attempts and the one that runs or ran. Read here, by the planner under the claim lock
and by status, report and export, from the same rules:

- ``complete``: one attempt completed (its value and checkpoint are the member's at k);
- ``pending``: an attempt is waiting or running;
- ``failed``: every attempt finished without a result and none is pending (out of
  retries, diverged): the member has no checkpoint at k and is replaced at k + 1;
- ``missing``: not queued yet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from tuner.config.spec import StudySpec
from tuner.pbt.scheduler import MemberResult
from tuner.storage.record import TrialAttr, TrialSystemAttr

COMPLETE, PENDING, FAILED, MISSING = "complete", "pending", "failed", "missing"
Z95 = 1.959964


def unit_key(trial: FrozenTrial) -> tuple[int, int] | None:
    """(member, interval) of a unit trial; None for a trial that is not one."""
    attrs = trial.system_attrs
    if TrialSystemAttr.PBT_MEMBER not in attrs or TrialSystemAttr.PBT_INTERVAL not in attrs:
        return None
    return int(attrs[TrialSystemAttr.PBT_MEMBER]), int(attrs[TrialSystemAttr.PBT_INTERVAL])


def is_pbt_study(spec_data: Any) -> bool:
    """Whether a recorded spec (a study's ``spec`` user attr) asks for PBT."""
    return isinstance(spec_data, dict) and isinstance(spec_data.get("pbt"), dict)


@dataclass
class Population:
    """The units of a PBT study by (member, interval), every attempt kept."""

    size: int
    intervals: int
    attempts: dict[tuple[int, int], list[FrozenTrial]] = field(default_factory=dict)

    @classmethod
    def of(cls, trials: list[FrozenTrial], spec: StudySpec) -> Population:
        pbt = spec.pbt
        assert pbt is not None, "not a PBT study"
        attempts: dict[tuple[int, int], list[FrozenTrial]] = defaultdict(list)
        for t in trials:
            key = unit_key(t)
            if key is not None:
                attempts[key].append(t)
        return cls(pbt.population, pbt.intervals(spec.budget.total_timesteps), dict(attempts))

    def state(self, member: int, interval: int) -> str:
        tries = self.attempts.get((member, interval), [])
        if not tries:
            return MISSING
        if any(t.state == TrialState.COMPLETE for t in tries):
            return COMPLETE
        if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in tries):
            return PENDING
        return FAILED

    def unit(self, member: int, interval: int) -> FrozenTrial | None:
        """The attempt that completed member ``member``'s interval, if one did."""
        for t in self.attempts.get((member, interval), []):
            if t.state == TrialState.COMPLETE:
                return t
        return None

    def done(self, interval: int) -> bool:
        """Every member's unit of ``interval`` finished, with a result or for good."""
        return all(self.state(m, interval) in (COMPLETE, FAILED) for m in range(self.size))

    def next_to_queue(self) -> int | None:
        """The first interval some member has no unit of yet; None when all are queued."""
        for k in range(self.intervals):
            if any(self.state(m, k) == MISSING for m in range(self.size)):
                return k
        return None

    def latest_done(self) -> int | None:
        """The last interval every member finished; None before the first."""
        latest = None
        for k in range(self.intervals):
            if not self.done(k):
                break
            latest = k
        return latest

    def results(self, interval: int, spec: StudySpec) -> list[MemberResult]:
        """Each member's value at ``interval`` (None where its unit failed), for the scheduler."""
        out = []
        for m in range(self.size):
            t = self.unit(m, interval)
            if t is None or t.value is None or not math.isfinite(t.value):
                out.append(MemberResult(m, None, None))
                continue
            se = float(t.user_attrs.get(TrialAttr.PBT_VALUE_SE, 0.0))
            out.append(MemberResult(m, t.number, float(t.value), se, dict(t.params)))
        return out

    def finished_units(self) -> list[FrozenTrial]:
        """Every completed unit, by interval then member."""
        units = [self.unit(m, k) for k in range(self.intervals) for m in range(self.size)]
        return [u for u in units if u is not None]
