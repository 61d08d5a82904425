"""``tuner trials``: every trial of a study as one row, a table or CSV for pandas.

rl-baselines3-zoo writes such a CSV after a study; Optuna's own ``trials_dataframe``
needs pandas, which the tuner does not, and leaves nested user attrs (the rating,
the per-opponent results) as dicts in one cell. Here each becomes columns of its own:
``rating``, ``rating_low``, ``rating_high``; ``score_<opponent>`` with
``ci_low_<opponent>``, ``ci_high_<opponent>`` and ``games_<opponent>`` (a score is never
without its game count); ``perfect_optimal``, ``perfect_regret`` and ``perfect_blunders``
where the perfect-play numbers were recorded. ``pandas.read_csv`` reads the file as it is.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial

from tuner.storage.record import TrialAttr

FIXED = ("number", "state", "value", "started", "completed", "seconds")
ATTRS = (
    ("timesteps", TrialAttr.TIMESTEPS),
    ("steps_per_second", TrialAttr.STEPS_PER_SECOND),
    ("device", TrialAttr.DEVICE),
    ("worker", TrialAttr.WORKER),
    ("retry_of", TrialAttr.RETRY_OF),
    ("fail_reason", TrialAttr.FAIL_REASON),
    ("prune_reason", TrialAttr.PRUNE_REASON),
)
RESULT_FIELDS = ("score", "ci_low", "ci_high", "games")
PERFECT_FIELDS = ("optimal", "regret", "blunders")


def _ordered(names: list[str], new: Any) -> None:
    names.extend(n for n in new if n not in names)


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One trial as flat columns (missing ones are left out, written as empty cells)."""
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "started": trial.datetime_start.isoformat(timespec="seconds")
        if trial.datetime_start
        else None,
        "completed": trial.datetime_complete.isoformat(timespec="seconds")
        if trial.datetime_complete
        else None,
        "seconds": round(trial.duration.total_seconds(), 1) if trial.duration else None,
    }
    row.update({f"params_{k}": v for k, v in trial.params.items()})
    rating = trial.user_attrs.get(TrialAttr.RATING) or {}
    for col, key in (("rating", "rating"), ("rating_low", "low"), ("rating_high", "high")):
        if key in rating:
            row[col] = rating[key]
    perfect = trial.user_attrs.get(TrialAttr.PERFECT) or {}
    row.update({f"perfect_{key}": perfect[key] for key in PERFECT_FIELDS if key in perfect})
    for opponent, result in (trial.user_attrs.get(TrialAttr.EVAL_RESULTS) or {}).items():
        row.update({f"{col}_{opponent}": result.get(col) for col in RESULT_FIELDS})
    row.update({col: trial.user_attrs.get(key) for col, key in ATTRS})
    return row


def trial_table(study: optuna.Study) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns (fixed ones, then params, rating, per-opponent results, attrs) and the
    rows of every trial, by number."""
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    params: list[str] = []
    opponents: list[str] = []
    for row in rows:
        _ordered(params, [k for k in row if k.startswith("params_")])
        _ordered(opponents, [k.removeprefix("score_") for k in row if k.startswith("score_")])
    result_columns = [f"{col}_{o}" for o in opponents for col in RESULT_FIELDS]
    rated = [c for c in ("rating", "rating_low", "rating_high") if any(c in r for r in rows)]
    perfect = [f"perfect_{k}" for k in PERFECT_FIELDS if any(f"perfect_{k}" in r for r in rows)]
    columns = [*FIXED, *params, *rated, *perfect, *result_columns, *(col for col, _ in ATTRS)]
    return columns, rows


def write_csv(study: optuna.Study, stream: TextIO) -> int:
    """Every trial as CSV on ``stream``; returns the number of rows."""
    columns, rows = trial_table(study)
    writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(study: optuna.Study) -> str:
    """The trials as aligned text: number, state, value, seconds and the params."""
    columns, rows = trial_table(study)
    shown = [c for c in columns if c in ("number", "state", "value", "seconds")]
    shown += [c for c in columns if c.startswith("params_")]
    header = [c.removeprefix("params_") for c in shown]
    cells = [header, *([_cell(row.get(c)) for c in shown] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(shown))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
