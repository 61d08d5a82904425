"""Spec + trial -> sampled values -> MaskablePPO keyword arguments and the game options.

:func:`to_config` is the one conversion from searched values to what a model is
built with and trained on. It is pure and its output is plain data (activation
functions and schedules by name) plus the frozen :class:`env.options.GameOptions`,
so the objective records it, the export writes it, and ``tuner train`` rebuilds
exactly the model the trial trained; :func:`materialize` is the one place names
become torch classes and callables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from env.options import DEFAULTS, GameOptions
from env.policy_files import ACTIVATIONS
from tuner.base.errors import ConfigError
from tuner.config.spec import (
    ENV_KEYS,
    POLICY_KEYS,
    CategoricalParam,
    EnvSpec,
    FloatParam,
    IntParam,
    StudySpec,
)


@dataclass(frozen=True)
class ModelConfig:
    """Everything a trial's model is built from and trained on.

    ``ppo_kwargs`` are plain (YAML-ready) data; ``game`` is the game and league the
    envs, the evaluator and the export take as it is. :meth:`as_dict` is what a trial
    records and an export writes (``env_kwargs``: the game options as a study file's
    ``env:`` section writes them).
    """

    ppo_kwargs: dict[str, Any]
    game: GameOptions
    adjustments: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"ppo_kwargs": self.ppo_kwargs, "env_kwargs": self.game.as_dict()}


def game_options(env: EnvSpec, searched: dict[str, Any] | None = None) -> GameOptions:
    """A study's (or an export's) ``env:`` section, with searched env values, as the
    game's options: the one place the file's form becomes the typed object.

    A searched value the game refuses (``stones: 13``) is a :class:`ConfigError`: the
    configuration's fault, recorded as such without spending the trial's budget.
    """
    try:
        return GameOptions.from_dict({**env.model_dump(), **(searched or {})})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"the env cannot be built from the env options: {err}") from None


def _active(condition: dict[str, list[Any]] | None, values: dict[str, Any]) -> bool:
    return all(values.get(k) in allowed for k, allowed in (condition or {}).items())


def sample(spec: StudySpec, trial: optuna.Trial) -> dict[str, Any]:
    """Ask the trial for every searched parameter (in file order, conditions honoured).

    Returns the values as Optuna stores them: names for named choices.
    """
    values: dict[str, Any] = {}
    for name, p in spec.search_space.items():
        if not _active(p.condition, values):
            continue
        if isinstance(p, FloatParam):
            values[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, IntParam):
            values[name] = trial.suggest_int(name, p.low, p.high, log=p.log, step=p.step)
        else:
            values[name] = trial.suggest_categorical(name, p.option_names)
    return values


def to_config(spec: StudySpec, values: dict[str, Any]) -> ModelConfig:
    """Merge the fixed settings with sampled ``values`` into model and env kwargs.

    Pure: the same spec and values always give the same config. Combinations that
    cannot run are repaired here, the way rl-baselines3-zoo does, and each repair
    is reported in ``adjustments`` (and recorded by the trial): ``batch_size``
    larger than one rollout (``n_steps * n_envs``) is cut to the rollout size.
    """
    # A policy setting is one whether fixed or searched: `ppo: {net_arch: [64, 64]}`
    # lands in policy_kwargs as a searched net_arch does.
    fixed = {k: v for k, v in spec.ppo.items() if k != "policy_kwargs"}
    ppo: dict[str, Any] = {k: v for k, v in fixed.items() if k not in POLICY_KEYS}
    policy: dict[str, Any] = dict(spec.ppo.get("policy_kwargs", {}))
    policy.update({k: v for k, v in fixed.items() if k in POLICY_KEYS})
    searched_env: dict[str, Any] = {}

    for name, raw in values.items():
        p = spec.search_space[name]
        value = p.value_of(raw) if isinstance(p, CategoricalParam) else raw
        if name in POLICY_KEYS:
            policy[name] = value
        elif name in ENV_KEYS:
            searched_env[name] = value
        else:
            ppo[name] = value

    adjustments: dict[str, str] = {}
    n_steps = int(ppo.get("n_steps", 2048))
    rollout = n_steps * spec.budget.n_envs
    batch = int(ppo.get("batch_size", 64))
    if batch > rollout:
        ppo["batch_size"] = rollout
        adjustments["batch_size"] = f"{batch} > n_steps * n_envs = {rollout}: cut to {rollout}"
    if isinstance(policy.get("net_arch"), tuple):
        policy["net_arch"] = list(policy["net_arch"])
    if policy:
        ppo["policy_kwargs"] = policy
    game = game_options(spec.env, searched_env)
    return ModelConfig(ppo_kwargs=ppo, game=game, adjustments=adjustments)


def materialize(ppo_kwargs: dict[str, Any], game: GameOptions = DEFAULTS) -> dict[str, Any]:
    """Plain kwargs -> what ``MaskablePPO(...)`` takes: classes, LR schedules.

    ``game`` tells the ``lookahead`` features which variant they simulate (stones per
    pit, empty captures).
    """
    import torch.nn as nn

    out = dict(ppo_kwargs)
    schedule = out.pop("lr_schedule", "constant")
    if schedule == "linear":
        out["learning_rate"] = _linear_schedule(float(out.get("learning_rate", 3.0e-4)))
    policy = dict(out.get("policy_kwargs", {}))
    if "activation_fn" in policy:
        policy["activation_fn"] = getattr(nn, ACTIVATIONS[policy["activation_fn"]])
    trunk = policy.pop("shared_trunk", None)
    plies = policy.pop("lookahead", 0)
    if plies or trunk:
        from env import networks

        extractor: dict[str, Any] = {}
        if plies:  # the variant tells the features which rules to simulate
            extractor = {
                "plies": int(plies),
                "stones": game.stones,
                "empty_capture": game.empty_capture,
            }
        if trunk:  # shared layers, over the counts or over the lookahead features
            extractor["hidden"] = list(trunk)
            policy["share_features_extractor"] = True
        policy["features_extractor_class"] = (
            networks.PrecomputedLookahead if plies else networks.SharedTrunk
        )
        policy["features_extractor_kwargs"] = extractor
    if policy:
        out["policy_kwargs"] = policy
    return out


def lookahead_plies(ppo_kwargs: dict[str, Any]) -> int:
    """The lookahead plies a config's network reads: the env must compute those features
    (``KalahaVecEnv(lookahead=...)``), since the network only reads them."""
    return int(ppo_kwargs.get("policy_kwargs", {}).get("lookahead", 0) or 0)


class _linear_schedule:
    """Learning rate decaying linearly to 0 over training (SB3 passes progress 1 -> 0).

    A class rather than a closure so that a saved model can be pickled.
    """

    def __init__(self, initial: float) -> None:
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial
