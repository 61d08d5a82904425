"""A trial's note for optuna-dashboard: what a dashboard user reads on the trial's page.

Markdown, written once a trial's first training run is recorded: the value with what
stands behind it (the rating's interval and games, or each opponent's score with its
interval and game count), the perfect-play numbers where recorded, the curve of
evaluations, and what the training cost.
"""

from __future__ import annotations

from tuner.config.spec import StudySpec
from tuner.storage.record import perfect_text
from tuner.trial.callbacks import Evaluation
from tuner.trial.training import TrainingRun


def trial_note(number: int, spec: StudySpec, run: TrainingRun) -> str:
    """The Markdown note of trial ``number`` from its (first) training run."""
    lines = [f"## Trial {number}", ""]
    evaluations = run.state.evaluations
    if not evaluations:
        return "\n".join([*lines, "No evaluation finished."])
    last = evaluations[-1]
    games = sum(r.games for r in last.results.values())
    if spec.evaluation.objective == "perfect" and last.perfect is not None:
        lines.append(
            f"**Regret {last.perfect.regret.mean:.3f} seeds per move** (the value is minus "
            f"it: seeds given away against the best move, over {last.perfect.positions:,} "
            f"solved positions) at step {last.timestep:,}."
        )
    elif last.rating is not None:
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
    if last.perfect is not None:
        lines += ["", f"Against perfect play: {perfect_text(last.perfect.as_dict())}."]
    lines += _curve(evaluations)
    lines += [
        "",
        f"Trained {run.timesteps:,} steps on {run.device} at {run.steps_per_second:,.0f} "
        f"steps/s ({run.train_seconds:,.0f} s), plus {run.eval_seconds:,.0f} s of "
        "evaluation.",
    ]
    return "\n".join(lines)


def _curve(evaluations: list[Evaluation]) -> list[str]:
    """The evaluations as a table: the value (a rating with its interval, a score), then
    the optimal share, regret and blunders where they were recorded."""
    last = evaluations[-1]
    alone = not last.results and last.perfect is not None  # objective: perfect
    value = "rating" if last.rating else "optimal" if alone else "score"
    perfect = last.perfect is not None and not alone
    head = f"| step | {value} |" + (" optimal | regret | blunders |" if perfect else "")
    lines = ["", head, "| --- " * (head.count("|") - 1) + "|"]
    for e in evaluations:
        shown = str(e.rating) if e.rating else f"{e.value:.3f}"
        row = f"| {e.timestep:,} | {shown} |"
        if perfect:
            p = e.perfect
            row += (
                f" {p.optimal.mean:.3f} | {p.regret.mean:.2f} | {p.blunders.mean:.3f} |"
                if p is not None
                else " - | - | - |"
            )
        lines.append(row)
    return lines
