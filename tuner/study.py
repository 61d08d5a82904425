"""Spec -> sampler, pruner and the Optuna study.

Samplers and pruners are not stored in the database: every worker rebuilds them
from the study file, each worker with its own sampler seed (with one seed, all
workers would propose the same first trials).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import optuna

from tuner.errors import UserError
from tuner.spec import StudySpec


def worker_seed(spec: StudySpec, worker_index: int | None) -> int:
    """Deterministic per worker index; drawn at random when there is none (scaled replicas)."""
    if worker_index is None:
        return int.from_bytes(os.urandom(4), "little")
    return (spec.seed + 7919 * (worker_index + 1)) % 2**32


def build_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    options = dict(spec.sampler.options)
    kind = spec.sampler.type
    classes: dict[str, Any] = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return classes[kind](seed=seed, **options)
    except TypeError as err:
        raise UserError(
            f"key 'sampler.options': {err}; see optuna.samplers.{classes[kind].__name__}"
        ) from None


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The study's pruner; resource-based pruners count resources in timesteps."""
    options = dict(spec.pruner.options)
    eval_every = max(1, spec.budget.total_timesteps // spec.budget.n_evaluations)
    kind = spec.pruner.type
    p = optuna.pruners
    try:
        if kind == "none":
            return p.NopPruner()
        if kind == "median":
            return p.MedianPruner(**options)
        if kind == "percentile":
            options.setdefault("percentile", 25.0)
            return p.PercentilePruner(**options)
        if kind == "successive_halving":
            options.setdefault("min_resource", eval_every)
            return p.SuccessiveHalvingPruner(**options)
        options.setdefault("min_resource", eval_every)
        options.setdefault("max_resource", spec.budget.total_timesteps)
        return p.HyperbandPruner(**options)
    except TypeError as err:
        raise UserError(f"key 'pruner.options': {err}; see optuna.pruners") from None


def create_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study if it is missing (idempotent); record the spec on it.

    Looks before it inserts: ``create_study(load_if_exists=True)`` on an existing study
    lets the INSERT fail first, and PostgreSQL logs a unique-violation ERROR for it at
    every ``tuner create`` and worker start (compose reruns ``create-study`` on each `up`).
    """
    try:
        storage.get_study_id_from_name(spec.study_name)
    except KeyError:
        optuna.create_study(  # load_if_exists: another worker may create it meanwhile
            study_name=spec.study_name,
            storage=storage,
            direction=spec.direction,
            load_if_exists=True,
        )
    study = optuna.load_study(study_name=spec.study_name, storage=storage)
    if study.direction.name.lower() != spec.direction:
        raise UserError(
            f"study {spec.study_name!r} exists with direction {study.direction.name.lower()}, "
            f"but the study file says {spec.direction}; rename the study or fix the file"
        )
    if "spec" not in study.user_attrs:
        study.set_user_attr("spec", spec.model_dump(mode="json"))
        study.set_user_attr("n_trials", spec.n_trials)
    return study


def load_study(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    seed: int,
) -> optuna.Study:
    """Create or load the study with this worker's sampler and pruner."""
    create_study(spec, storage)
    return optuna.load_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=build_sampler(spec, seed),
        pruner=build_pruner(spec),
    )
