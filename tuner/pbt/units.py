"""Units of work of a PBT study: queued by the planner, claimed and run like any trial.

A unit is member ``m``'s interval ``k``: an Optuna trial that trains ``pbt.interval``
timesteps from the member's last checkpoint and is evaluated once at its end. Units go
through the worker's own trial lifecycle (``tuner.trial.lifecycle``): claimed under the
claim lock, within ``n_trials`` (population x intervals), with a heartbeat; a unit whose
worker dies is failed as stale and re-queued with its params and identity (its system
attrs), and the retry starts again from the same checkpoint: the dead worker's partial
interval is lost, nothing it finished is, and nothing runs twice.

The planner (:class:`Planner`) is called by every claim, under the lock, before a
trial is taken. It queues the first interval of every member as WAITING trials without
params (the study's sampler draws them when a worker runs the unit), and, once every
member's interval ``k`` is finished, the units of ``k + 1``, each with the parameters
and parent checkpoint decided by :func:`tuner.pbt.scheduler.decide` (synchronous PBT:
members are compared at equal timesteps). Its randomness is seeded by the study's seed
and ``k``, so a planner that dies half-way and another that takes over queue the same
units; only the missing ones are added.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import save_note

from tuner.base.runs import tensorboard_dir
from tuner.base.settings import DEFAULT_RUNS
from tuner.config.space import ModelConfig
from tuner.config.spec import CategoricalParam, FloatParam, StudySpec
from tuner.pbt.checkpoint import MemberState, download_state, upload_state, weights_digest
from tuner.pbt.population import MISSING, Z95, Population
from tuner.pbt.scheduler import Decision, decide
from tuner.storage.optuna_compat import storage_of, study_id, trial_id
from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.trial.callbacks import Evaluation
from tuner.trial.note import trial_note
from tuner.trial.objective import (
    TrialFailed,
    real_values,
    record_run,
    run_callbacks,
    run_value,
    sample_config,
    upload_model,
)
from tuner.trial.progress import TrialHooks
from tuner.trial.training import train

log = logging.getLogger("tuner.pbt.units")

# Unit (m, k) trains with seed spec.seed + SEED_STRIDE * k + m (population <= 256), and
# every member's evaluation at interval k plays the same openings (seed spec.seed +
# EVAL_SEED_BASE + k): a paired comparison of the members the scheduler ranks.
SEED_STRIDE = 1_000
EVAL_SEED_BASE = 500_000


def unit_seed(spec: StudySpec, member: int, interval: int) -> int:
    return spec.seed + SEED_STRIDE * interval + member


def eval_seed(spec: StudySpec, interval: int) -> int:
    return spec.seed + EVAL_SEED_BASE + interval


def distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each searched parameter, as ``tuner.config.space.sample`` asks."""
    out: dict[str, BaseDistribution] = {}
    for name, p in spec.search_space.items():
        if isinstance(p, CategoricalParam):
            out[name] = CategoricalDistribution(p.option_names)
        elif isinstance(p, FloatParam):
            out[name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
        else:
            out[name] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
    return out


# --- the planner ---------------------------------------------------------------------------


class Planner:
    """Queue the units that can run now (see the module docstring); called under the claim lock.

    ``on_generation`` hears of each newly planned interval (the dashboard note).
    """

    def __init__(
        self, spec: StudySpec, on_generation: Callable[[optuna.Study], None] | None = None
    ) -> None:
        assert spec.pbt is not None, "the planner of a study without pbt"
        self.spec = spec
        self.pbt = spec.pbt
        self.on_generation = on_generation
        self._finished_noted = False

    def __call__(self, study: optuna.Study, trials: list[FrozenTrial]) -> bool:
        """Whether units were queued."""
        population = Population.of(trials, self.spec)
        k = population.next_to_queue()
        if k is None:
            self._note_finished(study, population)
            return False
        if k > 0 and not population.done(k - 1):
            return False
        missing = [m for m in range(self.pbt.population) if population.state(m, k) == MISSING]
        if k == 0:
            for m in missing:
                queue_unit(study, m, 0, None, None)
        else:
            decisions = self.decisions(population, k)
            if not decisions:
                log.error(
                    "every member's unit of interval %d failed: the population is lost", k - 1
                )
                return False
            for d in decisions:
                if d.member in missing:
                    queue_unit(study, d.member, k, d, distributions(self.spec))
        if self.on_generation is not None:
            self.on_generation(study)
        return True

    def _note_finished(self, study: optuna.Study, population: Population) -> None:
        """The last interval's results into the note, once per worker, when it is done."""
        last = population.intervals - 1
        if self._finished_noted or not population.done(last) or self.on_generation is None:
            return
        self._finished_noted = True
        self.on_generation(study)

    def decisions(self, population: Population, k: int) -> list[Decision]:
        """What each member does in interval ``k``, from the results of ``k - 1`` (reproducible)."""
        rng = np.random.default_rng([self.spec.seed % 2**32, k])
        return decide(
            population.results(k - 1, self.spec),
            self.pbt,
            self.spec.search_space,
            maximize=self.spec.direction == "maximize",
            rng=rng,
        )


def queue_unit(
    study: optuna.Study,
    member: int,
    interval: int,
    decision: Decision | None,
    dists: dict[str, BaseDistribution] | None,
) -> None:
    """Add member ``member``'s unit of ``interval`` as a WAITING trial.

    Its identity, parent and decision go into system attrs (a retry copies them) and
    user attrs (the dashboard shows them while it waits); the first interval has no
    params yet: the sampler draws them when it runs.
    """
    parent = decision.parent_trial if decision else None
    record = decision.record if decision else {"action": "start"}
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=decision.params if decision else None,
            distributions=dists if decision else None,
            user_attrs={
                TrialAttr.PBT_MEMBER: member,
                TrialAttr.PBT_INTERVAL: interval,
                TrialAttr.PBT_PARENT: parent,
                TrialAttr.PBT_DECISION: record,
            },
            system_attrs={
                TrialSystemAttr.PBT_MEMBER: member,
                TrialSystemAttr.PBT_INTERVAL: interval,
                TrialSystemAttr.PBT_PARENT: parent,
                TrialSystemAttr.PBT_DECISION: record,
            },
        )
    )


# --- running a unit --------------------------------------------------------------------------


def schedule_values(spec: StudySpec, config: ModelConfig) -> dict[str, Any]:
    """The searched settings' values as the model got them (the opponent mix included)."""
    values = real_values(spec, config.ppo_kwargs, config.game)
    if "opponents" in spec.search_space:
        values["opponents"] = config.game.as_dict()["opponents"]
    return values


def value_se(ev: Evaluation, spec: StudySpec) -> float:
    """The standard error of an evaluation's value, from its 95% intervals.

    A rating: its profile-likelihood interval. A score: each opponent's interval over
    opening pairs, combined as the study combines the scores (mean, weighted, min).
    """
    if ev.rating is not None:
        return max(0.0, (ev.rating.high - ev.rating.low) / (2 * Z95))
    se = {k: max(0.0, (r.ci_high - r.ci_low) / (2 * Z95)) for k, r in ev.results.items()}
    if not se:
        return 0.0
    combine = spec.evaluation.combine
    if combine == "min":
        worst = min(ev.results, key=lambda k: ev.results[k].score)
        return se[worst]
    weights = spec.evaluation.weights if combine == "weighted" else None
    w = {k: (weights or {}).get(k, 1.0) for k in se}
    total = sum(w.values()) or 1.0
    return math.sqrt(sum((w[k] * se[k]) ** 2 for k in se)) / total


def _unit_identity(trial: optuna.Trial) -> tuple[int, int, int | None, dict[str, Any]]:
    """(member, interval, parent trial number, decision) from the unit's system attrs."""
    attrs = trial.storage.get_trial_system_attrs(trial_id(trial))
    if TrialSystemAttr.PBT_MEMBER not in attrs:
        raise TrialFailed("not a PBT unit (no pbt_member): units are queued by the planner")
    parent = attrs.get(TrialSystemAttr.PBT_PARENT)
    return (
        int(attrs[TrialSystemAttr.PBT_MEMBER]),
        int(attrs[TrialSystemAttr.PBT_INTERVAL]),
        None if parent is None else int(parent),
        dict(attrs.get(TrialSystemAttr.PBT_DECISION) or {}),
    )


def _parent(trial: optuna.Trial, number: int | None) -> FrozenTrial | None:
    if number is None:
        return None
    storage = storage_of(trial.study)
    tid = storage.get_trial_id_from_study_id_trial_number(study_id(trial.study), number)
    parent = storage.get_trial(tid)
    if parent.state != TrialState.COMPLETE or TrialAttr.PBT_CHECKPOINT_ID not in parent.user_attrs:
        raise TrialFailed(f"the parent unit (trial {number}) has no checkpoint to start from")
    return parent


def run_unit(
    trial: optuna.Trial,
    spec: StudySpec,
    *,
    device: str = "auto",
    runs_dir: Path = DEFAULT_RUNS,
    should_stop: Callable[[], str | None] | None = None,
    progress: TrialHooks | None = None,
) -> float:
    """The worker's objective for a PBT study: train one unit, record it, save its checkpoint."""
    pbt = spec.pbt
    assert pbt is not None
    member, interval, parent_number, decision = _unit_identity(trial)
    parent = _parent(trial, parent_number)
    config = sample_config(trial, spec)
    start = interval * pbt.interval
    seed = unit_seed(spec, member, interval)
    _label(trial, (member, interval, seed, start), parent, decision, schedule_values(spec, config))
    given = (
        download_state(parent.user_attrs[TrialAttr.PBT_CHECKPOINT_ID], runs_dir) if parent else None
    )
    restored: dict[str, Any] = {}

    def restore(model: Any, pools: list[Any]) -> None:
        if given is not None:
            given.restore(model, pools)
        restored["pools"] = pools
        trial.set_user_attr(TrialAttr.PBT_WEIGHTS_START, weights_digest(model.policy))

    run = train(
        config.ppo_kwargs,
        config.game,
        total_timesteps=pbt.interval,
        n_envs=spec.budget.n_envs,
        n_evaluations=1,
        evaluation=spec.evaluation,
        seed=seed,
        eval_seed=eval_seed(spec, interval),
        device=device,
        tensorboard_log=tensorboard_dir(runs_dir, spec.study_name),
        tb_log_name=f"member_{member:03d}",
        callbacks=run_callbacks(None, should_stop, progress, offset=-start),
        restore=restore,
    )
    record_run(trial, run)
    value = run_value(spec, run)
    _save_unit(trial, spec, run, MemberState.capture(run.model, restored["pools"], given), runs_dir)
    trial.set_user_attr(TrialAttr.PBT_VALUE_SE, value_se(run.state.evaluations[-1], spec))
    save_note(trial, _unit_note(trial, spec, run))
    # Rounded as a trial's value is: an Elo to 0.1, a score to 4 places.
    return round(value, 1 if spec.evaluation.objective == "rating" else 4)


def _unit_note(trial: optuna.Trial, spec: StudySpec, run: Any) -> str:
    """The trial's dashboard note, with the member, its lineage and what was decided."""
    u = trial.user_attrs
    decision = u.get(TrialAttr.PBT_DECISION) or {}
    lineage = " ".join(f"m{e['member']}@{e['interval']}" for e in u[TrialAttr.PBT_SCHEDULE])
    head = (
        f"Member {u[TrialAttr.PBT_MEMBER]}, interval {u[TrialAttr.PBT_INTERVAL]}: "
        f"{decision.get('action', 'start')}"
        + (f" from member {decision['donor']}" if "donor" in decision else "")
        + f"; lineage {lineage}."
    )
    return trial_note(trial.number, spec, run) + "\n\n" + head + "\n"


def _label(
    trial: optuna.Trial,
    unit: tuple[int, int, int, int],
    parent: FrozenTrial | None,
    decision: dict[str, Any],
    values: dict[str, Any],
) -> None:
    """The unit's identity, decision and schedule as user attrs, before it trains.

    The schedule is the parent's (the history of the weights this unit starts from)
    plus this interval: the parameters that trained the weights from ``timestep`` on.
    ``unit``: (member, interval, training seed, first timestep).
    """
    member, interval, seed, start = unit
    schedule = list(parent.user_attrs.get(TrialAttr.PBT_SCHEDULE, [])) if parent else []
    schedule.append(
        {
            "timestep": start,
            "member": member,
            "interval": interval,
            "trial": trial.number,
            "seed": seed,
            "params": dict(trial.params),
            "values": values,
        }
    )
    trial.set_user_attr(TrialAttr.PBT_MEMBER, member)
    trial.set_user_attr(TrialAttr.PBT_INTERVAL, interval)
    trial.set_user_attr(TrialAttr.PBT_PARENT, parent.number if parent else None)
    trial.set_user_attr(TrialAttr.PBT_DECISION, decision or {"action": "start"})
    trial.set_user_attr(TrialAttr.PBT_SCHEDULE, schedule)


def _save_unit(
    trial: optuna.Trial, spec: StudySpec, run: Any, state: MemberState, runs_dir: Path
) -> None:
    """The member's checkpoint (for the next unit) and its model (for evaluate and export)."""
    member = trial.user_attrs[TrialAttr.PBT_MEMBER]
    interval = trial.user_attrs[TrialAttr.PBT_INTERVAL]
    name = f"{spec.study_name}_member{member:03d}_interval{interval:03d}.pt"
    artifact_id = upload_state(trial, state, name, runs_dir)
    trial.set_user_attr(TrialAttr.PBT_CHECKPOINT_ID, artifact_id)
    trial.set_user_attr(TrialAttr.PBT_TIMESTEP, state.num_timesteps)
    trial.set_user_attr(TrialAttr.PBT_WEIGHTS_END, weights_digest(run.model.policy))
    upload_model(trial, spec, run, runs_dir)


__all__ = ["Planner", "queue_unit", "run_unit", "value_se"]
