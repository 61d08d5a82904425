"""Spec -> sampler and pruner: the Optuna objects a study file names.

Apart from :mod:`tuner.config.study` so that the spec can build them while it validates a
file (bad options fail before any storage is opened) without importing the study
module, which imports the spec: imports between the two go one way. The spec is
only a type here.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import optuna

from tuner.base.errors import UserError

if TYPE_CHECKING:
    from tuner.config.spec import StudySpec


def build_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """The study's sampler with this worker's ``seed``; an unknown or bad option is a
    :class:`UserError` naming the key (Optuna's own message says what it expected)."""
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
    except (TypeError, ValueError) as err:
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
        if kind == "wilcoxon":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return p.WilcoxonPruner(**options)
        if kind == "successive_halving":
            options.setdefault("min_resource", eval_every)
            return p.SuccessiveHalvingPruner(**options)
        options.setdefault("min_resource", eval_every)
        options.setdefault("max_resource", spec.budget.total_timesteps)
        return p.HyperbandPruner(**options)
    except (TypeError, ValueError) as err:  # an unknown option, or a value out of range
        raise UserError(f"key 'pruner.options': {err}; see optuna.pruners") from None
