"""The report's population figure: each member's value over timesteps, with its exploits.

One line per member through the values of its units (x: the member's timesteps at the
unit's end). Where a member copied another (exploit, or the replacement of a failed
member) its own line breaks, a dashed grey line runs from the donor's point to the
member's next point (the weights' real history) and a star marks the event, its hover
text saying who copied whom and what was explored.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from tuner.pbt.population import Population
from tuner.pbt.summary import Event, events, pbt_spec
from tuner.storage.record import TrialAttr

Point = tuple[int, float]
EVENT_COLOR = "#7f7f7f"


def _point(unit: optuna.trial.FrozenTrial) -> Point:
    return int(unit.user_attrs.get(TrialAttr.PBT_TIMESTEP, 0)), float(unit.value or math.nan)


def member_curves(population: Population, exploits: list[Event]) -> dict[int, list[Point | None]]:
    """Member -> its points in order, ``None`` where the line breaks (an exploit)."""
    broken = {(e.member, e.interval) for e in exploits}
    curves: dict[int, list[Point | None]] = {}
    for m in range(population.size):
        points: list[Point | None] = []
        for k in range(population.intervals):
            unit = population.unit(m, k)
            if unit is None:
                continue
            if (m, k) in broken and points:
                points.append(None)
            points.append(_point(unit))
        curves[m] = points
    return curves


def _event_text(e: Event) -> str:
    ops = (e.unit.user_attrs.get(TrialAttr.PBT_DECISION) or {}).get("operations", {})
    explored = ", ".join(f"{k} {v}" for k, v in ops.items())
    return f"member {e.member} copied member {e.donor} at interval {e.interval} ({e.action}); {explored}"


def population_data(study: optuna.Study) -> tuple[dict[int, list[Point | None]], list[Event]]:
    """The curves and events of a PBT study (empty for any other study)."""
    spec = pbt_spec(study)
    if spec is None:
        return {}, []
    population = Population.of(study.get_trials(deepcopy=False), spec)
    exploits = events(population)
    return member_curves(population, exploits), exploits


def plotly_figure(study: optuna.Study) -> Any:
    import plotly.graph_objects as go

    curves, exploits = population_data(study)
    fig = go.Figure()
    for m, points in curves.items():
        xs = [p[0] if p else None for p in points]
        ys = [p[1] if p else None for p in points]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"member {m}"))
    for e in exploits:
        if e.donor_unit is None:
            continue
        (x0, y0), (x1, y1) = _point(e.donor_unit), _point(e.unit)
        fig.add_trace(
            go.Scatter(
                x=[x0, x1],
                y=[y0, y1],
                mode="lines+markers",
                line={"dash": "dash", "color": EVENT_COLOR},
                marker={"symbol": ["circle-open", "star"], "size": [6, 13], "color": EVENT_COLOR},
                hovertext=_event_text(e),
                hoverinfo="text",
                showlegend=False,
            )
        )
    fig.update_layout(
        title="Population: value over timesteps (dashed, star: an exploit)",
        xaxis_title="timesteps of the member",
        yaxis_title="value",
    )
    return fig


def matplotlib_axes(study: optuna.Study) -> Any:
    import matplotlib.pyplot as plt

    curves, exploits = population_data(study)
    fig, ax = plt.subplots(figsize=(9, 5))
    for m, points in curves.items():
        xs = [p[0] if p else math.nan for p in points]
        ys = [p[1] if p else math.nan for p in points]
        ax.plot(xs, ys, marker="o", label=f"member {m}")
    for i, e in enumerate(exploits):
        if e.donor_unit is None:
            continue
        (x0, y0), (x1, y1) = _point(e.donor_unit), _point(e.unit)
        ax.plot([x0, x1], [y0, y1], linestyle="--", color=EVENT_COLOR)
        ax.plot([x1], [y1], marker="*", markersize=13, color=EVENT_COLOR, linestyle="none",
                label="exploit" if i == 0 else None)  # fmt: skip
    ax.set_title("Population: value over timesteps (dashed, star: an exploit)")
    ax.set_xlabel("timesteps of the member")
    ax.set_ylabel("value")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return ax
