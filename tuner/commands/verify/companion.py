"""The companion study ``STUDY:verify``: its name, its spec, and what each job carries.

A job is a WAITING trial of the companion with the original trial's params (so the
one conversion, ``space.to_config``, gives exactly the config the trial trained)
and, in its system attrs (which a retry copies), the configuration's key, the
original trial's number and the job's fresh seed. A (configuration, seed) pair is
one job: that pair is its identity, whatever retries it took.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from tuner.commands.status import top_trials
from tuner.storage.optuna_compat import storage_of
from tuner.storage.record import TrialSystemAttr

if TYPE_CHECKING:  # the report reads companions without building the study's models
    from tuner.config.spec import StudySpec

SUFFIX = ":verify"
# Seed i of a verify job is spec.seed + SEED_STRIDE * (i + 1): never the seed of a study
# trial (spec.seed + number, number < SEED_STRIDE), and below 2**32 (numpy's limit)
# for any sensible number of seeds.
SEED_STRIDE = 100_000


def companion_name(study_name: str) -> str:
    """``net_arch`` -> ``net_arch:verify`` (a study file's name cannot contain ':')."""
    return study_name + SUFFIX


def base_name(name: str) -> str | None:
    """``net_arch:verify`` -> ``net_arch``; ``None`` for a name that is not a companion.

    The one test of whether a study is a companion of verify jobs.
    """
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) and len(name) > len(SUFFIX) else None


def verify_seed(spec: StudySpec, index: int) -> int:
    """The fresh seed number ``index``: the same for every configuration (a paired comparison)."""
    return spec.seed + SEED_STRIDE * (index + 1)


def config_key(trial: FrozenTrial) -> str:
    """Trials with equal params train the same configuration: one key for them."""
    return json.dumps(trial.params, sort_keys=True, default=str)


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The original ranking: completed trials, best first (ties: the earlier trial),
    as the report ranks them."""
    return top_trials(study, len(study.get_trials(deepcopy=False)))


def job_key(job: FrozenTrial) -> tuple[Any, Any]:
    """A verify job's identity: which configuration, with which fresh seed."""
    attrs = job.system_attrs
    return attrs.get(TrialSystemAttr.VERIFY_KEY), attrs.get(TrialSystemAttr.VERIFY_SEED)


def study_spec(study: optuna.Study) -> StudySpec:
    """The spec a study's trials ran with: the one recorded on it, else its study file."""
    from tuner.config.loading import spec_of

    return spec_of(study)


def companion_spec(spec: StudySpec) -> StudySpec:
    """The base spec, renamed, with nothing to sample and nothing to prune.

    Every job trains the full budget (a pruned job would say nothing about its
    seed), and every param is fixed by the queue, so the sampler never draws.
    """
    from tuner.config.spec import PrunerSpec, SamplerSpec

    return spec.model_copy(
        update={
            "study_name": companion_name(spec.study_name),
            "sampler": SamplerSpec(type="random"),
            "pruner": PrunerSpec(type="none"),
        }
    )


def load_companion(study: optuna.Study) -> optuna.Study | None:
    """The companion study of verify jobs in the same storage, if there is one."""
    from tuner.storage.rdb import study_names

    name = companion_name(study.study_name)
    if name not in study_names(storage_of(study)):
        return None
    return optuna.load_study(study_name=name, storage=storage_of(study))


def load_base(companion: optuna.Study) -> optuna.Study | None:
    """The study a companion verifies, in the same storage; ``None`` when it is gone."""
    from tuner.storage.rdb import study_names

    base = base_name(companion.study_name)
    if base is None or base not in study_names(storage_of(companion)):
        return None
    return optuna.load_study(study_name=base, storage=storage_of(companion))
