"""``tuner report STUDY``: one self-contained HTML file and PNGs of the main figures.

Every figure comes from Optuna's own visualization module: the interactive ones
in the HTML from :mod:`optuna.visualization` (plotly, with plotly.js inlined so
the file opens anywhere, offline), the PNGs from
:mod:`optuna.visualization.matplotlib`. What the report adds is only what Optuna
does not draw: pruned trials marked in the intermediate-values plot, the table of
the top trials with their rating (when the study rates) and score per opponent, and the share of compute that
pruning saved (timesteps the pruned trials ran vs what finishing them would have
cost), and the effect of each parameter with its interval (``effects.md`` too; built by
:mod:`tuner.commands.effects_report`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.base.runs import confined
from tuner.commands.effects_report import EffectsSection, write_effects
from tuner.commands.status import state_counts, top_trials
from tuner.config.loading import stored_spec_data
from tuner.storage.record import TrialAttr, perfect_text, shown_results

TOP_PARAMS = 3  # slice plots for this many of the most important parameters
PRUNED_COLOR = "#d62728"


def default_report_dir(runs_dir: Path, study_name: str) -> Path:
    """Where ``tuner report`` writes unless told: ``RUNS/reports/STUDY``."""
    return confined(runs_dir / "reports", study_name)


# --- numbers -------------------------------------------------------------------------


def trial_budget(study: optuna.Study) -> int | None:
    """Timesteps one trial gets when it is not pruned (from the study's recorded spec).

    With ``budget.runs: S`` a trial trains S runs of ``total_timesteps`` each.
    """
    budget = stored_spec_data(study).get("budget") or {}
    total, runs = budget.get("total_timesteps"), budget.get("runs", 1)
    if isinstance(total, int) and total > 0:
        return total * (runs if isinstance(runs, int) and runs > 0 else 1)
    done = [
        int(t.user_attrs[TrialAttr.TIMESTEPS])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialAttr.TIMESTEPS in t.user_attrs
    ]
    return max(done) if done else None


def trial_timesteps(trial: FrozenTrial) -> int:
    """Timesteps a trial trained: its user attr, else its last reported step."""
    if TrialAttr.TIMESTEPS in trial.user_attrs:
        return int(trial.user_attrs[TrialAttr.TIMESTEPS])
    return max(trial.intermediate_values, default=0)


@dataclass
class PruningSavings:
    """Compute spent by pruned trials against what finishing them would have cost."""

    budget: int  # timesteps of one full trial
    n_complete: int
    n_pruned: int
    pruned_timesteps: int  # what the pruned trials ran
    complete_timesteps: int

    @property
    def pruned_full_cost(self) -> int:
        return self.n_pruned * self.budget

    @property
    def saved(self) -> int:
        return max(0, self.pruned_full_cost - self.pruned_timesteps)

    @property
    def share_of_pruned(self) -> float:
        """Share of the pruned trials' full budget that was not spent."""
        return self.saved / self.pruned_full_cost if self.pruned_full_cost else 0.0

    @property
    def share_of_study(self) -> float:
        """Share of the study's compute without pruning (every trial to the end) saved."""
        full = self.complete_timesteps + self.pruned_full_cost
        return self.saved / full if full else 0.0


def pruning_savings(study: optuna.Study, budget: int | None = None) -> PruningSavings | None:
    budget = budget or trial_budget(study)
    if not budget:
        return None
    trials = study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return PruningSavings(
        budget=budget,
        n_complete=len(complete),
        n_pruned=len(pruned),
        pruned_timesteps=sum(trial_timesteps(t) for t in pruned),
        complete_timesteps=sum(trial_timesteps(t) or budget for t in complete),
    )


def _importance_evaluator() -> optuna.importance.BaseImportanceEvaluator:
    return optuna.importance.FanovaImportanceEvaluator(seed=0)


def param_importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances (seeded, so the report is reproducible); empty if not computable."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.importance.get_param_importances(study, evaluator=_importance_evaluator())
    except (ValueError, RuntimeError):
        return {}


def top_params(study: optuna.Study, importances: dict[str, float], k: int = TOP_PARAMS):
    """The ``k`` most important parameters; in search order when importances are unknown."""
    if importances:
        return list(importances)[:k]
    names: list[str] = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        names.extend(n for n in t.params if n not in names)
    return names[:k]


# --- figures -------------------------------------------------------------------------


@dataclass
class Figure:
    """One figure of the report: the plotly figure for the HTML, a PNG beside it."""

    key: str
    title: str
    caption: str
    plotly: Any = None
    png: Path | None = None
    missing: str | None = None  # why the figure could not be drawn


@dataclass
class Report:
    html: Path
    figures: list[Figure] = field(default_factory=list)
    effects: EffectsSection | None = None  # effects.md, its HTML and a one-line summary

    @property
    def pngs(self) -> list[Path]:
        return [f.png for f in self.figures if f.png is not None]


def _trial_number(label: Any) -> int | None:
    """``Trial12`` (how Optuna names a trial's line in both plot backends) -> 12."""
    text = str(label or "")
    return int(text[5:]) if text.startswith("Trial") and text[5:].isdigit() else None


# Past this many trials a legend entry per trial squeezes the plot into a strip (a
# 40-entry legend): the lines are coloured by state instead, and only the best are named.
LEGEND_LIMIT = 10
TOP_HIGHLIGHT = 3
TOP_COLORS = ("#2ca02c", "#ff7f0e", "#9467bd")
COMPLETE_COLOR = "#1f77b4"
OTHER_COLOR = "#999999"  # running or failed trials that reported a value


@dataclass(frozen=True)
class _Highlight:
    """How the intermediate-values figure marks trials: which were pruned, which are the
    best (best first, with their values), and whether there are too many to name each."""

    pruned: frozenset[int]
    complete: frozenset[int]
    top: tuple[tuple[int, float], ...] = ()
    many: bool = False

    def top_label(self, number: int) -> str | None:
        for rank, (n, value) in enumerate(self.top, 1):
            if n == number:
                return f"#{rank} trial {number} ({_fmt(value)})"
        return None

    @property
    def title(self) -> str:
        if not self.many:
            return "Intermediate values (pruned trials dashed red, X where pruned)"
        return (
            "Intermediate values (complete blue, pruned dashed red with an X, "
            f"the best {len(self.top)} in colour)"
        )


def _highlight(study: optuna.Study, trials: list[FrozenTrial]) -> _Highlight:
    pruned = frozenset(t.number for t in trials if t.state == TrialState.PRUNED)
    complete = frozenset(t.number for t in trials if t.state == TrialState.COMPLETE)
    many = sum(1 for t in trials if t.intermediate_values) > LEGEND_LIMIT
    top = tuple(
        (t.number, float(t.value))
        for t in top_trials(study, TOP_HIGHLIGHT)
        if t.intermediate_values and t.value is not None
    )
    return _Highlight(pruned, complete, top if many else (), many)


def _style(number: int, marks: _Highlight) -> tuple[str, str, float, float, str | None]:
    """(colour, dash, width, opacity, legend label) of a trial's line with many trials."""
    label = marks.top_label(number)
    if label is not None:
        rank = [n for n, _ in marks.top].index(number)
        return TOP_COLORS[rank % len(TOP_COLORS)], "solid", 3.0, 1.0, label
    if number in marks.pruned:
        return PRUNED_COLOR, "dash", 1.0, 0.45, None
    if number in marks.complete:
        return COMPLETE_COLOR, "solid", 1.0, 0.45, None
    return OTHER_COLOR, "dot", 1.0, 0.45, None


def _state_counts_label(marks: _Highlight, state: str) -> str:
    n = len(marks.pruned) if state == "pruned" else len(marks.complete)
    return f"{state} trials ({n})"


def _mark_pruned_plotly(fig: Any, marks: _Highlight) -> None:
    """Pruned trials dashed red with an X where they stopped; completed ones solid.

    With many trials, one legend entry per state and one per highlighted best trial;
    each line still names its trial on hover. The best are drawn last, on top.
    """
    tops: list[tuple[int, Any]] = []
    rest: list[Any] = []
    for trace in fig.data:
        number = _trial_number(trace.name)
        if number is None:
            rest.append(trace)
            continue
        n = len(trace.x or ())
        x_marker = {
            "symbol": ["circle"] * (n - 1) + ["x"],
            "size": [6] * (n - 1) + [12],
            "color": PRUNED_COLOR,
            "maxdisplayed": 0,
        }
        if not marks.many:
            if number in marks.pruned:
                trace.update(
                    name=f"trial {number} (pruned)",
                    line={"dash": "dash", "color": PRUNED_COLOR},
                    marker=x_marker,
                )
            else:
                trace.update(name=f"trial {number}", line={"dash": "solid"})
            continue
        color, dash, width, opacity, label = _style(number, marks)
        trace.update(
            name=label or f"trial {number}" + (" (pruned)" if number in marks.pruned else ""),
            line={"dash": dash, "color": color, "width": width},
            opacity=opacity,
            showlegend=label is not None,
        )
        if number in marks.pruned and label is None:
            trace.update(marker=x_marker)
        else:
            trace.update(marker={"color": color, "size": 5 if label is None else 7})
        if label is not None:
            tops.append(([n for n, _ in marks.top].index(number), trace))
        else:
            rest.append(trace)
    if marks.many:
        import plotly.graph_objects as go

        proxies = [
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=_state_counts_label(marks, state),
                line={"color": color, "dash": dash},
            )
            for state, color, dash in (
                ("complete", COMPLETE_COLOR, "solid"),
                ("pruned", PRUNED_COLOR, "dash"),
            )
        ]
        best_last = [trace for _, trace in sorted(tops, key=lambda pair: -pair[0])]
        fig.data = (*rest, *best_last)  # a permutation: plotly takes no new traces this way
        fig.add_traces(proxies)
    fig.update_layout(showlegend=True, title=marks.title)


def _mark_pruned_matplotlib(ax: Any, marks: _Highlight) -> None:
    from matplotlib.lines import Line2D

    tops: dict[int, Any] = {}
    for line in ax.get_lines():
        number = _trial_number(line.get_label())
        if number is None:
            continue
        xs, ys = line.get_xdata(), line.get_ydata()
        if not marks.many:
            if number in marks.pruned:
                line.set_linestyle("--")
                line.set_color(PRUNED_COLOR)
                line.set_label(f"trial {number} (pruned)")
                if len(xs):
                    ax.plot([xs[-1]], [ys[-1]], marker="x", markersize=10, color=PRUNED_COLOR)
            else:
                line.set_label(f"trial {number}")
            continue
        color, dash, width, opacity, label = _style(number, marks)
        line.set_color(color)
        line.set_linestyle({"solid": "-", "dash": "--", "dot": ":"}[dash])
        line.set_linewidth(width)
        line.set_alpha(opacity)
        line.set_label(label or "_nolegend_")
        line.set_zorder(3 if label else 2)
        if label:
            tops[number] = line
        elif number in marks.pruned and len(xs):
            ax.plot([xs[-1]], [ys[-1]], marker="x", markersize=7, color=PRUNED_COLOR, alpha=0.6)
    ax.set_title(marks.title)
    if not marks.many:
        ax.legend(loc="best", fontsize="small")
        return
    handles = [tops[n] for n, _ in marks.top if n in tops]
    handles += [
        Line2D([], [], color=COMPLETE_COLOR, label=_state_counts_label(marks, "complete")),
        Line2D(
            [], [], color=PRUNED_COLOR, linestyle="--", label=_state_counts_label(marks, "pruned")
        ),
    ]
    ax.legend(handles=handles, loc="best", fontsize="small")


def _save_png(axes: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np

    flat = np.atleast_1d(axes).flat
    fig = flat[0].figure
    width, height = fig.get_size_inches()
    fig.set_size_inches(max(width, 8.0, 4.0 * len(flat)), max(height, 5.0))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


class _FigureSpec(NamedTuple):
    """What one figure shows, and how each backend draws it.

    The drawing functions are thunks so that a figure that cannot be drawn yet
    (``missing`` says why) costs nothing and raises nothing.
    """

    key: str
    title: str
    caption: str
    missing: str | None
    plotly: Callable[[], Any]
    matplotlib: Callable[[], Any]


def _figure_specs(
    study: optuna.Study,
    trials: list[FrozenTrial],
    importances: dict[str, float],
    pruned: set[int],
) -> list[_FigureSpec]:
    """The report's figures in the order they appear, with the reason any cannot be drawn.

    Optuna's plotting modules are imported by the thunks, when a figure is drawn: a
    study with nothing to draw yet does not pay a second for them."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    with_steps = [t for t in trials if t.intermediate_values]
    params = top_params(study, importances)
    return [
        *_population_spec(study),
        _FigureSpec(
            "optimization_history",
            "Optimization history",
            "Objective value of each completed trial and the best value so far.",
            None if complete else "no completed trial yet",
            lambda: _vis().plot_optimization_history(study),
            lambda: _vis_mpl().plot_optimization_history(study),
        ),
        _FigureSpec(
            "intermediate_values",
            "Intermediate values",
            "The strength each trial reported at each evaluation (step = timesteps): its Elo "
            "rating on the reference ladder, or its score, as the study's objective says. "
            f"Pruned trials ({len(pruned)}) are dashed red and end with an X where the pruner "
            f"stopped them. With more than {LEGEND_LIMIT} trials the legend names only the "
            f"best {TOP_HIGHLIGHT}, in colour; the other lines are thin, blue for completed "
            "trials, and name their trial on hover.",
            None if with_steps else "no trial has reported an intermediate value yet",
            lambda: _vis().plot_intermediate_values(study),
            lambda: _vis_mpl().plot_intermediate_values(study),
        ),
        _FigureSpec(
            "param_importances",
            "Parameter importances",
            "fANOVA importance of each parameter for the objective (seeded).",
            None if importances else "needs at least 2 completed trials with varying parameters",
            lambda: _vis().plot_param_importances(study, evaluator=_importance_evaluator()),
            lambda: _vis_mpl().plot_param_importances(study, evaluator=_importance_evaluator()),
        ),
        _FigureSpec(
            "parallel_coordinate",
            "Parallel coordinates",
            "Each completed trial as a line through its parameter values to its objective value.",
            None if complete else "no completed trial yet",
            lambda: _vis().plot_parallel_coordinate(study),
            lambda: _vis_mpl().plot_parallel_coordinate(study),
        ),
        _FigureSpec(
            "slice",
            "Slice plots of the top parameters",
            f"Objective value against each of the top parameters ({', '.join(params) or '-'}), "
            "coloured by trial number.",
            None if complete and params else "no completed trial with parameters yet",
            lambda: _vis().plot_slice(study, params=params),
            lambda: _vis_mpl().plot_slice(study, params=params),
        ),
    ]


def _vis() -> Any:
    import optuna.visualization

    return optuna.visualization


def _vis_mpl() -> Any:
    """Optuna's matplotlib module, on the Agg backend (chosen before the import), so the
    report draws on a machine without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna.visualization.matplotlib

    return optuna.visualization.matplotlib


def _population_spec(study: optuna.Study) -> list[_FigureSpec]:
    """The population figure, first, for a population-based study (tuner.pbt.figure)."""
    from tuner.pbt import figure

    curves, exploits = figure.population_data(study)
    if not curves and figure.pbt_spec(study) is None:
        return []
    return [
        _FigureSpec(
            "population",
            "Population",
            "Each member's value at the end of each interval over its timesteps; a dashed "
            f"line and a star where a member copied another's weights ({len(exploits)} "
            "exploits; hover for what was explored). A member's own line breaks there.",
            None if any(curves.values()) else "no unit has completed yet",
            lambda: figure.plotly_figure(study),
            lambda: figure.matplotlib_axes(study),
        )
    ]


def _draw(spec: _FigureSpec, marks: _Highlight, out_dir: Path) -> Figure:
    """One figure drawn in both backends, its PNG saved; only the reason when it is missing.

    Only the intermediate-values plot gets the pruned-trial marks, which Optuna
    does not draw itself (and, with many trials, colours by state and the best named).
    """
    fig = Figure(spec.key, spec.title, spec.caption, missing=spec.missing)
    if spec.missing:
        return fig
    fig.plotly = spec.plotly()
    axes = spec.matplotlib()
    if spec.key == "intermediate_values":
        _mark_pruned_plotly(fig.plotly, marks)
        _mark_pruned_matplotlib(axes, marks)
    fig.plotly.update_layout(height=520 if spec.key != "slice" else 460)
    fig.png = _save_png(axes, out_dir / f"{spec.key}.png")
    return fig


def build_figures(
    study: optuna.Study, out_dir: Path, importances: dict[str, float]
) -> list[Figure]:
    """Each figure with its plotly version and PNG; a reason instead when it cannot be drawn."""
    trials = study.get_trials(deepcopy=False)
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    specs = _figure_specs(study, trials, importances, pruned)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        marks = _highlight(study, trials)
        return [_draw(spec, marks, out_dir) for spec in specs]


# --- HTML ----------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def _duration(trial: FrozenTrial) -> str:
    if trial.datetime_start and trial.datetime_complete:
        return f"{(trial.datetime_complete - trial.datetime_start).total_seconds():.1f}s"
    return "-"


def _param_cell(trial: FrozenTrial, name: str) -> str:
    if name not in trial.params:
        return "-"
    shown = _fmt(trial.params[name])
    real = trial.user_attrs.get(TrialAttr.REAL_PARAMS, {}).get(name)
    if real is not None and _fmt(real) != shown:
        shown += f" ({_fmt(real)})"
    return shown


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 0) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i >= numeric_from else ""}">{e(c)}</td>' for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rating_cell(rating: dict[str, float] | None) -> str:
    if not rating:
        return "-"
    return f"{rating['rating']:.0f} [{rating['low']:.0f}, {rating['high']:.0f}]"


def _perfect_cell(perfect: dict[str, float] | None) -> str:
    """``optimal 0.804 regret 1.07 blunders 0.045``: the share of optimal moves, the mean
    regret in seeds and the blunder rate on the solved set."""
    return perfect_text(perfect, wide=False) if perfect else "-"


def _score_cell(result: dict) -> str:
    """``0.940 [0.903, 0.965] 200``: the score, its interval and its game count."""
    return (
        f"{result['score']:.3f} [{result['ci_low']:.3f}, {result['ci_high']:.3f}] {result['games']}"
    )


def top_trials_table(study: optuna.Study, k: int) -> str:
    trials = top_trials(study, k)
    if not trials:
        return '<p class="missing">No completed trial yet.</p>'
    opponents: list[str] = []
    params: list[str] = []
    for t in trials:
        opponents.extend(o for o in shown_results(t.user_attrs) if o not in opponents)
        params.extend(p for p in t.params if p not in params)
    rated = any(TrialAttr.RATING in t.user_attrs for t in trials)
    perfect = any(TrialAttr.PERFECT in t.user_attrs for t in trials)
    headers = [
        "rank",
        "trial",
        "value",
        *(["rating [95% interval]"] if rated else []),
        *(["perfect play (solved set)"] if perfect else []),
        *[f"score vs {o} [95% interval] games" for o in opponents],
        *params,
        "timesteps",
        "steps/s",
        "duration",
    ]
    rows = []
    for rank, t in enumerate(trials, 1):
        scores = shown_results(t.user_attrs)
        rows.append(
            [
                str(rank),
                str(t.number),
                f"{t.value:.4f}",
                *([_rating_cell(t.user_attrs.get(TrialAttr.RATING))] if rated else []),
                *([_perfect_cell(t.user_attrs.get(TrialAttr.PERFECT))] if perfect else []),
                *[_score_cell(scores[o]) if o in scores else "-" for o in opponents],
                *[_param_cell(t, p) for p in params],
                str(t.user_attrs.get(TrialAttr.TIMESTEPS, "-")),
                _fmt(t.user_attrs.get(TrialAttr.STEPS_PER_SECOND, "-")),
                _duration(t),
            ]
        )
    return _table(headers, rows)


def savings_html(savings: PruningSavings | None) -> str:
    if savings is None:
        return (
            '<p class="missing">Unknown trial budget: no recorded spec and no finished trial.</p>'
        )
    if savings.n_pruned == 0:
        return (
            f"<p>No trial was pruned yet, so pruning saved nothing: {savings.n_complete} "
            f"completed trials ran {savings.complete_timesteps:,} timesteps.</p>"
        )
    return (
        f'<p class="headline">Pruning saved <b>{savings.share_of_study:.1%}</b> of the compute '
        "this study would have used with every trial run to the end.</p>"
        + _table(
            ["", "value"],
            [
                ["budget per trial (timesteps)", f"{savings.budget:,}"],
                ["completed trials", str(savings.n_complete)],
                ["timesteps of completed trials", f"{savings.complete_timesteps:,}"],
                ["pruned trials", str(savings.n_pruned)],
                ["timesteps the pruned trials ran", f"{savings.pruned_timesteps:,}"],
                ["timesteps to finish them (pruned x budget)", f"{savings.pruned_full_cost:,}"],
                ["timesteps saved", f"{savings.saved:,}"],
                ["saved, share of the pruned trials' budget", f"{savings.share_of_pruned:.1%}"],
                [
                    "saved, share of the whole study without pruning",
                    f"{savings.share_of_study:.1%}",
                ],
            ],
            numeric_from=1,
        )
    )


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
     margin-top: 1.6em; }
.meta { color: #555; } .missing { color: #a00; font-style: italic; }
.headline { font-size: 1.15em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.5em 0 1.5em 0; } figcaption { color: #555; font-size: 0.9em; }
nav a { margin-right: 1em; }
"""


def _best_text(study: optuna.Study) -> str:
    """The best trial in one line, its parameters shown as the top-trials table shows them."""
    best = top_trials(study, 1)
    if not best:
        return "no completed trial yet"
    b = best[0]
    shown = ", ".join(f"{k} = {_param_cell(b, k)}" for k in b.params)
    return f"trial {b.number}, value {b.value:.4f} ({shown})"


def _head_html(
    study: optuna.Study, figures: list[Figure], verification: str, effects: str = ""
) -> list[str]:
    """The document head and the study's summary, with a link to each section.

    plotly.js is inlined so that the one file opens anywhere, offline.
    """
    from plotly.offline import get_plotlyjs

    e = html.escape
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    counts_text = ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "no trials"
    spec = stored_spec_data(study)
    generated = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Study {e(study.study_name)}: tuning report</title>",
        f"<style>{CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>Study {e(study.study_name)}</h1>",
        f'<p class="meta">{e(spec.get("description", ""))}</p>',
        f'<p class="meta">Direction: {e(study.direction.name.lower())}. '
        f"Trials: {len(trials)} ({e(counts_text)}). Generated {e(generated)}.</p>",
        f"<p><b>Best:</b> {e(_best_text(study))}</p>",
        "<nav>"
        + "".join(f'<a href="#{f.key}">{e(f.title)}</a>' for f in figures)
        + ('<a href="#effects">Effects</a>' if effects else "")
        + '<a href="#top-trials">Top trials</a><a href="#pruning">Pruning</a>'
        + ('<a href="#verification">Verification</a>' if verification else "")
        + "</nav>",
    ]


def _figures_html(figures: list[Figure], importances: dict[str, float]) -> list[str]:
    """Each figure interactive with its caption and PNG link, or why it was not drawn.

    The importances also go in a table under their figure: exact numbers a bar
    chart does not give.
    """
    e = html.escape
    parts: list[str] = []
    for f in figures:
        parts.append(f'<h2 id="{f.key}">{e(f.title)}</h2>')
        if f.missing or f.plotly is None:
            parts.append(f'<p class="missing">Not drawn: {e(f.missing or "unavailable")}.</p>')
            continue
        div = f.plotly.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"fig-{f.key}", default_width="100%"
        )
        link = f' <a href="{e(f.png.name)}">PNG</a>' if f.png else ""
        parts.append(f"<figure>{div}<figcaption>{e(f.caption)}{link}</figcaption></figure>")
        if f.key == "param_importances" and importances:
            parts.append(
                _table(
                    ["parameter", "importance"],
                    [[k, f"{v:.3f}"] for k, v in importances.items()],
                    numeric_from=1,
                )
            )
    return parts


def _tables_html(
    study: optuna.Study, top_k: int, savings: PruningSavings | None, verification: str
) -> list[str]:
    """The sections after the figures: top trials, pruning savings, and verification if any."""
    parts = [
        f'<h2 id="top-trials">Top {top_k} trials</h2>',
        "<p>Completed trials by objective value, with the rating (Elo on the reference "
        "ladder, where the study rates) and the score ((wins + draws/2) / games) per opponent "
        "at their final evaluation; a rating's opponents are the ladder members it was "
        "played against. A parameter's real value is in brackets where it differs from the "
        "sampled choice.</p>",
        top_trials_table(study, top_k),
        '<h2 id="pruning">Compute saved by pruning</h2>',
        savings_html(savings),
    ]
    if verification:
        parts += ['<h2 id="verification">Verification with fresh seeds</h2>', verification]
    from tuner.pbt.summary import members_table_html

    members = members_table_html(study)
    if members:
        parts += [
            '<h2 id="members">Population members</h2>',
            "<p>Each member's latest completed unit: its value, the parameters it trained "
            "with, and its lineage (which member trained its weights in each interval; "
            "`tuner export` writes the best member's schedule).</p>",
            members,
        ]
    return parts


def render_html(
    study: optuna.Study,
    figures: list[Figure],
    *,
    top_k: int,
    importances: dict[str, float],
    savings: PruningSavings | None,
    verification: str = "",
    effects: str = "",
) -> str:
    """The whole report as one HTML document: summary, figures, effects, then tables."""
    parts = _head_html(study, figures, verification, effects)
    parts += _figures_html(figures, importances)
    parts += [effects] if effects else []
    parts += _tables_html(study, top_k, savings, verification)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(study: optuna.Study, out_dir: Path | str, *, top_k: int = 10):
    """Write ``report.html``, one PNG per drawn figure and ``effects.md`` to ``out_dir``."""
    from tuner.commands.verify.report_section import section_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    importances = param_importances(study)
    figures = build_figures(study, out, importances)
    effects = write_effects(study, out)
    text = render_html(
        study,
        figures,
        top_k=top_k,
        importances=importances,
        savings=pruning_savings(study),
        verification=section_html(study, out),
        effects=effects.html,
    )
    path = out / "report.html"
    path.write_text(text, encoding="utf-8")
    return Report(path, figures, effects)
