"""``tuner report``: a self-contained HTML file with every figure, and PNGs beside it.

The numbers (compute saved by pruning, the tables) are checked on a study built
by hand, where the right answer is known; the whole path (tune, report, open in
a real Chromium and see each figure drawn) on the smoke study.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from browser_support import chromium, require_browser, screenshot, wait_for
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from support import run_cli

from tuner.commands.report import pruning_savings, top_trials_table, write_report
from tuner.commands.worker import Worker
from tuner.config.loading import load_spec
from tuner.storage.record import TrialAttr

FIGURES = [
    "optimization_history",
    "intermediate_values",
    "param_importances",
    "parallel_coordinate",
    "slice",
]
BUDGET = 3000
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
    "gamma": FloatDistribution(0.9, 0.999),
    "net_arch": CategoricalDistribution(["tiny", "small"]),
}


def _trial(number: int, state: TrialState, value: float | None, steps: int, **params):
    scores = {s: 0.1 + 0.05 * number + 0.01 * i for i, s in enumerate(range(1000, steps + 1, 1000))}
    attrs = {
        TrialAttr.TIMESTEPS: steps,
        TrialAttr.REAL_PARAMS: {
            **params,
            "net_arch": [16] if params["net_arch"] == "tiny" else [32, 32],
        },
        TrialAttr.STEPS_PER_SECOND: 1000.0,
    }
    if state == TrialState.COMPLETE:
        scores = {"random": 0.5 + 0.1 * number, "greedy": 0.1 * number}
        attrs[TrialAttr.SCORES] = scores
        attrs[TrialAttr.EVAL_RESULTS] = {
            name: {"score": s, "ci_low": s - 0.05, "ci_high": s + 0.05, "games": 200}
            for name, s in scores.items()
        }
    return create_trial(
        state=state,
        value=value,
        params=params,
        distributions=DISTRIBUTIONS,
        user_attrs=attrs,
        intermediate_values=scores,
    )


@pytest.fixture
def built_study(tmp_path: Path) -> optuna.Study:
    """3 completed trials (full budget), 2 pruned (at 1000 and 2000 steps), 1 failed."""
    study = optuna.create_study(
        study_name="handmade", storage=f"sqlite:///{tmp_path / 'db.sqlite'}", direction="maximize"
    )
    study.set_user_attr(
        "spec", {"description": "built by hand", "budget": {"total_timesteps": BUDGET}}
    )
    rows = [
        (TrialState.COMPLETE, 0.40, BUDGET, 3e-4, 0.95, "tiny"),
        (TrialState.COMPLETE, 0.70, BUDGET, 1e-3, 0.99, "small"),
        (TrialState.PRUNED, None, 1000, 2e-4, 0.91, "tiny"),
        (TrialState.COMPLETE, 0.55, BUDGET, 5e-4, 0.93, "small"),
        (TrialState.PRUNED, None, 2000, 2e-3, 0.97, "tiny"),
    ]
    for i, (state, value, steps, lr, gamma, arch) in enumerate(rows):
        study.add_trial(
            _trial(i, state, value, steps, learning_rate=lr, gamma=gamma, net_arch=arch)
        )
    study.add_trial(
        create_trial(state=TrialState.FAIL, user_attrs={TrialAttr.FAIL_REASON: "diverged"})
    )
    return study


def test_pruning_savings_counts_what_pruned_trials_would_have_cost(built_study) -> None:
    s = pruning_savings(built_study)
    assert s is not None
    assert (s.budget, s.n_complete, s.n_pruned) == (BUDGET, 3, 2)
    assert s.pruned_timesteps == 3000  # 1000 + 2000
    assert s.pruned_full_cost == 6000  # 2 trials x 3000
    assert s.saved == 3000
    assert s.share_of_pruned == pytest.approx(0.5)
    # without pruning: 3 x 3000 (complete) + 2 x 3000 (pruned, finished) = 15000
    assert s.share_of_study == pytest.approx(3000 / 15000)


@pytest.mark.slow
def test_report_has_every_figure_table_and_saving(built_study, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = write_report(built_study, out, top_k=2)
    assert report.html == out / "report.html"
    assert [f.key for f in report.figures] == FIGURES
    assert all(f.missing is None for f in report.figures), [f.missing for f in report.figures]
    for key in FIGURES:
        png = out / f"{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
        assert png.stat().st_size > 10_000, key

    text = report.html.read_text()
    for key in FIGURES:
        assert f'id="fig-{key}"' in text, key
    # Self-contained: plotly.js inlined, nothing loaded from elsewhere.
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=\"http", text)
    assert "Plotly.newPlot" in text
    # The pruned trials are marked in the intermediate-values figure.
    inter = next(f for f in report.figures if f.key == "intermediate_values").plotly
    names = {t.name: t for t in inter.data}
    assert {"trial 2 (pruned)", "trial 4 (pruned)", "trial 0", "trial 1", "trial 3"} <= set(names)
    assert names["trial 2 (pruned)"].line.dash == "dash"
    assert list(names["trial 4 (pruned)"].marker.symbol) == ["circle", "x"]
    # Slice plots of the top parameters, by importance.
    slice_fig = next(f for f in report.figures if f.key == "slice")
    assert {t.xaxis for t in slice_fig.plotly.data} >= {"x", "x2", "x3"}
    # The table of the top 2 trials with scores per opponent.
    # Each score with its interval and the games behind it.
    assert "<th>score vs random [95% interval] games</th>" in text
    assert "<th>score vs greedy [95% interval] games</th>" in text
    table = text.split('id="top-trials"')[1].split('id="pruning"')[0]
    assert re.search(
        r"<td[^>]*>1</td><td[^>]*>1</td><td[^>]*>0.7000</td><td[^>]*>0.600 \[0.550, 0.650\] 200</td>",
        table,
    )
    assert "0.4000" not in table  # trial 0 is third: not in the top 2
    assert "small ([32, 32])" in table  # the real value beside the sampled choice
    # The compute saved by pruning.
    assert "Pruning saved <b>20.0%</b>" in text
    assert "50.0%" in text


def test_report_of_a_study_without_results_says_why(tmp_path: Path) -> None:
    study = optuna.create_study(
        study_name="empty", storage=f"sqlite:///{tmp_path / 'db.sqlite'}", direction="maximize"
    )
    study.add_trial(create_trial(state=TrialState.FAIL))
    report = write_report(study, tmp_path / "out")
    assert report.pngs == []
    text = report.html.read_text()
    assert text.count("Not drawn:") == len(FIGURES)
    assert "No completed trial yet." in text


class PruneTrials(optuna.pruners.BasePruner):
    """Prunes the listed trials at their first evaluation; the study's pruner decides the rest."""

    def __init__(self, numbers: set[int], rest: optuna.pruners.BasePruner) -> None:
        self.numbers, self.rest = numbers, rest

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number in self.numbers or self.rest.prune(study, trial)


@pytest.mark.browser
def test_report_of_the_smoke_study_opens_with_every_figure(runs: Path) -> None:
    require_browser()
    # The smoke study as `tuner tune smoke` runs it, with trial 2 pruned for sure (the
    # figures mark pruned trials, and the report counts what pruning saved).
    worker = Worker.open(
        load_spec("smoke"),
        f"sqlite:///{runs / 'optuna.db'}",
        worker_index=0,
        device="cpu",
        runs_dir=runs,
    )
    worker.study.pruner = PruneTrials({2}, worker.study.pruner)
    worker.run()
    result = run_cli("report", "smoke", runs_path=runs)
    assert result.returncode == 0, result.stderr
    html_path = runs / "reports" / "smoke" / "report.html"
    assert f"report written to {html_path}" in result.stdout
    assert "5 figures" in result.stdout
    for key in FIGURES:
        assert (html_path.parent / f"{key}.png").stat().st_size > 10_000

    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{runs / 'optuna.db'}")
    assert study.trials[2].state == TrialState.PRUNED
    with chromium(runs.parent / "chromium-profile", width=1300, height=6000) as driver:
        driver.get(html_path.as_uri())
        for key in FIGURES:
            wait_for(
                f"figure {key} drawn by plotly",
                lambda key=key: driver.execute_script(
                    "const d = document.getElementById(arguments[0]);"
                    "return !!(d && d.querySelector('svg.main-svg') && d.data && d.data.length);",
                    f"fig-{key}",
                ),
            )
        body = driver.find_element("tag name", "body").text
        assert "Study smoke" in body
        assert "Top 10 trials" in body and "score vs random" in body
        assert "Compute saved by pruning" in body
        assert "trial 2 (pruned)" in driver.execute_script(
            "return document.getElementById('fig-intermediate_values').data"
            ".map(t => t.name).join(' ')"
        )
        assert "Pruning saved" in body
        screenshot(driver, "report_smoke.png")


def test_many_trials_get_a_short_legend_not_a_strip(tmp_path: Path) -> None:
    """40 trials: the legend names the best 3 and the two states, not every trial, so the
    PNG stays a plot rather than a strip beside a 40-entry legend."""
    import struct

    from tuner.commands import report

    study = optuna.create_study(
        study_name="many", storage=f"sqlite:///{tmp_path / 'db.sqlite'}", direction="maximize"
    )
    for i in range(40):
        pruned = i % 3 == 0
        steps = range(1000, (2000 if pruned else 4000), 1000)
        curve = {s: 0.01 * i + s / 10_000 for s in steps}
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                value=None if pruned else curve[max(curve)],
                intermediate_values=curve,
            )
        )
    trials = study.get_trials(deepcopy=False)
    marks = report._highlight(study, trials)
    assert marks.many and [n for n, _ in marks.top] == [38, 37, 35], "the best complete trials"
    (spec,) = [
        s
        for s in report._figure_specs(study, trials, {}, set(marks.pruned))
        if s.key == "intermediate_values"
    ]
    fig = report._draw(spec, marks, tmp_path)

    legend = [t.name for t in fig.plotly.data if t.showlegend is not False]
    assert sorted(legend) == [
        "#1 trial 38 (0.68)",
        "#2 trial 37 (0.67)",
        "#3 trial 35 (0.65)",
        "complete trials (26)",
        "pruned trials (14)",
    ]
    by_name = {t.name: t for t in fig.plotly.data}
    assert by_name["trial 3 (pruned)"].line.dash == "dash", "every line still names its trial"
    assert list(by_name["trial 3 (pruned)"].marker.symbol)[-1] == "x"
    assert by_name["trial 4"].line.color == report.COMPLETE_COLOR
    assert fig.plotly.data[-3].name.startswith("#1"), "the best is drawn last, on top"

    assert fig.png is not None
    width, height = struct.unpack(">II", fig.png.read_bytes()[16:24])
    assert width < 2.5 * height, f"a plot, not a strip beside a legend: {width}x{height}"


def test_a_few_trials_keep_a_legend_entry_each(built_study) -> None:
    from tuner.commands import report

    marks = report._highlight(built_study, built_study.get_trials(deepcopy=False))
    assert not marks.many and marks.top == ()


def test_the_top_trials_table_has_a_perfect_play_column_where_recorded(
    built_study, tmp_path: Path
) -> None:
    """Trials that recorded the perfect-play numbers show them in a column; one that did
    not (an older trial) shows a dash; a study where none did has no such column."""
    assert "perfect play" not in top_trials_table(built_study, 10)
    perfect = {"positions": 5010, "optimal": 0.8042, "regret": 1.0691, "blunders": 0.0451}
    perfect.update({f"{k}_half_width": 0.01 for k in ("optimal", "regret", "blunders")})
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'p.db'}", direction="maximize")
    study.add_trial(create_trial(value=0.8, user_attrs={TrialAttr.PERFECT: perfect}))
    study.add_trial(create_trial(value=0.5))
    table = top_trials_table(study, 10)
    assert "<th>perfect play (solved set)</th>" in table, table
    rows = table.split("<tr>")[2:]
    assert ">optimal 0.804 regret 1.07 blunders 0.045</td>" in rows[0], rows
    assert re.search(r'<td class="[a-z]*">-</td>', rows[1]), rows
