"""``tuner verify STUDY --top K --fresh-seeds S``: queue a job per (top configuration, fresh seed).

A (configuration, seed) pair already in the companion study is never queued again,
so ``tuner verify`` run twice, or from two machines at once, adds nothing twice;
more seeds later add only the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.base.errors import UserError
from tuner.commands.verify.companion import (
    companion_spec,
    config_key,
    job_key,
    ranked,
    study_spec,
    verify_seed,
)
from tuner.config.spec import StudySpec
from tuner.storage.record import StudyAttr, TrialAttr, TrialSystemAttr


def top_configurations(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The best trial of each of the ``k`` best distinct configurations."""
    seen: set[str] = set()
    top: list[FrozenTrial] = []
    for t in ranked(study):
        key = config_key(t)
        if key not in seen:
            seen.add(key)
            top.append(t)
    if len(top) < k:
        raise UserError(
            f"--top {k}: study {study.study_name!r} has {len(top)} completed "
            f"configuration(s), but {k} were asked for; lower --top or run more trials "
            f"(`tuner tune {study.study_name}`)"
        )
    return top[:k]


@dataclass
class QueueResult:
    companion: str
    queued: int
    already: int
    configurations: list[FrozenTrial]
    seeds: list[int]


def queue_jobs(
    study: optuna.Study, storage: Any, k: int, n_seeds: int, spec: StudySpec | None = None
) -> QueueResult:
    """Queue a job per (top-k configuration, seed) that is not in the companion study yet.

    Under the companion's claim lock: two ``tuner verify`` at once queue each job once.
    """
    from tuner.config.study import create_study
    from tuner.trial.lifecycle import claim_lock

    spec = spec or study_spec(study)
    if spec.pbt is not None:
        raise UserError(
            f"study {study.study_name!r} is population-based: its finding is a schedule, not "
            f"a configuration; verify it by replaying the schedule on fresh seeds: "
            f"`tuner export {study.study_name}`, then `tuner train "
            f"studies/best/{study.study_name}.yaml --seed S` for a few S"
        )
    top = top_configurations(study, k)
    cspec = companion_spec(spec)
    seeds = [verify_seed(spec, i) for i in range(n_seeds)]
    if not all(0 <= s < 2**32 for s in seeds):
        raise UserError(
            f"--fresh-seeds {n_seeds}: expected fresh seeds in [0, 2**32) (numpy's and "
            f"SB3's limit), but study {study.study_name!r} (seed {spec.seed}) gives "
            f"{seeds[0]}..{seeds[-1]}; "
            "ask for fewer fresh seeds"
        )
    companion = create_study(cspec, storage)
    queued = already = 0
    with claim_lock(storage, cspec.study_name):
        existing = {job_key(t) for t in companion.get_trials(deepcopy=False)}
        for original in top:
            key = config_key(original)
            for index, seed in enumerate(seeds):
                if (key, seed) in existing:
                    already += 1
                    continue
                companion.add_trial(_job(original, key, seed, index))
                existing.add((key, seed))
                queued += 1
        jobs = {job_key(t) for t in companion.get_trials(deepcopy=False)}
        companion.set_user_attr(StudyAttr.N_TRIALS, len(jobs))
        companion.set_user_attr(StudyAttr.VERIFIES, study.study_name)
    return QueueResult(cspec.study_name, queued, already, top, seeds)


def _job(original: FrozenTrial, key: str, seed: int, index: int) -> FrozenTrial:
    """The WAITING trial that re-trains ``original``'s configuration with ``seed``."""
    return optuna.create_trial(
        state=TrialState.WAITING,
        params=original.params,
        distributions=original.distributions,
        user_attrs={
            TrialAttr.VERIFY_OF: original.number,
            TrialAttr.VERIFY_SEED: seed,
            TrialAttr.ORIGINAL_VALUE: original.value,
        },
        system_attrs={
            TrialSystemAttr.VERIFY_KEY: key,
            TrialSystemAttr.VERIFY_OF: original.number,
            TrialSystemAttr.VERIFY_SEED: seed,
            TrialSystemAttr.VERIFY_SEED_INDEX: index,
        },
    )
