"""The effect sizes of ``tuner report``'s Effects section, on numbers whose answer is known.

A categorical choice with a real effect must come out with an interval that excludes 0,
a parameter with none with one that includes 0; each interval is checked against
SciPy's where SciPy has one, and the bootstrap is reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tuner.commands.effects import (
    NO_EFFECT,
    CategoricalEffect,
    NumericEffect,
    Param,
    Skipped,
    common_rung,
    mean_interval,
    param_effects,
    spearman,
    welch_difference,
)

ARCH = Param("net_arch", True, ("small", "large", "deep"))
LR = Param("learning_rate", False, log=True)


def synthetic_rows(n: int = 60, seed: int = 1) -> list[tuple[dict, float]]:
    """``large`` adds 0.15 to the value, the learning rate nothing; noise sd 0.05."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arch = ARCH.choices[i % 3]
        lr = float(10 ** rng.uniform(-5, -2.5))
        value = 0.4 + (0.15 if arch == "large" else 0.0) + rng.normal(0, 0.05)
        rows.append(({"net_arch": arch, "learning_rate": lr}, value))
    return rows


def test_a_known_choice_effect_is_shown_and_a_null_parameter_is_not() -> None:
    arch, lr = param_effects([ARCH, LR], synthetic_rows(), maximize=True)
    assert isinstance(arch, CategoricalEffect) and isinstance(lr, NumericEffect)

    assert arch.best == "large"
    assert arch.rows[0].label == "large"
    assert [r.stats.n for r in arch.rows] == [20, 20, 20]
    for row in arch.rows[1:]:
        assert row.vs_best is not None and row.vs_best.interval is not None
        assert row.vs_best.value == pytest.approx(0.15, abs=0.04)
        assert row.vs_best.interval.low > 0  # the effect, shown
    assert arch.verdict.startswith("large better than ")

    assert lr.rho is not None and abs(lr.rho) < 0.3
    assert lr.rho_interval is not None and lr.rho_interval.includes_zero
    assert lr.upper_minus_lower.interval is not None
    assert lr.upper_minus_lower.interval.includes_zero
    assert lr.verdict == NO_EFFECT
    assert lr.lower.n + lr.upper.n == 60 and abs(lr.lower.n - lr.upper.n) <= 1


def test_a_numeric_effect_is_shown_with_its_sign() -> None:
    rng = np.random.default_rng(3)
    rows = [
        ({"gamma": g}, 0.5 - 2 * (g - 0.95) + rng.normal(0, 0.01))
        for g in rng.uniform(0.9, 0.999, 30)
    ]
    (gamma,) = param_effects([Param("gamma", False)], rows, maximize=True)
    assert isinstance(gamma, NumericEffect)
    assert gamma.rho is not None and gamma.rho < -0.8
    assert gamma.rho_interval is not None and gamma.rho_interval.high < 0
    assert gamma.upper_minus_lower.value < 0
    assert gamma.verdict == "higher gamma, lower objective (worse)"


def test_a_minimized_objective_calls_the_lowest_mean_best() -> None:
    arch, _ = param_effects([ARCH, LR], synthetic_rows(), maximize=False)
    assert isinstance(arch, CategoricalEffect)
    assert arch.best != "large"
    assert arch.rows[-1].label == "large"  # the worst last
    vs_large = arch.rows[-1].vs_best
    assert vs_large is not None and vs_large.interval is not None
    assert vs_large.interval.high < 0  # best minus large: lower is better


def test_intervals_agree_with_scipy() -> None:
    a, b = [0.52, 0.61, 0.47, 0.58, 0.55], [0.41, 0.44, 0.52, 0.39]
    m = mean_interval(a)
    low, high = stats.t.interval(0.95, len(a) - 1, loc=np.mean(a), scale=stats.sem(a))
    assert m.interval is not None
    assert (m.interval.low, m.interval.high) == pytest.approx((low, high))

    d = welch_difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.value == pytest.approx(np.mean(a) - np.mean(b))
    assert d.interval is not None
    assert (d.interval.low, d.interval.high) == pytest.approx((ci.low, ci.high))

    x, y = [1, 2, 2, 3, 5, 8], [0.1, 0.3, 0.2, 0.2, 0.9, 0.5]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert mean_interval([0.5]).interval is None
    assert welch_difference([0.5], [0.4, 0.3]).interval is None


def test_the_bootstrap_is_reproducible_and_each_parameter_has_its_own_seed() -> None:
    rows = synthetic_rows()
    first = param_effects([LR], rows, maximize=True)[0]
    again = param_effects([ARCH, LR], rows, maximize=True)[1]
    other_seed = param_effects([LR], rows, maximize=True, seed=1)[0]
    assert isinstance(first, NumericEffect) and isinstance(again, NumericEffect)
    assert isinstance(other_seed, NumericEffect)
    assert first.rho_interval == again.rho_interval
    assert first.rho_interval != other_seed.rho_interval


def test_a_conditional_or_unvaried_parameter_is_skipped_with_its_reason() -> None:
    rows = [({"lr_schedule": "linear", "target_kl": 0.01 * (i + 1)}, 0.1 * i) for i in range(2)]
    rows += [({"lr_schedule": "constant"}, 0.5) for _ in range(4)]
    schedule, kl, fixed = param_effects(
        [
            Param("lr_schedule", True, ("constant", "linear")),
            Param("target_kl", False),
            Param("n_epochs", False),
        ],
        rows,
        maximize=True,
    )
    assert isinstance(schedule, CategoricalEffect) and schedule.n == 6
    assert schedule.best == "constant"  # 4 trials, vs 2
    assert kl == Skipped("target_kl", "sampled in 2 trials, too few")
    assert fixed == Skipped("n_epochs", "sampled in 0 trials, too few")
    ones = [({"k": 3}, float(i)) for i in range(5)]
    assert param_effects([Param("k", False)], ones, maximize=True) == [
        Skipped("k", "only one value sampled")
    ]


def test_an_int_parameter_with_ties_splits_into_the_closest_halves() -> None:
    rows = [({"plies": p}, float(i)) for i, p in enumerate([0, 0, 0, 1, 2, 4, 6, 6])]
    (plies,) = param_effects([Param("plies", False)], rows, maximize=True)
    assert isinstance(plies, NumericEffect)
    assert (plies.lower.n, plies.upper.n) == (4, 4)  # <= 1 | > 1, not <= 0 (3 | 5)
    assert plies.lower_range == (0, 1) and plies.upper_range == (2, 6)


def test_the_common_rung_is_the_earliest_evaluation_most_trials_reached() -> None:
    steps = [
        [125_056, 250_048, 375_040],
        [125_120, 250_240],
        [125_056],
        [125_056],
        [],  # reported nothing: not counted
    ]
    rung = common_rung(steps)
    assert rung is not None
    assert (rung.index, rung.n, rung.n_total) == (1, 4, 4)
    assert (rung.step, rung.step_low, rung.step_high) == (125_056, 125_056, 125_120)
    assert common_rung([[], []]) is None


def test_the_verdict_names_what_is_shown_and_says_plainly_what_is_not() -> None:
    groups = {
        "x": [1.0, 1.1, 0.9, 1.05],
        "y": [1.0, 0.9, 1.1, 0.95],
        "z": [0.0, 0.1, -0.1, 0.05],
        "w": [0.5],
    }
    rows = [({"c": c}, v) for c, vs in groups.items() for v in vs]
    (c,) = param_effects([Param("c", True, tuple(groups))], rows, maximize=True)
    assert isinstance(c, CategoricalEffect)
    assert [r.label for r in c.rows] == ["x", "y", "w", "z"]
    assert c.verdict == (
        f"x better than z; against y: {NO_EFFECT}; w: too few trials for an interval"
    )
