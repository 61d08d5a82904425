"""The names of what a study and its trials record in Optuna's storage, in one place.

A trial's record is read long after it was written: by ``status``, ``report``,
``export``, ``verify``, the worker that retries it and the dashboard, in other
processes and other versions. A key spelled twice is a key that can drift, and a
misspelt read is a silent ``None``. Every module and test names these keys through
the constants below.

Plain ``str`` constants, not a ``StrEnum``: the keys travel into YAML dumps, JSON
and SQL as they are, and ``yaml.safe_dump`` refuses a ``str`` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final


class StudyAttr:
    """Keys of a study's user attrs: what it was created from, and its budget."""

    SPEC: Final = "spec"  # the validated study file, as JSON, recorded at creation
    N_TRIALS: Final = "n_trials"  # the global trial budget, counted across workers
    SPEC_CHANGES: Final = "spec_changes"  # compatible edits of the file, accepted since
    VERIFIES: Final = "verifies"  # on a verify companion: the study it verifies


class TrialAttr:
    """Keys of a trial's user attrs: what it trained, how, and what it scored."""

    CONFIG: Final = "config"  # to_config's output: exactly what was trained
    REAL_PARAMS: Final = "real_params"  # the values the sampled params stood for
    ADJUSTMENTS: Final = "adjustments"  # settings changed to make a combination valid
    RUN_VALUES: Final = "run_values"  # one value per training run (budget.runs)
    TIMESTEPS: Final = "timesteps"
    DEVICE: Final = "device"
    STEPS_PER_SECOND: Final = "steps_per_second"
    TRAIN_SECONDS: Final = "train_seconds"
    EVAL_SECONDS: Final = "eval_seconds"
    LEAGUE: Final = "league"  # the self-play pools at the end of training (league_summary)
    EVALUATIONS: Final = "evaluations"  # every evaluation, in order
    SCORES: Final = "scores"  # the last evaluation's score per opponent
    EVAL_RESULTS: Final = "eval_results"  # the same, with intervals and game counts
    RATING: Final = "rating"  # Elo on the reference ladder (objective: rating)
    PERFECT: Final = "perfect"  # the last evaluation's optimal share, regret, blunders
    MODEL_ARTIFACT_ID: Final = "model_artifact_id"
    WORKER: Final = "worker"  # which worker ran it
    WORKER_SEED: Final = "worker_seed"
    FAIL_REASON: Final = "fail_reason"
    PRUNE_REASON: Final = "prune_reason"
    CONFIG_ERROR: Final = "config_error"  # a bad combination: not counted in n_trials
    RETRY_OF: Final = "retry_of"  # the number of the failed trial this one retries
    RETRY_REASON: Final = "retry_reason"
    ADOPTED_RESULT_OF: Final = "adopted_result_of"  # a late result kept by the retry
    VERIFY_OF: Final = "verify_of"  # on a verify job: the original trial's number
    VERIFY_SEED: Final = "verify_seed"
    ORIGINAL_VALUE: Final = "original_value"  # on a verify job: the original trial's value
    # Population-based training (tuner.pbt): each trial is one member's interval, a unit.
    PBT_MEMBER: Final = "pbt_member"  # which member of the population
    PBT_INTERVAL: Final = "pbt_interval"  # which interval of its training (0, 1, ...)
    PBT_PARENT: Final = "pbt_parent"  # the unit whose checkpoint it starts from, or None
    PBT_DECISION: Final = "pbt_decision"  # exploit/explore: what was decided and why
    PBT_SCHEDULE: Final = "pbt_schedule"  # the weights' history: params per interval
    PBT_TIMESTEP: Final = "pbt_timestep"  # the member's timesteps at the unit's end
    PBT_VALUE_SE: Final = "pbt_value_se"  # the standard error of the unit's value
    PBT_CHECKPOINT_ID: Final = "pbt_checkpoint_artifact_id"  # weights, optimizer, pool
    PBT_WEIGHTS_START: Final = "pbt_weights_start"  # digest of the weights it started from
    PBT_WEIGHTS_END: Final = "pbt_weights_end"  # digest of the weights it ended with


class TrialSystemAttr:
    """Keys of a trial's system attrs: the bookkeeping of retries and verify jobs."""

    RETRY_HISTORY: Final = "retry_history"  # the numbers of the failed attempts, oldest first
    FAILED_TRIAL: Final = "failed_trial"  # the first attempt of a retried trial
    STOPPED_BY_SIGNAL: Final = "stopped_by_signal"  # attempts ended by a graceful stop
    VERIFY_KEY: Final = "verify_key"
    VERIFY_OF: Final = "verify_of"
    VERIFY_SEED: Final = "verify_seed"
    VERIFY_SEED_INDEX: Final = "verify_seed_index"  # which of the fresh seeds
    # A PBT unit's identity, set when it is queued (a retry copies system attrs).
    PBT_MEMBER: Final = "pbt_member"
    PBT_INTERVAL: Final = "pbt_interval"
    PBT_PARENT: Final = "pbt_parent"
    PBT_DECISION: Final = "pbt_decision"


def score_text(result: Mapping[str, Any]) -> str:
    """``0.940 [95% 0.903, 0.965] over 200 games``: a recorded score (one opponent of a
    trial's ``eval_results``) never shown without its interval and game count.

    A bare ``0.5`` reads as a claim of strength whether it came from 400 games or from
    2 (an adaptive rating plays few games per ladder member).
    """
    return (
        f"{result['score']:.3f} [95% {result['ci_low']:.3f}, {result['ci_high']:.3f}] "
        f"over {result['games']} games"
    )


def perfect_text(perfect: Mapping[str, Any], wide: bool = True) -> str:
    """``optimal 0.804 ±0.011, regret 1.07 ±0.08, blunders 0.045 ±0.006 on 5010 solved
    positions``: a trial's recorded ``perfect`` (``wide``: with the 95% half-widths).
    Shorter without them: ``optimal 0.804 regret 1.07 blunders 0.045``."""
    if not wide:
        return (
            f"optimal {perfect['optimal']:.3f} regret {perfect['regret']:.2f} "
            f"blunders {perfect['blunders']:.3f}"
        )
    return (
        f"optimal {perfect['optimal']:.3f} ±{perfect['optimal_half_width']:.3f}, "
        f"regret {perfect['regret']:.2f} ±{perfect['regret_half_width']:.2f}, "
        f"blunders {perfect['blunders']:.3f} ±{perfect['blunders_half_width']:.3f} "
        f"on {perfect['positions']} solved positions"
    )


def shown_results(user_attrs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A trial's last per-opponent results (its ``eval_results``), where they mean
    something: a rated trial's scores are the few adaptive games behind its rating (2-4
    per ladder member), shown by the rating and its interval instead. A trial that
    recorded no game counts shows none."""
    if user_attrs.get(TrialAttr.RATING):
        return {}
    return dict(user_attrs.get(TrialAttr.EVAL_RESULTS) or {})
