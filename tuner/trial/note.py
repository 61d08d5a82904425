"""A trial's note for optuna-dashboard: what a dashboard user reads on the trial's page.

Markdown, written once a trial's first training run is recorded: the value with what
stands behind it (the rating's interval and games, or each opponent's score with its
interval and game count), the curve of evaluations, and what the training cost.
"""

from __future__ import annotations

from tuner.config.spec import StudySpec
from tuner.trial.training import TrainingRun


def trial_note(number: int, spec: StudySpec, run: TrainingRun) -> str:
    """The Markdown note of trial ``number`` from its (first) training run."""
    lines = [f"## Trial {number}", ""]
    evaluations = run.state.evaluations
    if not evaluations:
        return "\n".join([*lines, "No evaluation finished."])
    last = evaluations[-1]
    games = sum(r.games for r in last.results.values())
    if last.rating is not None:
        lines.append(
            f"**Rating {last.rating}** (Elo on the reference ladder, 95% interval), "
            f"from {games} games against {len(last.results)} ladder members at step "
            f"{last.timestep:,}."
        )
    else:
        lines += [
            f"**Score {last.value:.3f}** ({spec.evaluation.combine} over the opponents) "
            f"at step {last.timestep:,}:",
            "",
            "| opponent | score | 95% interval | games | W / D / L |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {name} | {r.score:.3f} | {r.ci_low:.3f} - {r.ci_high:.3f} | {r.games} "
            f"| {r.wins} / {r.draws} / {r.losses} |"
            for name, r in last.results.items()
        ]
    lines += ["", "| step | " + ("rating |" if last.rating else "score |"), "| --- | --- |"]
    lines += [f"| {e.timestep:,} | {e.describe().split(' ', 1)[1]} |" for e in evaluations]
    lines += [
        "",
        f"Trained {run.timesteps:,} steps on {run.device} at {run.steps_per_second:,.0f} "
        f"steps/s ({run.train_seconds:,.0f} s), plus {run.eval_seconds:,.0f} s of "
        "evaluation games.",
    ]
    return "\n".join(lines)
