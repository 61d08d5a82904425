"""What each setting may hold: one table, applied alike to a fixed value, to both ends of a
searched range and to every searched choice.

A value outside its bounds cannot train: ``batch_size: 0`` spins in the PPO update
forever, ``batch_size: 1`` normalizes advantages over one sample (NaN), a searched
``pool_size: 500`` fails every trial it is drawn in. So a study file, its search space and
an export are refused before any trial runs, in one line that names the key, the bound and
the value, by the same rule (:func:`check_value`) whatever the value's origin.

The batch's fit to the rollout reads two keys and the budget, so it is a rule of its own
(:func:`check_batch_fits`), checked over every combination a search can draw.

A leaf, like :mod:`tuner.config.spec` (no env, torch or optuna): the game's own limits
are read from :mod:`env.options` when a value is checked.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# Layer widths and depths a network may have: far above any useful size, far below one
# whose weights fill memory when the model is built.
MAX_LAYER_WIDTH = 8192
MAX_LAYERS = 32
# Games of one evaluation: a million games is hours of play and a few hundred MB of
# boards; 10**9 allocated 26 GiB after the whole trial had trained.
MAX_EVAL_GAMES = 1_000_000
# Rollout steps per env: a rollout buffer of n_steps * n_envs steps is held in memory.
MAX_N_STEPS = 1 << 16
# Defaults MaskablePPO takes when a study leaves a key out (or a condition leaves it unset).
PPO_DEFAULTS = {"n_steps": 2048, "batch_size": 64}


@dataclass(frozen=True)
class Number:
    """A number in an interval: ``low`` (excluded when ``low_open``) up to ``high``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False
    # ``null`` is allowed (SB3's "off": no target_kl, no value clipping, one minibatch).
    none: bool = False
    why: str = ""

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None and not self.low_open:
            span = f" in [{_num(self.low)}, {_num(self.high)}]"
        else:
            parts = []
            if self.low is not None:
                parts.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
            if self.high is not None:
                parts.append(f"<= {_num(self.high)}")
            span = (" " + " and ".join(parts)) if parts else ""
        return (
            kind + span + (" or null" if self.none else "") + (f" ({self.why})" if self.why else "")
        )

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.none
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false``."""

    def describe(self) -> str:
        return "true or false"

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Layers:
    """Hidden layer widths: a list of positive integers, or (``pi_vf``) SB3's
    ``{pi: [...], vf: [...]}`` form with separate actor and critic layers."""

    pi_vf: bool = True

    def describe(self) -> str:
        widths = f"a list of at most {MAX_LAYERS} integers in [1, {MAX_LAYER_WIDTH}]"
        return widths + (" or {pi: [...], vf: [...]} of such lists" if self.pi_vf else "")

    def ok(self, value: Any) -> bool:
        if self.pi_vf and isinstance(value, dict):
            return bool(value) and set(value) <= {"pi", "vf"} and all(map(_widths, value.values()))
        return _widths(value)


def _widths(value: Any) -> bool:
    if not isinstance(value, list | tuple) or len(value) > MAX_LAYERS:
        return False
    width = Number(1, MAX_LAYER_WIDTH, integer=True)
    return all(width.ok(w) for w in value)


Bound = Number | Flag | Layers

# MaskablePPO's arguments and the policy's settings, as a study's `ppo:` (and
# `ppo.policy_kwargs`), its search space and an export's `ppo_kwargs` give them. A key
# not listed (lr_schedule, activation_fn, a callable's name) is checked by name elsewhere.
SETTING_BOUNDS: dict[str, Bound] = {
    "learning_rate": Number(0, None, low_open=True),
    "n_steps": Number(1, MAX_N_STEPS, integer=True),
    "batch_size": Number(
        2, None, integer=True, none=True, why="advantages are normalized over each minibatch"
    ),
    "n_epochs": Number(1, 1000, integer=True),
    "gamma": Number(0, 1),
    "gae_lambda": Number(0, 1),
    "clip_range": Number(0, None, low_open=True),
    "clip_range_vf": Number(0, None, low_open=True, none=True),
    "normalize_advantage": Flag(),
    "ent_coef": Number(),
    "vf_coef": Number(0, None),
    "max_grad_norm": Number(0, None, low_open=True),
    "target_kl": Number(0, None, low_open=True, none=True),
    "stats_window_size": Number(1, 1_000_000, integer=True),
    "net_arch": Layers(),
    "shared_trunk": Layers(pi_vf=False),
    "lookahead": Number(0, 2, integer=True, why="0: the counts only; 1 or 2 plies"),
    "ortho_init": Flag(),
    "share_features_extractor": Flag(),
}


@cache
def env_bounds() -> dict[str, Bound]:
    """The env options a study fixes under ``env:`` or searches (read from the game once)."""
    import env.options

    plies = env.options.MAX_OPENING_PLIES
    return {
        "stones": Number(3, 6, integer=True),
        "empty_capture": Flag(),
        "opening_plies": Number(
            0,
            plies,
            integer=True,
            why="longer random openings end most games before the agent moves",
        ),
        "store_diff_coef": Number(),
        "extra_turn_coef": Number(),
        "snapshot_every": Number(1, None, integer=True),
        "pool_size": Number(1, 100, integer=True),
    }


def bound_of(key: str) -> Bound | None:
    """The bound of a setting or env option; None for one checked by name elsewhere."""
    return SETTING_BOUNDS.get(key) or env_bounds().get(key)


def check_value(key: str, value: Any, where: str) -> None:
    """The one rule: ``value`` of ``key`` within its bound, else ``ValueError`` naming
    ``where``, the bound and the value."""
    bound = bound_of(key)
    if bound is not None and not bound.ok(value):
        prefix = f"{where}: " if where else ""  # a model's validator: pydantic names the key
        raise ValueError(f"{prefix}expected {bound.describe()}, but got {value!r}")


def check_settings(settings: dict[str, Any], where: str) -> None:
    """Fixed settings (a study's ``ppo``, an export's ``ppo_kwargs``), ``policy_kwargs``
    included."""
    for key, value in settings.items():
        if key == "policy_kwargs" and isinstance(value, dict):
            check_settings(value, f"{where}.policy_kwargs")
        else:
            check_value(key, value, f"{where}.{key}")


def check_searched(name: str, kind: str, values: Iterable[Any], where: str) -> None:
    """A searched parameter: ``values`` are the ends of its range or each of its choices;
    an integer setting is never drawn as a float."""
    bound = bound_of(name)
    if bound is None:
        return
    if kind == "float" and isinstance(bound, Number) and bound.integer:
        raise ValueError(
            f"{where}: expected an int or categorical parameter ({name} is {bound.describe()}), "
            "but got type: float"
        )
    for value in values:
        check_value(name, value, where)


# --- the batch against the rollout ----------------------------------------------------------


def check_batch_fits(
    n_steps: Sequence[int], batch_sizes: Sequence[int | None], n_envs: int, where: str
) -> None:
    """Every rollout ``n_steps * n_envs`` a study can draw holds two samples, and no batch it
    can draw leaves a last minibatch of one sample (advantages normalized over one sample
    are NaN: every such trial diverges).

    ``n_steps`` and ``batch_sizes`` are every value the study can give each (a ``range``
    for a searched integer range, checked by arithmetic rather than one by one). A batch
    above the rollout is cut to it (:func:`tuner.config.space.to_config`), so it fits.
    """
    smallest = min(n_steps) * n_envs
    if smallest < 2:
        raise ValueError(
            f"{where}: expected n_steps * n_envs >= 2 (a rollout of one sample cannot "
            f"normalize its advantages), but got {min(n_steps)} * {n_envs}"
        )
    for batch in batch_sizes:
        if batch is None:
            continue
        n = _one_sample_left(batch, n_steps, n_envs)
        if n is not None:
            raise ValueError(
                f"{where}: expected a batch_size that leaves no minibatch of one sample "
                f"(its advantages are normalized: NaN), but got batch_size {batch} with "
                f"n_steps {n} * n_envs {n_envs} = {n * n_envs} = {(n * n_envs) // batch} * "
                f"{batch} + 1; pick sizes that divide the rollout"
            )


def _one_sample_left(batch: int, n_steps: Sequence[int], n_envs: int) -> int | None:
    """An ``n`` among ``n_steps`` whose rollout ``R = n * n_envs >= batch`` has ``R % batch == 1``."""
    need = -(-batch // n_envs)  # below this the batch is cut to the rollout: it fits
    if not isinstance(n_steps, range):
        return next((n for n in n_steps if n >= need and (n * n_envs) % batch == 1), None)
    skip = max(0, -(-(need - n_steps.start) // n_steps.step))
    ns = n_steps[skip:]
    if not ns:
        return None
    # n = start + k * step: solve start * E + k * step * E = 1 (mod batch) for 0 <= k < len.
    a, d = ns.start * n_envs, ns.step * n_envs
    g = math.gcd(d, batch)
    rest = (1 - a) % batch
    if rest % g:
        return None
    m = batch // g
    k = (rest // g) * pow(d // g, -1, m) % m if m > 1 else 0
    return ns[k] if k < len(ns) else None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
