"""``tuner report STUDY``: one self-contained HTML file and PNGs of the main figures.

Every figure comes from Optuna's own visualization module: the interactive ones
in the HTML from :mod:`optuna.visualization` (plotly, with plotly.js inlined so
the file opens anywhere, offline), the PNGs from
:mod:`optuna.visualization.matplotlib`. What the report adds is only what Optuna
does not draw: pruned trials marked in the intermediate-values plot, the table of
the top trials with their rating (when the study rates) and score per opponent, and the share of compute that
pruning saved (timesteps the pruned trials ran vs what finishing them would have
cost).
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
from tuner.commands.status import state_counts, top_trials
from tuner.storage.record import StudyAttr, TrialAttr

TOP_PARAMS = 3  # slice plots for this many of the most important parameters
PRUNED_COLOR = "#d62728"


def default_report_dir(runs_dir: Path, study_name: str) -> Path:
    """Where ``tuner report`` writes unless told: ``RUNS/reports/STUDY``."""
    return confined(runs_dir / "reports", study_name)


# --- numbers -------------------------------------------------------------------------


def trial_budget(study: optuna.Study) -> int | None:
    """Timesteps one trial gets when it is not pruned (from the study's recorded spec).

    With ``budget.seeds: S`` a trial trains S runs of ``total_timesteps`` each.
    """
    spec = study.user_attrs.get(StudyAttr.SPEC) or {}
    total = (spec.get("budget") or {}).get("total_timesteps")
    seeds = (spec.get("budget") or {}).get("seeds", 1)
    if isinstance(total, int) and total > 0:
        return total * (seeds if isinstance(seeds, int) and seeds > 0 else 1)
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

    @property
    def pngs(self) -> list[Path]:
        return [f.png for f in self.figures if f.png is not None]


def _trial_number(label: Any) -> int | None:
    """``Trial12`` (how Optuna names a trial's line in both plot backends) -> 12."""
    text = str(label or "")
    return int(text[5:]) if text.startswith("Trial") and text[5:].isdigit() else None


def _mark_pruned_plotly(fig: Any, pruned: set[int]) -> None:
    """Pruned trials dashed red with an X where they stopped; completed ones solid."""
    for trace in fig.data:
        number = _trial_number(trace.name)
        if number is None:
            continue
        if number in pruned:
            n = len(trace.x or ())
            trace.update(
                name=f"trial {number} (pruned)",
                line={"dash": "dash", "color": PRUNED_COLOR},
                marker={
                    "symbol": ["circle"] * (n - 1) + ["x"],
                    "size": [6] * (n - 1) + [12],
                    "color": PRUNED_COLOR,
                    "maxdisplayed": 0,
                },
            )
        else:
            trace.update(name=f"trial {number}", line={"dash": "solid"})
    fig.update_layout(
        showlegend=True,
        title="Intermediate values (pruned trials dashed red, X where pruned)",
    )


def _mark_pruned_matplotlib(ax: Any, pruned: set[int]) -> None:
    for line in ax.get_lines():
        number = _trial_number(line.get_label())
        if number is None:
            continue
        if number in pruned:
            line.set_linestyle("--")
            line.set_color(PRUNED_COLOR)
            line.set_label(f"trial {number} (pruned)")
            xs, ys = line.get_xdata(), line.get_ydata()
            if len(xs):
                ax.plot([xs[-1]], [ys[-1]], marker="x", markersize=10, color=PRUNED_COLOR)
        else:
            line.set_label(f"trial {number}")
    ax.set_title("Intermediate values (pruned trials dashed red, X where pruned)")
    ax.legend(loc="best", fontsize="small")


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
    """The report's figures in the order they appear, with the reason any cannot be drawn."""
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    with_steps = [t for t in trials if t.intermediate_values]
    params = top_params(study, importances)
    return [
        _FigureSpec(
            "optimization_history",
            "Optimization history",
            "Objective value of each completed trial and the best value so far.",
            None if complete else "no completed trial yet",
            lambda: vis.plot_optimization_history(study),
            lambda: vis_mpl.plot_optimization_history(study),
        ),
        _FigureSpec(
            "intermediate_values",
            "Intermediate values",
            "The strength each trial reported at each evaluation (step = timesteps): its Elo "
            "rating on the reference ladder, or its score, as the study's objective says. "
            f"Pruned trials ({len(pruned)}) are dashed red and end with an X where the pruner "
            "stopped them.",
            None if with_steps else "no trial has reported an intermediate value yet",
            lambda: vis.plot_intermediate_values(study),
            lambda: vis_mpl.plot_intermediate_values(study),
        ),
        _FigureSpec(
            "param_importances",
            "Parameter importances",
            "fANOVA importance of each parameter for the objective (seeded).",
            None if importances else "needs at least 2 completed trials with varying parameters",
            lambda: vis.plot_param_importances(study, evaluator=_importance_evaluator()),
            lambda: vis_mpl.plot_param_importances(study, evaluator=_importance_evaluator()),
        ),
        _FigureSpec(
            "parallel_coordinate",
            "Parallel coordinates",
            "Each completed trial as a line through its parameter values to its objective value.",
            None if complete else "no completed trial yet",
            lambda: vis.plot_parallel_coordinate(study),
            lambda: vis_mpl.plot_parallel_coordinate(study),
        ),
        _FigureSpec(
            "slice",
            "Slice plots of the top parameters",
            f"Objective value against each of the top parameters ({', '.join(params) or '-'}), "
            "coloured by trial number.",
            None if complete and params else "no completed trial with parameters yet",
            lambda: vis.plot_slice(study, params=params),
            lambda: vis_mpl.plot_slice(study, params=params),
        ),
    ]


def _draw(spec: _FigureSpec, pruned: set[int], out_dir: Path) -> Figure:
    """One figure drawn in both backends, its PNG saved; only the reason when it is missing.

    Only the intermediate-values plot gets the pruned-trial marks, which Optuna
    does not draw itself.
    """
    fig = Figure(spec.key, spec.title, spec.caption, missing=spec.missing)
    if spec.missing:
        return fig
    fig.plotly = spec.plotly()
    axes = spec.matplotlib()
    if spec.key == "intermediate_values":
        _mark_pruned_plotly(fig.plotly, pruned)
        _mark_pruned_matplotlib(axes, pruned)
    fig.plotly.update_layout(height=520 if spec.key != "slice" else 460)
    fig.png = _save_png(axes, out_dir / f"{spec.key}.png")
    return fig


def build_figures(
    study: optuna.Study, out_dir: Path, importances: dict[str, float]
) -> list[Figure]:
    """Each figure with its plotly version and PNG; a reason instead when it cannot be drawn.

    Matplotlib's Agg backend is chosen before Optuna's matplotlib module is
    imported, so the report draws on a machine without a display.
    """
    import matplotlib

    matplotlib.use("Agg")

    trials = study.get_trials(deepcopy=False)
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    specs = _figure_specs(study, trials, importances, pruned)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        return [_draw(spec, pruned, out_dir) for spec in specs]


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


def top_trials_table(study: optuna.Study, k: int) -> str:
    trials = top_trials(study, k)
    if not trials:
        return '<p class="missing">No completed trial yet.</p>'
    opponents: list[str] = []
    params: list[str] = []
    for t in trials:
        opponents.extend(o for o in t.user_attrs.get(TrialAttr.SCORES, {}) if o not in opponents)
        params.extend(p for p in t.params if p not in params)
    rated = any(TrialAttr.RATING in t.user_attrs for t in trials)
    headers = [
        "rank",
        "trial",
        "value",
        *(["rating [95% interval]"] if rated else []),
        *[f"score vs {o}" for o in opponents],
        *params,
        "timesteps",
        "steps/s",
        "duration",
    ]
    rows = []
    for rank, t in enumerate(trials, 1):
        scores = t.user_attrs.get(TrialAttr.SCORES, {})
        rows.append(
            [
                str(rank),
                str(t.number),
                f"{t.value:.4f}",
                *([_rating_cell(t.user_attrs.get(TrialAttr.RATING))] if rated else []),
                *[f"{scores[o]:.3f}" if o in scores else "-" for o in opponents],
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


def _head_html(study: optuna.Study, figures: list[Figure], verification: str) -> list[str]:
    """The document head and the study's summary, with a link to each section.

    plotly.js is inlined so that the one file opens anywhere, offline.
    """
    from plotly.offline import get_plotlyjs

    e = html.escape
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    counts_text = ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "no trials"
    spec = study.user_attrs.get(StudyAttr.SPEC) or {}
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
    return parts


def render_html(
    study: optuna.Study,
    figures: list[Figure],
    *,
    top_k: int,
    importances: dict[str, float],
    savings: PruningSavings | None,
    verification: str = "",
) -> str:
    """The whole report as one HTML document: summary, figures, then tables."""
    parts = _head_html(study, figures, verification)
    parts += _figures_html(figures, importances)
    parts += _tables_html(study, top_k, savings, verification)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(study: optuna.Study, out_dir: Path | str, *, top_k: int = 10):
    """Write ``report.html`` and one PNG per drawn figure to ``out_dir``; return the paths."""
    from tuner.commands.verify_report import section_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    importances = param_importances(study)
    figures = build_figures(study, out, importances)
    text = render_html(
        study,
        figures,
        top_k=top_k,
        importances=importances,
        savings=pruning_savings(study),
        verification=section_html(study, out),
    )
    path = out / "report.html"
    path.write_text(text, encoding="utf-8")
    return Report(path, figures)
