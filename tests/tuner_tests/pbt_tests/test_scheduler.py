"""Exploit and explore (tuner.pbt.scheduler): truncation selection, perturbation, resampling, noise.

Pure functions on hand-made results, so each rule is checked where the right answer is
known: without exploit no bottom member would take a top member's checkpoint, without
explore its parameters would be the donor's own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.config.pbt_spec import PbtSpec
from tuner.config.spec import CategoricalParam, FloatParam, IntParam
from tuner.pbt.scheduler import (
    CONTINUE,
    EXPLOIT,
    KEPT,
    REPLACE,
    MemberResult,
    decide,
    draw,
    explore,
    perturb,
    truncation,
)

SPACE = {
    "learning_rate": FloatParam(type="float", low=1e-5, high=1e-2, log=True),
    "n_epochs": IntParam(type="int", low=2, high=20),
    "clip_range": CategoricalParam(type="categorical", choices=[0.1, 0.2, 0.3]),
}


def params(lr: float, epochs: int = 10, clip: float = 0.2) -> dict:
    return {"learning_rate": lr, "n_epochs": epochs, "clip_range": clip}


def population(values: list[float | None], se: float = 0.0) -> list[MemberResult]:
    """Member m's unit is trial 10 + m, with learning rate 1e-4 * (m + 1)."""
    return [
        MemberResult(m, 10 + m if v is not None else None, v, se, params(1e-4 * (m + 1)))
        for m, v in enumerate(values)
    ]


def pbt(**kw) -> PbtSpec:
    return PbtSpec(**{"population": 4, "interval": 1000, "quantile": 0.25, **kw})


def test_bottom_member_copies_a_top_member_and_perturbs_its_params():
    results = population([0.1, 0.5, 0.6, 0.9])
    decisions = decide(
        results, pbt(resample_probability=0.0), SPACE, maximize=True, rng=np.random.default_rng(0)
    )
    by_member = {d.member: d for d in decisions}
    worst = by_member[0]
    assert worst.action == EXPLOIT
    assert (worst.parent_member, worst.parent_trial) == (3, 13), "starts from the best's checkpoint"
    donor = results[3].params
    ratio = worst.params["learning_rate"] / donor["learning_rate"]
    assert math.isclose(ratio, 0.8) or math.isclose(ratio, 1.2), ratio
    assert worst.params["n_epochs"] in (8, 12)  # 10 * 0.8 or 10 * 1.2
    assert worst.params["clip_range"] in (0.1, 0.3), "a choice moves to a neighbour"
    assert set(worst.record["operations"].values()) <= {"*0.8", "*1.2", "shift -1", "shift +1"}
    assert worst.record["donor"] == 3 and worst.record["donor_value"] == 0.9
    for m in (1, 2, 3):  # the rest go on from their own checkpoint with their own params
        d = by_member[m]
        assert d.action == CONTINUE
        assert (d.parent_member, d.parent_trial, d.params) == (m, 10 + m, results[m].params)


def test_minimize_turns_the_ranking_around():
    results = population([0.1, 0.5, 0.6, 0.9])
    decisions = decide(results, pbt(), SPACE, maximize=False, rng=np.random.default_rng(0))
    assert {d.member: d.parent_member for d in decisions} == {0: 0, 1: 1, 2: 2, 3: 0}


def test_resample_draws_each_param_from_its_whole_range():
    rng = np.random.default_rng(1)
    seen = []
    for _ in range(200):
        new, ops = explore(params(1e-3), SPACE, pbt(resample_probability=1.0), rng)
        assert set(ops.values()) == {"resample"}
        assert 1e-5 <= new["learning_rate"] <= 1e-2
        assert 2 <= new["n_epochs"] <= 20 and isinstance(new["n_epochs"], int)
        seen.append(new)
    decades = {math.floor(math.log10(s["learning_rate"])) for s in seen}
    assert decades == {-5, -4, -3}, "log-uniform: every decade of the range comes up"
    assert {s["clip_range"] for s in seen} == {0.1, 0.2, 0.3}


def test_without_resampling_a_number_is_only_ever_perturbed():
    rng = np.random.default_rng(2)
    for _ in range(50):
        new, ops = explore(params(1e-3), SPACE, pbt(resample_probability=0.0), rng)
        assert "resample" not in ops.values()
        lr = new["learning_rate"]
        assert math.isclose(lr, 8e-4) or math.isclose(lr, 1.2e-3), lr


def test_perturbed_values_stay_in_range_and_on_the_grid():
    rng = np.random.default_rng(3)
    spec = pbt(perturb=[3.0])
    top = FloatParam(type="float", low=0.0, high=1.0, step=0.25)
    value, op = perturb(top, 0.5, spec, rng)
    assert (value, op) == (1.0, "*3"), "1.5 is cut to the high end"
    assert perturb(SPACE["n_epochs"], 9, spec, rng)[0] == 20
    small = PbtSpec(population=2, interval=10, perturb=[0.9])
    assert perturb(top, 0.5, small, rng)[0] == 0.5, "0.45 snaps to the grid of 0.25"
    assert perturb(SPACE["clip_range"], 0.3, spec, np.random.default_rng(0))[0] in (0.2, 0.3)
    for _ in range(100):
        assert top.low <= draw(top, rng) <= top.high
        assert draw(top, rng) in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_a_difference_within_the_noise_is_not_exploited():
    """Evaluations 0.1 apart with standard errors of 0.1: not beyond 1.96 combined errors."""
    results = population([0.40, 0.45, 0.48, 0.50], se=0.1)
    decisions = decide(results, pbt(), SPACE, maximize=True, rng=np.random.default_rng(0))
    worst = decisions[0]
    assert worst.action == KEPT and worst.parent_member == 0
    assert worst.record["threshold"] == pytest.approx(1.96 * math.sqrt(0.02))
    assert worst.record["difference"] == pytest.approx(0.1)
    ray_rule = decide(
        results, pbt(exploit_z=0.0), SPACE, maximize=True, rng=np.random.default_rng(0)
    )
    assert ray_rule[0].action == EXPLOIT, "exploit_z 0: any strict difference copies"


def test_equal_values_never_copy():
    results = population([0.5, 0.5, 0.5, 0.5])
    decisions = decide(
        results, pbt(exploit_z=0.0), SPACE, maximize=True, rng=np.random.default_rng(0)
    )
    assert all(d.parent_member == d.member for d in decisions)


def test_a_failed_member_is_replaced_by_a_copy_of_a_top_member():
    results = population([None, 0.5, 0.2, 0.9])
    decisions = decide(results, pbt(), SPACE, maximize=True, rng=np.random.default_rng(0))
    failed = decisions[0]
    assert failed.action == REPLACE and failed.parent_member == 3 and failed.parent_trial == 13
    assert decisions[2].action == EXPLOIT, "the worst of those with a value still exploits"


def test_nothing_left_to_copy_gives_no_decisions():
    assert decide(population([None, None]), pbt(), SPACE, maximize=True, rng=None) == []


def test_truncation_takes_at_most_half_and_breaks_ties_by_member():
    bottom, top = truncation(population([0.5, 0.5, 0.1]), 0.5, maximize=True)
    assert [r.member for r in bottom] == [2] and [r.member for r in top] == [0]
    assert truncation(population([0.3]), 0.5, maximize=True) == ([], [])


def test_the_same_seed_gives_the_same_decisions():
    results = population([0.1, 0.5, 0.6, 0.9, 0.05, 0.95, 0.3, 0.7])
    a = decide(results, pbt(quantile=0.5), SPACE, maximize=True, rng=np.random.default_rng(7))
    b = decide(results, pbt(quantile=0.5), SPACE, maximize=True, rng=np.random.default_rng(7))
    assert a == b
