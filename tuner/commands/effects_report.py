"""The report's *Effects* section: what each searched parameter did, and by how much.

Reads a study's trials, hands (parameters, value) rows to :mod:`tuner.commands.effects`
and writes ``effects.md`` (plain markdown tables, to commit and quote in README) beside
``report.html``, which gets the same tables.

Hyperband and the other pruners stop most trials early, so a final value exists only
for the survivors, the trials the pruner already judged good: comparing those alone
would compare winners. The first table therefore compares every finished trial (complete
or pruned) at a common rung, its intermediate value at the earliest evaluation that most
trials reached; the second, when there are at least ``MIN_COMPLETE`` completed trials,
their final values.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from tuner.commands.effects import (
    CONFIDENCE,
    N_BOOT,
    NO_EFFECT,
    CategoricalEffect,
    Difference,
    Effect,
    Interval,
    Mean,
    NumericEffect,
    Param,
    Rung,
    Skipped,
    common_rung,
    param_effects,
    trials_text,
)

MIN_COMPLETE = 6  # fewer completed trials: no table of final values
SEED = 0
FILE_NAME = "effects.md"


@dataclass
class Analysis:
    """The effects over one set of values (at the common rung, or the final values)."""

    title: str
    short: str  # for the terminal's one line
    about: str
    n: int
    effects: list[Effect]


@dataclass
class StudyEffects:
    study: str
    maximize: bool
    rung: Rung | None = None
    analyses: list[Analysis] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a table is missing

    @property
    def summary(self) -> str:
        """One line for the terminal: what the section holds, or why it is empty."""
        if not self.analyses:
            return self.notes[0] if self.notes else "no effects"
        return "effects " + "; ".join(f"{a.short}, {trials_text(a.n)}" for a in self.analyses)


def search_params(trials: list[FrozenTrial]) -> list[Param]:
    """Each searched parameter once, in the order trials first sampled it."""
    seen: dict[str, Param] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if name in seen:
                continue
            if isinstance(dist, CategoricalDistribution):
                seen[name] = Param(name, True, tuple(dist.choices))
            elif isinstance(dist, FloatDistribution | IntDistribution):
                seen[name] = Param(name, False, log=dist.log)
    return list(seen.values())


def _steps(trial: FrozenTrial) -> list[int]:
    """A trial's evaluation steps in order (a step that is not a number is not one)."""
    return sorted(s for s in trial.intermediate_values if isinstance(s, int))


def _rung_rows(
    trials: list[FrozenTrial],
) -> tuple[Rung | None, list[tuple[dict[str, Any], float]]]:
    """The common rung of the finished (complete or pruned) trials, and their value there."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    rung = common_rung([_steps(t) for t in finished])
    if rung is None:
        return None, []
    rows = []
    for t in finished:
        steps = _steps(t)
        if len(steps) >= rung.index:
            rows.append((t.params, float(t.intermediate_values[steps[rung.index - 1]])))
    return rung, rows


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _rung_text(rung: Rung) -> str:
    spread = (
        f"; {rung.step_low:,} to {rung.step_high:,} across trials"
        if rung.step_low != rung.step_high
        else ""
    )
    return f"the {_ordinal(rung.index)} evaluation (step {rung.step:,}{spread})"


def study_effects(study: optuna.Study, seed: int = SEED) -> StudyEffects:
    """Both analyses of a study's trials, or the notes saying why one is missing."""
    trials = study.get_trials(deepcopy=False)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    out = StudyEffects(study.study_name, maximize)
    params = search_params(trials)
    if not params:
        out.notes.append("no searched parameter in any trial yet: no effects to show")
        return out
    rung, rows = _rung_rows(trials)
    out.rung = rung
    if rung is None:
        out.notes.append("no finished trial has reported an intermediate value yet")
    else:
        out.analyses.append(
            Analysis(
                f"At the common rung: {_rung_text(rung)}",
                f"at {_rung_text(rung)}",
                f"Each finished trial's (complete or pruned) intermediate value at "
                f"{_rung_text(rung)}, the earliest evaluation that most trials reached: "
                f"{rung.n} of the {rung.n_total} finished trials that reported one. Pruned "
                "trials count here, so the comparison is not among the pruner's survivors "
                "only.",
                len(rows),
                param_effects(params, rows, maximize=maximize, seed=seed),
            )
        )
    complete = [
        (t.params, float(t.value))
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None
    ]
    if len(complete) >= MIN_COMPLETE:
        out.analyses.append(
            Analysis(
                "Completed trials' final values",
                "over completed trials' final values",
                f"The final value of each of the {len(complete)} completed trials: what the "
                "objective says at the full budget, but only over the trials the pruner let "
                "finish.",
                len(complete),
                param_effects(params, complete, maximize=maximize, seed=seed),
            )
        )
    else:
        out.notes.append(
            f"{trials_text(len(complete))} completed: fewer than {MIN_COMPLETE}, so no table of "
            "final values"
        )
    return out


# --- tables ----------------------------------------------------------------------------


def _digits(analysis: Analysis) -> int:
    """Decimals for objective values: 0 for ratings (hundreds), 3 for scores (0..1)."""
    scale = 0.0
    for e in analysis.effects:
        if isinstance(e, CategoricalEffect):
            scale = max([scale, *(abs(r.stats.mean) for r in e.rows)])
        elif isinstance(e, NumericEffect):
            scale = max(scale, abs(e.lower.mean), abs(e.upper.mean))
    return 0 if scale >= 100 else 1 if scale >= 10 else 3


def _iv(iv: Interval | None, d: int, signed: bool = False) -> str:
    if iv is None:
        return "-"
    f = f"{{:{'+' if signed else ''}.{d}f}}"
    return f"[{f.format(iv.low)}, {f.format(iv.high)}]"


def _mean_cell(m: Mean, d: int) -> str:
    return f"{m.mean:.{d}f}" + (f" {_iv(m.interval, d)}" if m.interval else "")


def _diff_cell(diff: Difference | None, d: int) -> str:
    if diff is None:
        return "-"
    if diff.interval is None:
        return f"{diff.value:+.{d}f} (no interval)"
    zero = " (includes 0)" if diff.interval.includes_zero else ""
    return f"{diff.value:+.{d}f} {_iv(diff.interval, d, signed=True)}{zero}"


def _g(x: float) -> str:
    return f"{x:.3g}"


def categorical_table(effects: list[Effect], d: int) -> tuple[list[str], list[list[str]]]:
    headers = [
        "parameter",
        "choice",
        "n",
        "mean [95% interval]",
        "best minus this [95% interval]",
        "verdict",
    ]
    rows: list[list[str]] = []
    for e in effects:
        if not isinstance(e, CategoricalEffect):
            continue
        for i, r in enumerate(e.rows):
            rows.append(
                [
                    e.name if i == 0 else "",
                    r.label + (" (best)" if r.vs_best is None else ""),
                    str(r.stats.n),
                    _mean_cell(r.stats, d),
                    _diff_cell(r.vs_best, d),
                    e.verdict if i == 0 else "",
                ]
            )
    return headers, rows


def numeric_table(effects: list[Effect], d: int) -> tuple[list[str], list[list[str]]]:
    headers = [
        "parameter",
        "n",
        "Spearman rho [95% interval]",
        "lower half: range, n, mean",
        "upper half: range, n, mean",
        "upper minus lower [95% interval]",
        "verdict",
    ]
    rows: list[list[str]] = []
    for e in effects:
        if not isinstance(e, NumericEffect):
            continue
        rho = "-" if e.rho is None else f"{e.rho:+.2f} {_iv(e.rho_interval, 2, signed=True)}"
        if e.rho_interval is not None and e.rho_interval.includes_zero:
            rho += " (includes 0)"
        lo, hi = e.lower_range, e.upper_range
        rows.append(
            [
                e.name + (" (log)" if e.log else ""),
                str(e.n),
                rho,
                f"{_g(lo[0])}..{_g(lo[1])}, {e.lower.n}, {_mean_cell(e.lower, d)}",
                f"{_g(hi[0])}..{_g(hi[1])}, {e.upper.n}, {_mean_cell(e.upper, d)}",
                _diff_cell(e.upper_minus_lower, d),
                e.verdict,
            ]
        )
    return headers, rows


def _skipped(effects: list[Effect]) -> str:
    skipped = [e for e in effects if isinstance(e, Skipped)]
    return "; ".join(f"{e.name}: {e.reason}" for e in skipped)


def _method(fx: StudyEffects) -> str:
    direction = "higher" if fx.maximize else "lower"
    return (
        f"Objective: the study's value ({direction} is better). Intervals are "
        f"{CONFIDENCE:.0%}: Student-t for a mean, Welch for a difference of means, and a "
        f"bootstrap ({N_BOOT:,} resamples of the trials, seeded) for Spearman's rho. "
        f"Where an interval includes 0 the table says so: {NO_EFFECT}. A numeric "
        "parameter's halves are split at the value that makes them closest in size. With "
        "many parameters, about one interval in twenty excludes 0 by chance alone."
    )


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(headers), "| " + " | ".join("---" for _ in headers) + " |", *map(line, rows)]


def _sections(analysis: Analysis) -> list[tuple[str, list[str], list[list[str]]]]:
    d = _digits(analysis)
    out = []
    for kind, (headers, rows) in (
        ("Categorical parameters", categorical_table(analysis.effects, d)),
        ("Numeric parameters", numeric_table(analysis.effects, d)),
    ):
        if rows:
            out.append((kind, headers, rows))
    return out


def effects_markdown(fx: StudyEffects) -> str:
    """The section as markdown: a title, the method, then each analysis's tables."""
    if not fx.analyses:
        return f"Effects of study {fx.study}: {fx.summary}.\n"
    lines = [f"# Effects on the objective: study {fx.study}", "", _method(fx)]
    for a in fx.analyses:
        lines += ["", f"## {a.title}", "", a.about]
        for kind, headers, rows in _sections(a):
            lines += ["", f"### {kind}", "", *_md_table(headers, rows)]
        if _skipped(a.effects):
            lines += ["", f"Not estimated: {_skipped(a.effects)}."]
    lines += [f"\n{n[0].upper()}{n[1:]}." for n in fx.notes]
    return "\n".join(lines) + "\n"


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def effects_html(fx: StudyEffects, md_name: str = FILE_NAME) -> str:
    """The same section for report.html, under ``<h2 id="effects">``."""
    e = html.escape
    parts = ['<h2 id="effects">Effects of each parameter</h2>']
    if not fx.analyses:
        parts.append(f'<p class="missing">{e(fx.summary)}.</p>')
        return "\n".join(parts)
    parts.append(
        f"<p>What each searched parameter did to the objective, and by how much. "
        f'{e(_method(fx))} The same tables: <a href="{e(md_name)}">{e(md_name)}</a>.</p>'
    )
    for a in fx.analyses:
        parts += [f"<h3>{e(a.title)}</h3>", f"<p>{e(a.about)}</p>"]
        for kind, headers, rows in _sections(a):
            parts += [f"<h4>{e(kind)}</h4>", _html_table(headers, rows)]
        if _skipped(a.effects):
            parts.append(f"<p>Not estimated: {e(_skipped(a.effects))}.</p>")
    parts += [f'<p class="missing">{e(n[0].upper() + n[1:])}.</p>' for n in fx.notes]
    return "\n".join(parts)


@dataclass
class EffectsSection:
    path: Path
    html: str
    summary: str


def write_effects(study: optuna.Study, out_dir: Path) -> EffectsSection:
    """Write ``effects.md`` into ``out_dir``; return it with the HTML section."""
    fx = study_effects(study)
    path = out_dir / FILE_NAME
    path.write_text(effects_markdown(fx), encoding="utf-8")
    return EffectsSection(path, effects_html(fx), fx.summary)
