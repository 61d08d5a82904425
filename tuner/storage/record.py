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

from typing import Final


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
    SEED_VALUES: Final = "seed_values"  # one value per training seed
    TIMESTEPS: Final = "timesteps"
    DEVICE: Final = "device"
    STEPS_PER_SECOND: Final = "steps_per_second"
    TRAIN_SECONDS: Final = "train_seconds"
    EVAL_SECONDS: Final = "eval_seconds"
    LEAGUE: Final = "league"  # the self-play pool at the end of training
    EVALUATIONS: Final = "evaluations"  # every evaluation, in order
    SCORES: Final = "scores"  # the last evaluation's score per opponent
    EVAL_RESULTS: Final = "eval_results"  # the same, with intervals and game counts
    RATING: Final = "rating"  # Elo on the reference ladder (objective: rating)
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


class TrialSystemAttr:
    """Keys of a trial's system attrs: the bookkeeping of retries and verify jobs."""

    RETRY_HISTORY: Final = "retry_history"  # the numbers of the failed attempts, oldest first
    FAILED_TRIAL: Final = "failed_trial"  # the first attempt of a retried trial
    STOPPED_BY_SIGNAL: Final = "stopped_by_signal"  # attempts ended by a graceful stop
    VERIFY_KEY: Final = "verify_key"
    VERIFY_OF: Final = "verify_of"
    VERIFY_SEED: Final = "verify_seed"
    VERIFY_SEED_INDEX: Final = "verify_seed_index"  # which of the fresh seeds
