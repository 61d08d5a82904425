"""The best member's schedule: exported with its configuration, replayed by ``tuner train``.

What a population finds is not one configuration but a schedule: the parameters that
trained the winning weights, interval by interval, along their lineage (an exploit
hands the donor's history on). :func:`export_section` writes it into the export file
(``pbt.schedule``: from which timestep which values applied, and the seed of that
interval), and :func:`replay` trains a new agent through it, as Ray Tune's
``PopulationBasedTrainingReplay`` does: one segment per schedule entry, each built from
its own configuration and going on from the previous segment's weights, optimizer state
and self-play pool (the very path a unit takes, :mod:`tuner.pbt.checkpoint`), so the
learning rate, entropy bonus or opponent mix change at the recorded timesteps.

With the recorded seeds the replay retrains the lineage as it ran; ``--seed S`` gives
segment ``i`` the seed ``S + 1000 * i``: a fresh draw of the same schedule, which is
how a PBT result is verified.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from stable_baselines3.common.callbacks import BaseCallback

from env.options import GameOptions
from tuner.base.runs import tensorboard_dir
from tuner.base.settings import DEFAULT_RUNS
from tuner.config.pbt_spec import MUTABLE, MUTABLE_ENV
from tuner.config.spec import BudgetSpec, EvaluationSpec, StudySpec
from tuner.pbt.checkpoint import MemberState
from tuner.pbt.units import EVAL_SEED_BASE, SEED_STRIDE
from tuner.storage.record import TrialAttr
from tuner.trial.callbacks import RunState
from tuner.trial.training import TrainingRun, train


class ScheduleEntry(BaseModel):
    """From ``timestep`` on, the searched settings had ``values`` (and training ``seed``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timestep: int = Field(ge=0)
    seed: int = Field(ge=0, lt=2**32)
    values: dict[str, Any]
    member: int | None = None
    interval: int | None = None
    trial: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _mutable(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key not in MUTABLE:
                raise ValueError(
                    f"values.{key}: expected settings a schedule can change ({', '.join(MUTABLE)})"
                )
        return v


class PbtExport(BaseModel):
    """An export's ``pbt`` section: the population and the winner's schedule."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    population: int = Field(ge=1)
    interval: int = Field(ge=1)
    member: int | None = None
    schedule: list[ScheduleEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> PbtExport:
        steps = [e.timestep for e in self.schedule]
        if steps[0] != 0 or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(
                f"schedule: expected timesteps from 0, strictly increasing, but got {steps}"
            )
        return self


def export_section(spec: StudySpec, trial: FrozenTrial) -> dict[str, Any]:
    """The ``pbt`` section of the export of unit ``trial`` (its member's schedule)."""
    assert spec.pbt is not None
    schedule = trial.user_attrs.get(TrialAttr.PBT_SCHEDULE) or []
    section = PbtExport(
        population=spec.pbt.population,
        interval=spec.pbt.interval,
        member=trial.user_attrs.get(TrialAttr.PBT_MEMBER),
        schedule=schedule,
    )
    return section.model_dump()


def apply_values(
    ppo_kwargs: dict[str, Any], game: GameOptions, values: dict[str, Any]
) -> tuple[dict[str, Any], GameOptions]:
    """The configuration of one segment: the export's, with the entry's values set (the
    env's among them go into a copy of the game options, under their own names)."""
    ppo = dict(ppo_kwargs)
    env = {name: value for name, value in values.items() if name in MUTABLE_ENV}
    ppo.update({name: value for name, value in values.items() if name not in MUTABLE_ENV})
    return ppo, GameOptions.from_dict({**game.as_dict(), **env}) if env else game


def segments(schedule: list[ScheduleEntry], total: int) -> list[tuple[ScheduleEntry, int]]:
    """(entry, timesteps it trains) for the entries that start before ``total``; the last
    one trains to ``total`` (longer or shorter than recorded, with ``--timesteps``)."""
    kept = [e for e in schedule if e.timestep < total]
    ends = [e.timestep for e in kept[1:]] + [total]
    return [(e, end - e.timestep) for e, end in zip(kept, ends, strict=True)]


def replay(
    pbt: PbtExport,
    ppo_kwargs: dict[str, Any],
    game: GameOptions,
    *,
    budget: BudgetSpec,
    evaluation: EvaluationSpec,
    study: str,
    total_timesteps: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    runs_dir: Path = DEFAULT_RUNS,
    callbacks: list[BaseCallback] | None = None,
) -> TrainingRun:
    """Train through the schedule, one segment per entry; evaluated at each segment's end.

    Returns one :class:`TrainingRun` for the whole replay: the final model, every
    evaluation, the timesteps and seconds of all segments. A segment that diverges or
    is stopped ends the replay there (its state says so).
    """
    state: MemberState | None = None
    runs: list[TrainingRun] = []
    parts = segments(pbt.schedule, total_timesteps or budget.total_timesteps)
    for i, (entry, steps) in enumerate(parts):
        ppo, env = apply_values(ppo_kwargs, game, entry.values)
        pools: list[Any] = []

        def restore(
            model: Any, given: list[Any], state: MemberState | None = state, pools: list = pools
        ) -> None:
            if state is not None:
                state.restore(model, given)
            pools.extend(given)

        run = train(
            ppo,
            env,
            total_timesteps=steps,
            n_envs=budget.n_envs,
            n_evaluations=1,
            evaluation=evaluation,
            seed=entry.seed if seed is None else seed + SEED_STRIDE * i,
            eval_seed=(entry.seed if seed is None else seed) + EVAL_SEED_BASE + i,
            device=device,
            tensorboard_log=tensorboard_dir(runs_dir, study),
            tb_log_name="train",
            callbacks=list(callbacks or []),
            restore=restore,
        )
        runs.append(run)
        if run.state.diverged or run.state.stopped or run.state.stalled or run.model is None:
            break
        state = MemberState.capture(run.model, pools, state)
    return _merged(runs)


def _merged(runs: list[TrainingRun]) -> TrainingRun:
    """The segments as one run: the last model, all evaluations, summed steps and seconds."""
    last = runs[-1]
    state = RunState(
        evaluations=[e for r in runs for e in r.state.evaluations],
        diverged=last.state.diverged,
        stopped=last.state.stopped,
        stalled=last.state.stalled,
    )
    return replace(
        last,
        state=state,
        timesteps=sum(r.timesteps for r in runs),
        train_seconds=sum(r.train_seconds for r in runs),
        eval_seconds=sum(r.eval_seconds for r in runs),
    )
