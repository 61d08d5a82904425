"""``tuner status``: counts per state, the best trial, running trials and their heartbeats.

A RUNNING trial whose heartbeat is older than the grace period lost its worker
(killed, preempted, cut off from the database); it is flagged STALE here and
the next worker that claims a trial fails it and queues a retry. Waiting
retries are listed with the trial they retry.
"""

from __future__ import annotations

import datetime as dt

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.pbt.summary import status_lines
from tuner.storage.optuna_compat import RoutedRDBStorage, study_id, trial_id
from tuner.storage.record import StudyAttr, TrialAttr, perfect_text, score_text, shown_results


def state_counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """State name -> number of trials, for the states that occur, in Optuna's order."""
    counts = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    return {name: n for name, n in counts.items() if n}


def heartbeat_ages(storage: RoutedRDBStorage, study_id: int) -> dict[int, float]:
    """Seconds since the last heartbeat of each RUNNING trial that sent one (server clock)."""
    beats = storage.running_heartbeats(study_id)
    return {
        tid: max(0.0, (beats.now - beat).total_seconds())
        for tid, beat in beats.last.items()
        if beat is not None
    }


def _best_lines(study: optuna.Study, trials: list[FrozenTrial]) -> list[str]:
    """The best trial: its value, parameters, rating (when the study rates), scores and
    perfect-play numbers (where recorded)."""
    if not any(t.state == TrialState.COMPLETE for t in trials):
        return ["best: none yet (no completed trial)"]
    best = study.best_trial
    lines = [f"best: trial {best.number}, value {best.value:.4f}"]
    for k, v in best.params.items():
        lines.append(f"  {k} = {v}")
    rating = best.user_attrs.get(TrialAttr.RATING)
    if rating:
        lines.append(
            f"  rating {rating['rating']:.0f} [95% {rating['low']:.0f}, {rating['high']:.0f}]"
            " (Elo on the reference ladder)"
        )
    lines.extend(
        f"  score vs {k}: {score_text(r)}" for k, r in shown_results(best.user_attrs).items()
    )
    perfect = best.user_attrs.get(TrialAttr.PERFECT)
    if perfect:
        lines.append(f"  perfect play: {perfect_text(perfect)}")
    return lines


def _running_lines(
    study: optuna.Study, storage: RoutedRDBStorage, running: list[FrozenTrial]
) -> list[str]:
    """Each RUNNING trial with its age, worker and last heartbeat; STALE when its worker is gone.

    Stale means a heartbeat older than the grace period, by the storage's own
    test, so status flags exactly the trials the next claim will fail and retry.
    """
    stale = set(storage.stale_trial_ids(study_id(study)))
    ages = heartbeat_ages(storage, study_id(study))
    now = dt.datetime.now()
    lines = ["running:"]
    for t in running:
        age = (now - t.datetime_start).total_seconds() if t.datetime_start else 0.0
        where = t.user_attrs.get(TrialAttr.WORKER)
        beat = ages.get(trial_id(t))
        line = f"  trial {t.number:4d}  running for {age:7.1f}s"
        if where:
            line += f"  on {where}"
        line += f"  last heartbeat {beat:.0f}s ago" if beat is not None else "  no heartbeat yet"
        if trial_id(t) in stale:
            line += "  STALE heartbeat: its worker is gone; it will be failed and retried"
        lines.append(line)
    return lines


def _waiting_lines(waiting: list[FrozenTrial]) -> list[str]:
    """Each WAITING trial, with the trial it retries and why, when it is a retry."""
    lines = ["waiting:"]
    for t in waiting:
        retry_of = t.user_attrs.get(TrialAttr.RETRY_OF)
        why = t.user_attrs.get(TrialAttr.RETRY_REASON)
        text = f"  trial {t.number:4d}"
        if retry_of is not None:
            text += f"  retry of trial {retry_of}" + (f" ({why})" if why else "")
        lines.append(text)
    return lines


def format_status(
    study: optuna.Study,
    storage: RoutedRDBStorage,
    connections: dict[str, int] | None = None,
) -> str:
    """The status table; ``connections`` (process -> open connections) sizes ``max_connections``."""
    trials = study.get_trials(deepcopy=False)
    n_budget = study.user_attrs.get(StudyAttr.N_TRIALS, "?")
    lines = [f"study {study.study_name!r}: {len(trials)} trials (budget {n_budget})"]
    for name, n in state_counts(trials).items():
        lines.append(f"  {name:<9s} {n:5d}")
    lines += _best_lines(study, trials)
    lines += status_lines(study, trials)  # a population-based study's members
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if running:
        lines += _running_lines(study, storage, running)
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    if waiting:
        lines += _waiting_lines(waiting)
    if connections:
        lines.append(
            f"connections: {sum(connections.values())} from {len(connections)} tuner processes"
        )
        for app, n in sorted(connections.items()):
            lines.append(f"  {app}  {n}")
    return "\n".join(lines)


def top_trials(study: optuna.Study, k: int = 10) -> list[FrozenTrial]:
    """The ``k`` best completed trials, best first; of equal values the earlier trial first,
    in either direction, as Optuna's ``best_trial`` picks it."""
    done = [
        (t.value, t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None
    ]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    done.sort(key=lambda pair: (sign * pair[0], pair[1].number))
    return [t for _, t in done[:k]]
