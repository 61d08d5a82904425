"""The verification table as the companion study's note in optuna-dashboard.

Written when a verify worker finishes, so the dashboard shows where the
verification stands beside the jobs themselves.
"""

from __future__ import annotations

import optuna

from tuner.commands.verify.companion import load_base
from tuner.commands.verify.statistics import Verification
from tuner.commands.verify.summary import format_table, summarize


def save_dashboard_note(companion: optuna.Study, v: Verification) -> None:
    """The verification table as the companion study's note in optuna-dashboard."""
    from optuna_dashboard import save_note

    body = (
        f"# Verification of `{v.study}`\n\n"
        "Each job re-trains one of the top configurations of the study with a fresh "
        "seed (`verify_of`: the original trial, `verify_seed`: the seed).\n\n"
        f"```\n{format_table(v)}\n```\n"
    )
    save_note(companion, body)


def conclude(companion: optuna.Study) -> str | None:
    """After a verify worker: the table, also saved as the companion's dashboard note.

    ``None`` when the base study is gone (nothing to compare with).
    """
    base = load_base(companion)
    if base is None:
        return None
    v = summarize(base, companion)
    if v is None:
        return None
    save_dashboard_note(companion, v)
    return format_table(v)
