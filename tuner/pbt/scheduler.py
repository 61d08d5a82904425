"""Exploit and explore: what each member of a population does next. Pure functions.

Population-based training (Jaderberg et al. 2017; Ray Tune's ``PopulationBasedTraining``)
ranks the members by their latest evaluation and, truncation selection, lets each
member of the bottom ``quantile`` copy a member of the top ``quantile`` (exploit: its
weights, optimizer state and parameters) and then change those parameters (explore:
each number multiplied by one of the ``perturb`` factors, each choice moved to a
neighbouring choice, or, with ``resample_probability``, any parameter drawn afresh from
its range). Members in between go on unchanged.

Noise. One evaluation of an RL agent is a noisy measurement, and copying a member that
was only luckier throws away a line of training for nothing. Ray Tune copies on any
difference; here a bottom member copies a top one only when the difference of their
values exceeds ``exploit_z`` standard errors of the difference (each value's standard
error comes from its evaluation's interval: the rating's profile interval, or the
scores' intervals over opening pairs). The members of one generation are evaluated on
the same openings, so their errors are positively correlated and the test, which treats
them as independent, is conservative. A bottom member with no member significantly
above it is ``kept``: it goes on with its own weights and parameters. ``exploit_z: 0``
gives Ray's rule (any strict difference; ties never copy).

A member whose unit failed (diverged, or out of retries) has no checkpoint to go on
from: it is ``replaced`` by a copy of a top member, explored as an exploit is.

Everything random is drawn from the ``rng`` passed in, in member order, so the planner
(:mod:`tuner.pbt.units`) gets the same decisions from the same results on any worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner.config.pbt_spec import PbtSpec
from tuner.config.spec import CategoricalParam, FloatParam, IntParam

Param = FloatParam | IntParam | CategoricalParam

CONTINUE = "continue"  # not in the bottom quantile: goes on as it is
KEPT = "kept"  # in the bottom quantile, but no top member is better beyond the noise
EXPLOIT = "exploit"  # copies a top member's weights and explores its parameters
REPLACE = "replace"  # its unit failed: a copy of a top member takes its place


@dataclass(frozen=True)
class MemberResult:
    """A member's unit of the latest generation: its value, or None when it failed."""

    member: int
    trial: int | None
    value: float | None
    se: float = 0.0  # the standard error of ``value``
    params: Mapping[str, Any] = field(default_factory=dict)  # as Optuna stores them


@dataclass(frozen=True)
class Decision:
    """What ``member`` does in the next interval: start from ``parent``'s unit with ``params``."""

    member: int
    action: str
    parent_member: int
    parent_trial: int
    params: dict[str, Any]
    record: dict[str, Any]  # JSON-ready: the action, the donor, the values, the operations


def truncation(
    results: Sequence[MemberResult], quantile: float, maximize: bool
) -> tuple[list[MemberResult], list[MemberResult]]:
    """(bottom, top): the worst and best ``ceil(n * quantile)`` of the members with a value.

    At most half the members are in each, so no member is in both; ties are broken by
    member number (the lower one ranks higher), so the split is reproducible.
    """
    done = [(r.value, r) for r in results if r.value is not None]
    sign = 1.0 if maximize else -1.0
    # worst first
    ranked = [r for _, r in sorted(done, key=lambda vr: (sign * vr[0], -vr[1].member))]
    k = min(math.ceil(len(ranked) * quantile), len(ranked) // 2)
    return ranked[:k], ranked[len(ranked) - k :] if k else []


def difference_test(
    top: MemberResult, bottom: MemberResult, z: float, maximize: bool
) -> tuple[bool, float, float]:
    """(whether ``top`` is better beyond the noise, the difference, the threshold it had to pass)."""
    assert top.value is not None and bottom.value is not None
    diff = (top.value - bottom.value) * (1.0 if maximize else -1.0)
    threshold = z * math.sqrt(top.se**2 + bottom.se**2)
    return diff > threshold, diff, threshold


def _snap(value: float, low: float, high: float, step: float | None) -> float:
    """``value`` within [low, high], on the grid ``low + k * step`` when there is one."""
    if step is None:
        return min(max(value, low), high)
    top = math.floor((high - low) / step + 1e-9)
    k = min(max(round((value - low) / step), 0), top)
    return low + k * step


def draw(param: Param, rng: np.random.Generator) -> Any:
    """A fresh value from the parameter's range (uniform, or log-uniform with ``log``)."""
    if isinstance(param, CategoricalParam):
        names = param.option_names
        return names[int(rng.integers(len(names)))]
    low, high = float(param.low), float(param.high)
    u = rng.uniform(math.log(low), math.log(high)) if param.log else rng.uniform(low, high)
    value = math.exp(u) if param.log else u
    if isinstance(param, IntParam):
        return int(_snap(round(value), param.low, param.high, param.step))
    return float(_snap(value, low, high, param.step))


def perturb(param: Param, value: Any, pbt: PbtSpec, rng: np.random.Generator) -> tuple[Any, str]:
    """A number times one of the factors (kept in range); a choice moved to a neighbour."""
    if isinstance(param, CategoricalParam):
        names = param.option_names
        shift = int(rng.choice([-1, 1]))
        index = min(max(names.index(value) + shift, 0), len(names) - 1)
        return names[index], f"shift {shift:+d}"
    factor = float(rng.choice(pbt.perturb))
    if isinstance(param, IntParam):
        return int(_snap(round(value * factor), param.low, param.high, param.step)), f"*{factor:g}"
    return float(_snap(value * factor, param.low, param.high, param.step)), f"*{factor:g}"


def explore(
    params: Mapping[str, Any],
    space: Mapping[str, Param],
    pbt: PbtSpec,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], dict[str, str]]:
    """New parameters from ``params``: each resampled with ``resample_probability``, else
    perturbed. Returns them with the operation done to each (``resample``, ``*1.2``, ``shift +1``)."""
    out = dict(params)
    operations: dict[str, str] = {}
    for name, param in space.items():
        if rng.random() < pbt.resample_probability or name not in params:
            out[name], operations[name] = draw(param, rng), "resample"
        else:
            out[name], operations[name] = perturb(param, params[name], pbt, rng)
    return out, operations


def _copy(
    member: int,
    action: str,
    donor: MemberResult,
    own: MemberResult,
    space: Mapping[str, Param],
    pbt: PbtSpec,
    rng: np.random.Generator,
    test: tuple[bool, float, float] | None = None,
) -> Decision:
    """``member`` takes ``donor``'s checkpoint and explores its parameters."""
    assert donor.trial is not None
    params, operations = explore(donor.params, space, pbt, rng)
    record: dict[str, Any] = {
        "action": action,
        "donor": donor.member,
        "donor_trial": donor.trial,
        "donor_value": donor.value,
        "own_value": own.value,
        "operations": operations,
    }
    if test is not None:
        record |= {"difference": test[1], "threshold": test[2]}
    return Decision(member, action, donor.member, donor.trial, params, record)


def _stay(result: MemberResult, action: str, note: dict[str, Any] | None = None) -> Decision:
    """``member`` goes on from its own checkpoint with its own parameters."""
    assert result.trial is not None
    record = {"action": action, "own_value": result.value, **(note or {})}
    return Decision(result.member, action, result.member, result.trial, dict(result.params), record)


def decide(
    results: Sequence[MemberResult],
    pbt: PbtSpec,
    space: Mapping[str, Param],
    *,
    maximize: bool,
    rng: np.random.Generator,
) -> list[Decision]:
    """Each member's next unit, in member order; empty when no member has a value left."""
    done = [r for r in results if r.value is not None]
    if not done:
        return []
    bottom, top = truncation(results, pbt.quantile, maximize)
    best = top or done  # one member left: the failed ones copy it
    bottom_members = {r.member for r in bottom}
    decisions = []
    for r in sorted(results, key=lambda r: r.member):
        if r.value is None:
            donor = best[int(rng.integers(len(best)))]
            decisions.append(_copy(r.member, REPLACE, donor, r, space, pbt, rng))
            continue
        if r.member not in bottom_members:
            decisions.append(_stay(r, CONTINUE))
            continue
        tests = {t.member: difference_test(t, r, pbt.exploit_z, maximize) for t in top}
        better = [t for t in top if tests[t.member][0]]
        if not better:
            nearest = max(top, key=lambda t: tests[t.member][1])
            _, diff, threshold = tests[nearest.member]
            note = {"best_donor": nearest.member, "difference": diff, "threshold": threshold}
            decisions.append(_stay(r, KEPT, note))
            continue
        donor = better[int(rng.integers(len(better)))]
        decisions.append(_copy(r.member, EXPLOIT, donor, r, space, pbt, rng, tests[donor.member]))
    return decisions
