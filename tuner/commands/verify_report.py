"""The report's verification section: original vs verified rank, and the winner's curse.

A figure (plotly in the HTML, a PNG beside it) puts each verified configuration's
original single-seed value next to its values on fresh seeds and their mean with
its interval, in the order of the original ranking; a table gives both ranks;
the headline says how far the original best fell and how well the two rankings
agree (Spearman's rho). A study without a verification says that each of its
values is one seed.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import optuna

from tuner.commands.verify import CONFIDENCE, Verification, base_name, companion_name, summarize


def _label(c: Any) -> str:
    return f"trial {c.original.number} (#{c.original_rank})"


def plotly_figure(v: Verification) -> Any:
    import plotly.graph_objects as go

    labels = [_label(c) for c in v.configs]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=[c.original.value for c in v.configs],
            mode="markers",
            name="original (one seed)",
            marker={"symbol": "diamond", "size": 12, "color": "#d62728"},
        )
    )
    seeds_x = [_label(c) for c in v.configs for _ in c.values]
    seeds_y = [value for c in v.configs for value in c.values]
    fig.add_trace(
        go.Scatter(
            x=seeds_x,
            y=seeds_y,
            mode="markers",
            name="fresh seeds",
            marker={"size": 6, "color": "#7f7f7f", "opacity": 0.6},
        )
    )
    done = [c for c in v.configs if c.mean is not None]
    fig.add_trace(
        go.Scatter(
            x=[_label(c) for c in done],
            y=[c.mean for c in done],
            mode="markers",
            name=f"verified mean, {CONFIDENCE:.0%} interval",
            marker={"size": 11, "color": "#1f77b4"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(c.interval[1] - c.mean) if c.interval else 0 for c in done],
                "arrayminus": [(c.mean - c.interval[0]) if c.interval else 0 for c in done],
            },
        )
    )
    fig.update_layout(
        height=460,
        xaxis_title="configuration, in the order of the original ranking",
        yaxis_title="objective value",
    )
    return fig


def save_png(v: Verification, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(v.configs)), 4.5))
    xs = list(range(len(v.configs)))
    ax.scatter(xs, [c.original.value for c in v.configs], marker="D", color="#d62728", zorder=3)
    for x, c in zip(xs, v.configs, strict=True):
        ax.scatter([x] * c.n, c.values, s=12, color="#7f7f7f", alpha=0.6)
        if c.mean is not None:
            lo, hi = c.interval or (c.mean, c.mean)
            ax.errorbar(
                [x], [c.mean], yerr=[[c.mean - lo], [hi - c.mean]], fmt="o", color="#1f77b4"
            )
    ax.set_xticks(xs, [_label(c) for c in v.configs], rotation=20)
    ax.set_ylabel("objective value")
    ax.set_title("original (red diamond) vs fresh seeds (grey) and their mean (blue)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def table_html(v: Verification) -> str:
    e = html.escape
    head = [
        "trial",
        "original rank",
        "original value (one seed)",
        "verified rank",
        "seeds done",
        "mean",
        "std",
        f"{CONFIDENCE:.0%} interval",
        "values per seed",
        "failed",
        "pending",
    ]
    rows = []
    for c in v.configs:
        iv = c.interval
        rows.append(
            [
                str(c.original.number),
                str(c.original_rank),
                _fmt(c.original.value),
                str(c.verified_rank or "-"),
                str(c.n),
                _fmt(c.mean),
                _fmt(c.std),
                f"[{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "-",
                ", ".join(f"{x:.3f}" for x in c.values) or "-",
                str(c.failed),
                str(c.pending),
            ]
        )
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{e(cell)}</td>' for cell in r) + "</tr>" for r in rows
    )
    heads = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def section_html(study: optuna.Study, out_dir: Path) -> str:
    """The section's HTML (its figure inlined, its PNG written to ``out_dir``)."""
    e = html.escape
    if base_name(study.study_name) is not None:
        return (
            "<p>This is a companion study of verify jobs: the section is in the report of "
            f"{e(base_name(study.study_name) or '')}.</p>"
        )
    v = summarize(study)
    if v is None or not v.configs:
        return (
            '<p class="missing">Not verified: every value in this report comes from one '
            "training run (one seed), and the best trial is partly the luckiest. "
            f"<code>tuner verify {e(study.study_name)} --top K --seeds S</code> re-trains the "
            f"top K configurations with fresh seeds (jobs in {e(companion_name(study.study_name))})."
            "</p>"
        )
    best = v.configs[0]
    rho = v.rank_correlation
    curse = v.winners_curse
    parts = [
        f'<p class="headline">The original best, trial {best.original.number} '
        f"({_fmt(best.original.value)} on one seed), scored "
        f"<b>{_fmt(best.mean)}</b> on average over {best.n} fresh seeds: a fall of "
        f"<b>{_fmt(curse)}</b> (the winner's curse, measured). Spearman rank correlation "
        f"between the original and the verified ranking of {len(v.verified)} configurations: "
        f"<b>{_fmt(rho)}</b>"
        + (" (needs 3 verified configurations)" if rho is None else "")
        + f". Mean fall over all of them: {_fmt(v.mean_drop)}.</p>",
    ]
    if v.pending:
        parts.append(
            f'<p class="missing">{v.pending} verify jobs are still waiting or running '
            f"(<code>tuner tune {e(v.companion)}</code>).</p>"
        )
    fig = plotly_figure(v)
    div = fig.to_html(
        full_html=False, include_plotlyjs=False, div_id="fig-verification", default_width="100%"
    )
    png = save_png(v, out_dir / "verification.png")
    parts.append(
        f"<figure>{div}<figcaption>Each configuration of the top {len(v.configs)}, in the "
        "order of the original ranking: its original single-seed value (red diamond), its "
        f"values on fresh seeds (grey) and their mean with a {CONFIDENCE:.0%} Student-t "
        f'interval (blue). <a href="{e(png.name)}">PNG</a></figcaption></figure>'
    )
    parts.append(table_html(v))
    return "\n".join(parts)
