"""The checks of a study file that touch the world, after its models have read it.

:mod:`tuner.config.spec` checks what a file says on its own; these checks ask
the installed libraries and the game: MaskablePPO's signature (a misspelt PPO
key), the policy's (a misspelt ``policy_kwargs`` key), the opponents the game
knows (a policy file must exist and load, safely), the activations a model file
may name, and the reference ladder (a rating is only meaningful on its game).
They import env (numba) and read sb3-contrib's signatures, so only what builds or
trains a model runs them (through :func:`tuner.config.loading.parse_spec`), never
a command that only reads a stored spec.

Each check raises ``ValueError`` with one line that names the key; the loader adds
the file.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from env.curriculum import is_curriculum, parse_curriculum
from env.opponents import make_opponent
from env.options import LEAGUE_NAMES
from env.policy_files import ACTIVATIONS
from tuner.config.bounds import (
    PPO_DEFAULTS,
    check_batch_fits,
    check_searched,
    check_settings,
)
from tuner.config.spec import (
    ENV_KEYS,
    POLICY_KEYS,
    SCHEDULE_KEYS,
    CategoricalParam,
    IntParam,
    StudySpec,
    check_ppo_numbers,
)

# MaskablePPO arguments a file cannot set: the tuner sets them itself.
NOT_TUNABLE = {"policy", "env", "tensorboard_log", "verbose", "seed", "device", "_init_setup_model"}
# Policy constructor arguments a YAML file cannot give (classes, spaces) or that the
# tuner sets itself (``shared_trunk`` sets the features extractor).
_POLICY_NOT_SETTABLE = {
    "self",
    "observation_space",
    "action_space",
    "lr_schedule",
    "features_extractor_class",
    "features_extractor_kwargs",
    "optimizer_class",
}


def ppo_argument_keys() -> set[str]:
    """MaskablePPO keyword arguments a file may set (its signature, less what the tuner sets)."""
    from sb3_contrib import MaskablePPO

    return set(inspect.signature(MaskablePPO.__init__).parameters) - {"self"} - NOT_TUNABLE


def policy_keys() -> set[str]:
    """Keys ``ppo.policy_kwargs`` may hold: MaskableActorCriticPolicy's own, by name."""
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    params = set(inspect.signature(MaskableActorCriticPolicy.__init__).parameters)
    return (params - _POLICY_NOT_SETTABLE) | POLICY_KEYS


def check_study(spec: StudySpec) -> None:
    """Every check of this module, in the order their errors surface."""
    check_setting_names(spec)
    if "policy_kwargs" in spec.ppo:
        check_policy_kwargs(spec.ppo["policy_kwargs"], "ppo.policy_kwargs")
    check_bounds(spec)
    check_opponent_names(spec.env.opponents, "key 'env.opponents'")
    if spec.evaluation.opponents is not None:
        check_opponent_names(spec.evaluation.opponents, "key 'evaluation.opponents'")
    check_searched_names(spec)
    if spec.evaluation.objective == "rating":
        check_ladder_game(spec)
    if spec.evaluation.perfect_required:
        check_perfect_game(spec)


def check_setting_names(spec: StudySpec) -> None:
    """Every ``ppo`` and ``search_space`` key names a setting the tuner knows where to put."""
    ppo_keys = ppo_argument_keys()
    known = ppo_keys | POLICY_KEYS | SCHEDULE_KEYS | ENV_KEYS
    for where, keys in (("ppo", spec.ppo), ("search_space", spec.search_space)):
        for key in keys:
            if key not in known:
                raise ValueError(
                    f"{where}.{key}: unknown setting; expected a MaskablePPO argument "
                    f"({', '.join(sorted(ppo_keys))}), a policy setting "
                    f"({', '.join(sorted(POLICY_KEYS))}), lr_schedule or an env option "
                    f"({', '.join(sorted(ENV_KEYS))})"
                )


def check_bounds(spec: StudySpec) -> None:
    """Every value a trial can be built with is within its bound (:mod:`tuner.config.bounds`).

    One rule for fixed and searched values: each fixed setting; both ends of each
    searched range (a bound is an interval, so the ends stand for the range) and each
    searched choice; then the batch against the rollout over every combination of
    ``n_steps`` and ``batch_size`` the search can draw.
    """
    check_settings(spec.ppo, "ppo")
    for name, param in spec.search_space.items():
        if isinstance(param, CategoricalParam):
            values = [param.value_of(c) for c in param.option_names]
        else:
            values = [param.low, param.high]
        check_searched(name, param.type, values, f"search_space.{name}")
    searched = {"n_steps", "batch_size"} & set(spec.search_space)
    where = f"search_space.{sorted(searched)[0]}" if searched else "ppo.batch_size"
    if not searched:  # a fixed batch larger than the rollout is the file's slip
        rollout = _drawn(spec, "n_steps")[0] * spec.budget.n_envs
        batch = _drawn(spec, "batch_size")[0]
        if batch is not None and batch > rollout:
            raise ValueError(
                f"ppo.batch_size: expected at most n_steps * n_envs = {rollout}, but got {batch}"
            )
    check_batch_fits(_drawn(spec, "n_steps"), _drawn(spec, "batch_size"), spec.budget.n_envs, where)


def _drawn(spec: StudySpec, key: str) -> Sequence[Any]:
    """Every value of ``key`` a trial can be built with: its range (a ``range``) or choices,
    and its fixed value or MaskablePPO's default where a condition leaves it unset."""
    param = spec.search_space.get(key)
    default = spec.ppo.get(key, PPO_DEFAULTS[key])
    if param is None:
        return [default]
    if isinstance(param, IntParam):
        drawn: Sequence[Any] = range(param.low, param.high + 1, param.step)
    elif isinstance(param, CategoricalParam):
        drawn = [param.value_of(c) for c in param.option_names]
    else:  # a float: check_searched refused it for an integer setting
        return [default]
    return [*drawn, default] if param.condition else drawn


def check_policy_kwargs(value: Any, where: str = "ppo.policy_kwargs") -> None:
    """A mapping whose keys the policy takes: a typo (``ortho_int``) fails here, not in
    every trial."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping of policy settings, but got {value!r}")
    allowed = policy_keys()
    for key in value:
        if key not in allowed:
            raise ValueError(
                f"{where}.{key}: unknown policy setting; expected one of {sorted(allowed)}"
            )
    if "activation_fn" in value and value["activation_fn"] not in ACTIVATIONS:
        raise ValueError(
            f"{where}.activation_fn: expected one of {list(ACTIVATIONS)}, "
            f"but got {value['activation_fn']!r}"
        )


def check_ppo_values(ppo: dict[str, Any], where: str) -> None:
    """Fixed MaskablePPO settings (an export's ``ppo_kwargs``): a ``policy_kwargs`` the
    policy takes, finite numbers, no numbers hiding in strings, each within its bound."""
    if "policy_kwargs" in ppo:
        check_policy_kwargs(ppo["policy_kwargs"], f"{where}.policy_kwargs")
    check_ppo_numbers(ppo, where)
    check_settings(ppo, where)


def check_opponent_names(names: Any, where: str) -> None:
    """Each name is a league name (``self``, ``pool``), a curriculum (``curriculum:4``) or an
    opponent the game can build.

    A policy file must exist and load (safely: weights and metadata only) before any
    trial counts on it; ``make_opponent`` raises with the valid forms.
    """
    for name in names:
        if name in LEAGUE_NAMES:
            continue
        try:
            parse_curriculum(name) if is_curriculum(name) else make_opponent(name)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


def check_searched_names(spec: StudySpec) -> None:
    """Searched activations and opponent mixes name ones the game knows.

    A typo fails when the file is loaded, not in the one trial that happens to sample it.
    """
    act = spec.search_space.get("activation_fn")
    for a in act.option_names if isinstance(act, CategoricalParam) else []:
        if a not in ACTIVATIONS:
            raise ValueError(f"activation_fn: expected one of {list(ACTIVATIONS)}, but got {a!r}")
    mix = spec.search_space.get("opponents")
    if isinstance(mix, CategoricalParam) and isinstance(mix.choices, dict):
        for label, value in mix.choices.items():
            check_opponent_names(value, f"search_space.opponents.{label}")


def check_ladder_game(spec: StudySpec) -> None:
    """A rating is only meaningful on the game the ladder was measured on."""
    from tuner.strength.ladder import load_ladder

    ladder = load_ladder()
    searched = {"stones", "empty_capture"} & set(spec.search_space)
    if spec.env.stones != ladder.stones or spec.env.empty_capture or searched:
        found = f"stones {spec.env.stones}, empty_capture {spec.env.empty_capture}"
        found += f", searched: {sorted(searched)}" if searched else ""
        raise ValueError(
            f"env: expected stones {ladder.stones} and empty_capture false, not searched, "
            f"with evaluation.objective: rating (the reference ladder was measured on that "
            f"game), but got {found}; use objective: score for other variants"
        )


def check_perfect_game(spec: StudySpec) -> None:
    """The solved set is of Kalah(6,4) with standard capture: a study that asks for
    perfect-play numbers must train on that game."""
    searched = {"stones", "empty_capture"} & set(spec.search_space)
    if spec.env.stones != 4 or spec.env.empty_capture or searched:
        found = f"stones {spec.env.stones}, empty_capture {spec.env.empty_capture}"
        found += f", searched: {sorted(searched)}" if searched else ""
        asked = (
            "evaluation.objective: perfect"
            if spec.evaluation.objective == "perfect"
            else "evaluation.perfect: true"
        )
        raise ValueError(
            f"env: expected stones 4 and empty_capture false, not searched, with {asked} "
            f"(the solved set is Kalah(6,4) with standard capture), but got {found}"
        )
