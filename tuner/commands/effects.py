"""What each searched parameter did to the objective, and by how much: effect sizes with
95% intervals, from (parameters, value) rows alone.

Pure: no Optuna, no files. :mod:`tuner.commands.effects_report` reads the trials (at a
common rung, so that pruned trials count) and writes the tables; the arithmetic here is
tested on numbers whose answer is known.

- A categorical parameter: the mean objective per choice with its Student-t interval, and
  the best choice minus each other choice with a Welch interval.
- A numeric one: Spearman's rank correlation with a bootstrap interval (trials resampled
  with replacement, seeded per parameter, so a report is reproducible and one parameter's
  interval does not move when another is added), and the mean objective in the lower
  and upper half of the values sampled, split where the halves are closest in size,
  with the difference and its Welch interval. Ranks and a split by count are the same
  on a log scale as on a linear one, so a log-uniform parameter needs nothing apart.

An interval that includes zero says no effect was shown at this sample size; that is
the verdict then, in those words.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
N_BOOT = 2000
MIN_TRIALS = 3  # a parameter sampled by fewer trials is listed as skipped
NO_EFFECT = "no effect shown at this sample size"
NO_INTERVAL = "too few trials for an interval"

Values = Sequence[float] | np.ndarray  # numbers, as a list or an array


@dataclass(frozen=True)
class Param:
    """A searched parameter as the statistics need it: its kind, and its choices in order."""

    name: str
    categorical: bool
    choices: tuple[Any, ...] = ()
    log: bool = False


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


@dataclass(frozen=True)
class Mean:
    """A group's mean objective with its t-interval (``None`` below 2 trials)."""

    n: int
    mean: float
    interval: Interval | None


@dataclass(frozen=True)
class Difference:
    value: float
    interval: Interval | None  # Welch; None unless both groups have 2 trials or more


@dataclass(frozen=True)
class ChoiceRow:
    label: str
    stats: Mean
    vs_best: Difference | None  # best choice minus this one; None for the best itself


@dataclass(frozen=True)
class CategoricalEffect:
    name: str
    n: int
    best: str
    rows: tuple[ChoiceRow, ...]
    maximize: bool

    @property
    def verdict(self) -> str:
        """Which choices the best is shown to beat; the rest said plainly."""
        intervals = {r.label: r.vs_best.interval for r in self.rows if r.vs_best is not None}
        if not any(intervals.values()):
            return NO_INTERVAL
        shown = [label for label, iv in intervals.items() if iv and not iv.includes_zero]
        if not shown:
            return f"{NO_EFFECT} ({self.best} leads, but every interval includes 0)"
        text = f"{self.best} better than {', '.join(shown)}"
        null = [label for label, iv in intervals.items() if iv and iv.includes_zero]
        if null:
            text += f"; against {', '.join(null)}: {NO_EFFECT}"
        few = [label for label, iv in intervals.items() if iv is None]
        if few:
            text += f"; {', '.join(few)}: {NO_INTERVAL}"
        return text


@dataclass(frozen=True)
class NumericEffect:
    name: str
    n: int
    log: bool
    rho: float | None  # None when the values or the objective do not vary
    rho_interval: Interval | None
    lower: Mean  # values <= split
    upper: Mean  # values > split
    lower_range: tuple[float, float]
    upper_range: tuple[float, float]
    upper_minus_lower: Difference
    maximize: bool

    @property
    def verdict(self) -> str:
        if self.rho is None or self.rho_interval is None:
            return NO_INTERVAL
        if self.rho_interval.includes_zero:
            return NO_EFFECT
        higher = "higher" if self.rho > 0 else "lower"
        better = (self.rho > 0) == self.maximize
        return f"higher {self.name}, {higher} objective ({'better' if better else 'worse'})"


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


Effect = CategoricalEffect | NumericEffect | Skipped


# --- intervals -------------------------------------------------------------------------


def _t_quantile(df: float) -> float:
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.5 + CONFIDENCE / 2, df))


def mean_interval(values: Values) -> Mean:
    """The mean with its Student-t interval at ``CONFIDENCE`` (none below 2 values)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return Mean(len(x), mean, None)
    half = _t_quantile(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return Mean(len(x), mean, Interval(mean - half, mean + half))


def welch_difference(a: Values, b: Values) -> Difference:
    """mean(a) - mean(b) with Welch's t-interval (unequal variances)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return Difference(diff, None)
    vx, vy = float(x.var(ddof=1)) / len(x), float(y.var(ddof=1)) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0.0:
        return Difference(diff, Interval(diff, diff))
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = _t_quantile(df) * se
    return Difference(diff, Interval(diff - half, diff + half))


def _rank_rows(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return np.asarray(rankdata(a, axis=-1), dtype=float)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair; NaN where a row does not vary."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=-1) / denom, np.nan)


def spearman(x: Values, y: Values) -> float | None:
    """Spearman's rho (Pearson's r of the ranks, ties averaged); None if either is constant."""
    r = float(_pearson_rows(_rank_rows(np.asarray(x, float)), _rank_rows(np.asarray(y, float))))
    return None if math.isnan(r) else r


def bootstrap_spearman(
    x: Values, y: Values, rng: np.random.Generator, n_boot: int = N_BOOT
) -> Interval | None:
    """Percentile interval of rho over ``n_boot`` resamples of the (x, y) pairs.

    Resamples in which x or y does not vary have no rho and are left out; with fewer
    than 4 pairs, or most resamples left out, there is no interval.
    """
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    if len(xs) < 4:
        return None
    idx = rng.integers(0, len(xs), size=(n_boot, len(xs)))
    rhos = _pearson_rows(_rank_rows(xs[idx]), _rank_rows(ys[idx]))
    rhos = rhos[~np.isnan(rhos)]
    if len(rhos) < n_boot // 2:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(rhos, [tail, 100 - tail])
    return Interval(float(low), float(high))


# --- effects ---------------------------------------------------------------------------


def trials_text(n: int) -> str:
    return f"{n} trial{'' if n == 1 else 's'}"


def choice_label(choice: Any) -> str:
    return "None" if choice is None else str(choice)


def _categorical(
    param: Param, pairs: list[tuple[Any, float]], maximize: bool
) -> CategoricalEffect | Skipped:
    labels = [choice_label(c) for c in param.choices]
    for value, _ in pairs:
        if choice_label(value) not in labels:
            labels.append(choice_label(value))
    groups = {label: [v for c, v in pairs if choice_label(c) == label] for label in labels}
    groups = {label: vs for label, vs in groups.items() if vs}
    if len(groups) < 2:
        return Skipped(param.name, "only one choice sampled")
    means = {label: mean_interval(vs) for label, vs in groups.items()}
    # The best among choices with 2 trials or more (one lucky trial does not lead).
    pool = [label for label in groups if len(groups[label]) >= 2] or list(groups)
    sign = 1.0 if maximize else -1.0
    best = max(pool, key=lambda label: sign * means[label].mean)
    rows = [ChoiceRow(best, means[best], None)]
    others = sorted(
        (label for label in groups if label != best), key=lambda label: -sign * means[label].mean
    )
    rows += [
        ChoiceRow(label, means[label], welch_difference(groups[best], groups[label]))
        for label in others
    ]
    return CategoricalEffect(param.name, len(pairs), best, tuple(rows), maximize)


def _split(values: np.ndarray) -> float:
    """The split value (lower half: values <= it) that makes the halves closest in size."""
    distinct = np.unique(values)[:-1]  # the largest value cannot split
    return float(min(distinct, key=lambda s: abs(2 * int((values <= s).sum()) - len(values))))


def _numeric(
    param: Param, pairs: list[tuple[Any, float]], maximize: bool, rng: np.random.Generator
) -> NumericEffect | Skipped:
    x = np.array([float(p) for p, _ in pairs])
    y = np.array([v for _, v in pairs])
    if len(np.unique(x)) < 2:
        return Skipped(param.name, "only one value sampled")
    rho = spearman(x, y)
    split = _split(x)
    low, high = x <= split, x > split
    return NumericEffect(
        name=param.name,
        n=len(pairs),
        log=param.log,
        rho=rho,
        rho_interval=bootstrap_spearman(x, y, rng) if rho is not None else None,
        lower=mean_interval(y[low]),
        upper=mean_interval(y[high]),
        lower_range=(float(x[low].min()), float(x[low].max())),
        upper_range=(float(x[high].min()), float(x[high].max())),
        upper_minus_lower=welch_difference(y[high], y[low]),
        maximize=maximize,
    )


def param_effects(
    params: Sequence[Param],
    rows: Sequence[tuple[Mapping[str, Any], float]],
    *,
    maximize: bool,
    seed: int = 0,
) -> list[Effect]:
    """The effect of each parameter on the value, from (parameters, value) rows.

    A row without the parameter (a conditional one not sampled there) does not count
    for it. The bootstrap of each parameter has its own generator, seeded by ``seed``
    and the parameter's name.
    """
    effects: list[Effect] = []
    for param in params:
        pairs = [(p[param.name], float(v)) for p, v in rows if param.name in p]
        pairs = [(x, v) for x, v in pairs if math.isfinite(v)]
        if len(pairs) < MIN_TRIALS:
            effects.append(Skipped(param.name, f"sampled in {trials_text(len(pairs))}, too few"))
        elif param.categorical:
            effects.append(_categorical(param, pairs, maximize))
        else:
            rng = np.random.default_rng([seed, zlib.crc32(param.name.encode())])
            effects.append(_numeric(param, pairs, maximize, rng))
    return effects


# --- the common rung -------------------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    """An evaluation (by its order in each trial) and the trials that reached it."""

    index: int  # 1 = each trial's first evaluation
    n: int  # trials that reached it
    n_total: int  # trials that reported any
    step: int  # the median step of this evaluation over those trials
    step_low: int
    step_high: int


def common_rung(steps_per_trial: Sequence[Sequence[int]]) -> Rung | None:
    """The earliest evaluation reached by the most trials.

    Evaluations are matched by their order in each trial, not by their exact step: a
    trial's evaluation lands on the first rollout past each multiple of the evaluation
    interval, so the same evaluation's step differs a little with ``n_steps`` and
    ``n_envs``. A pruned trial stops after one of them, so the count of trials falls
    from the first evaluation on; the earliest one with the largest count is the first
    at which most trials have a value.
    """
    steps = [sorted(s) for s in steps_per_trial if s]
    if not steps:
        return None
    deepest = max(len(s) for s in steps)
    counts = [sum(1 for s in steps if len(s) > k) for k in range(deepest)]
    k = counts.index(max(counts))
    at = sorted(s[k] for s in steps if len(s) > k)
    return Rung(k + 1, len(at), len(steps), int(np.median(at)), at[0], at[-1])
