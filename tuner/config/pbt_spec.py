"""The ``pbt:`` block of a study file: population-based training, and what it may change.

With ``pbt`` a study trains a population side by side instead of independent trials
(``tuner.pbt``): every ``interval`` timesteps the bottom ``quantile`` of the members copy
the weights of a top member (exploit) and perturb its parameters (explore). So every
parameter of its ``search_space`` must be one that can change between two intervals of
one training run; the network, the rollout buffer and the game cannot, and say so here,
before anything trains.

Kept apart from :mod:`tuner.config.spec` so that the spec only holds one more field; it
imports nothing from the spec (the checks read the spec they are given).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from tuner.config.spec import StudySpec

# Settings a member may change between intervals. Each unit builds its model and envs
# afresh from its own configuration and then loads the member's weights, optimizer
# state and self-play pool (tuner.pbt.checkpoint), so what may change is whatever does
# not change the shape of the saved state: PPO's coefficients and the rollout's discount,
# and the env's opponents, league and shaping.
MUTABLE_PPO = (
    "learning_rate",
    "ent_coef",
    "clip_range",
    "vf_coef",
    "max_grad_norm",
    "target_kl",
    "gamma",
    "gae_lambda",
    "n_epochs",
)
MUTABLE_ENV = (
    "opponents",
    "pool_sampling",
    "pool_size",
    "snapshot_every",
    "store_diff_coef",
    "extra_turn_coef",
    "opening_plies",
)
MUTABLE = MUTABLE_PPO + MUTABLE_ENV


class PbtSpec(BaseModel):
    """``pbt: {population, interval, quantile, perturb, resample_probability, exploit_z}``.

    - ``population``: members trained side by side (each one unit per interval).
    - ``interval``: timesteps between two exploit/explore decisions; a whole number of
      rollouts (``n_steps * n_envs``) that divides ``budget.total_timesteps``.
    - ``quantile``: the bottom share that may copy a member of the top share (0 < q <= 0.5).
    - ``perturb``: the factors a number is multiplied by when explored (one drawn per
      parameter); a choice moves to a neighbouring choice instead.
    - ``resample_probability``: the chance that a parameter is drawn afresh from its range
      instead of perturbed.
    - ``exploit_z``: a bottom member copies a top one only when the difference of their
      values exceeds ``exploit_z`` standard errors of that difference (1.96: outside the
      95% noise of the two evaluations); 0 copies on any difference, as Ray Tune does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    population: int = Field(ge=2, le=256)
    interval: int = Field(ge=1)
    quantile: float = Field(0.25, gt=0.0, le=0.5)
    perturb: list[float] = Field(default_factory=lambda: [0.8, 1.2], min_length=1, max_length=16)
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)
    exploit_z: float = Field(1.96, ge=0.0, le=10.0)

    @field_validator("perturb")
    @classmethod
    def _factors(cls, v: list[float]) -> list[float]:
        bad = [f for f in v if not (math.isfinite(f) and f > 0)]
        if bad:
            raise ValueError(f"expected positive factors such as [0.8, 1.2], but got {v}")
        return v

    def intervals(self, total_timesteps: int) -> int:
        """Units per member: the member's budget in intervals."""
        return total_timesteps // self.interval


def check_pbt(spec: StudySpec) -> None:
    """A PBT study's other settings fit it; raise ``ValueError`` (one line) if not."""
    pbt = spec.pbt
    if pbt is None:
        return
    for name, param in spec.search_space.items():
        if name not in MUTABLE:
            raise ValueError(
                f"search_space.{name}: expected settings that can change during training with "
                f"pbt ({', '.join(MUTABLE)}), but got {name}, which is fixed once the model is "
                "built; move it to ppo: (or env:) or drop pbt"
            )
        if param.condition:
            raise ValueError(
                f"search_space.{name}.condition: expected no conditions with pbt (a member's "
                "parameters all apply for its whole run), but got one; drop the condition"
            )
    _check_pbt_budget(spec)


def _check_pbt_budget(spec: StudySpec) -> None:
    """Intervals of whole rollouts, the member's budget in whole intervals, n_trials = units.

    A PBT study prunes nothing and evaluates each unit once: an explicit pruner other
    than ``none`` or another ``n_evaluations`` is an error, the defaults are replaced.
    """
    pbt = spec.pbt
    assert pbt is not None
    budget = spec.budget
    rollout = int(spec.ppo.get("n_steps", 2048)) * budget.n_envs
    if pbt.interval % rollout:
        raise ValueError(
            f"pbt.interval: expected a multiple of one rollout (n_steps * n_envs = {rollout}), "
            f"but got {pbt.interval}; SB3 trains whole rollouts, so intervals would drift"
        )
    if budget.total_timesteps % pbt.interval:
        raise ValueError(
            f"budget.total_timesteps: expected a multiple of pbt.interval ({pbt.interval}), "
            f"but got {budget.total_timesteps}"
        )
    n = pbt.intervals(budget.total_timesteps)
    units = pbt.population * n
    if spec.n_trials != units:
        raise ValueError(
            f"n_trials: expected population * intervals = {pbt.population} * {n} = {units} "
            f"with pbt (each unit of one member's interval is a trial), but got {spec.n_trials}"
        )
    if budget.n_evaluations != n:
        raise ValueError(
            f"budget.n_evaluations: expected {n} or none with pbt (each unit is evaluated "
            f"once, at its end), but got {budget.n_evaluations}"
        )
    if budget.runs != 1:
        raise ValueError(f"budget.runs: expected 1 with pbt, but got {budget.runs}")
    if spec.pruner.type != "none":
        raise ValueError(
            f"pruner.type: expected none with pbt (the population replaces its weakest "
            f"members itself), but got {spec.pruner.type}; remove the pruner"
        )


def pbt_defaults(data: Any) -> Any:
    """What a PBT study runs, written into the file's data before the models read it: no
    pruner, and one evaluation per interval (each unit is evaluated once, at its end).

    Written into the data rather than into the validated spec (the models are frozen) so
    that status, the report and the spec stored on the study say it, and the stored spec
    reads back the same. An explicit pruner or ``n_evaluations`` is kept, for
    :func:`check_pbt` to refuse if it does not fit.
    """
    if not isinstance(data, dict) or not isinstance(data.get("pbt"), dict):
        return data
    pruner = data.get("pruner")
    if pruner is None or (isinstance(pruner, dict) and pruner.get("type") == "none"):
        data = {**data, "pruner": {"type": "none", "options": {}}}
    budget, interval = data.get("budget"), data["pbt"].get("interval")
    if isinstance(budget, dict) and "n_evaluations" not in budget:
        total = budget.get("total_timesteps")
        if _positive_int(total) and _positive_int(interval) and total >= interval:
            data = {**data, "budget": {**budget, "n_evaluations": total // interval}}
    return data


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
