"""What status, report, export and the dashboard show of a population.

A PBT study's trials are units (one member's interval each), so the study-wide views
(the best trial, the optimization history) speak of units. These functions add the
population: each member's latest value, parameters and lineage (whose weights it
carries, from which interval), the exploit events, the population's value over
timesteps, and which member is exported.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.base.errors import UserError
from tuner.config.loading import stored_spec, stored_spec_data
from tuner.config.spec import StudySpec
from tuner.pbt.population import Population, is_pbt_study
from tuner.pbt.scheduler import EXPLOIT, REPLACE
from tuner.storage.record import TrialAttr


def pbt_spec(study: optuna.Study) -> StudySpec | None:
    """The spec recorded on ``study`` when it is a PBT study; None for any other study."""
    if not is_pbt_study(stored_spec_data(study)):
        return None
    try:
        return stored_spec(study)
    except UserError:
        return None


@dataclass(frozen=True)
class Event:
    """Member ``member`` took ``donor``'s weights at the start of ``interval``."""

    member: int
    donor: int
    interval: int
    action: str
    unit: FrozenTrial  # the unit that started from the donor's checkpoint
    donor_unit: FrozenTrial | None


def events(population: Population) -> list[Event]:
    """Every exploit and replacement whose unit completed, in order."""
    out = []
    for unit in population.finished_units():
        decision = unit.user_attrs.get(TrialAttr.PBT_DECISION) or {}
        if decision.get("action") not in (EXPLOIT, REPLACE):
            continue
        k = int(unit.user_attrs[TrialAttr.PBT_INTERVAL])
        donor = int(decision["donor"])
        out.append(
            Event(
                int(unit.user_attrs[TrialAttr.PBT_MEMBER]),
                donor,
                k,
                decision["action"],
                unit,
                population.unit(donor, k - 1),
            )
        )
    return out


def lineage(unit: FrozenTrial) -> str:
    """``m2@0 m2@1 m0@2``: which member trained the unit's weights in each interval."""
    schedule = unit.user_attrs.get(TrialAttr.PBT_SCHEDULE) or []
    return " ".join(f"m{e['member']}@{e['interval']}" for e in schedule)


def latest_units(population: Population) -> list[FrozenTrial]:
    """Each member's last completed unit, by member."""
    out = []
    for m in range(population.size):
        done = [population.unit(m, k) for k in range(population.intervals)]
        last = [u for u in done if u is not None]
        if last:
            out.append(last[-1])
    return out


def _params_text(unit: FrozenTrial) -> str:
    values = unit.user_attrs.get(TrialAttr.REAL_PARAMS) or unit.params
    return ", ".join(f"{k}={_short(v)}" for k, v in values.items())


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def status_lines(study: optuna.Study, trials: list[FrozenTrial]) -> list[str]:
    """The population part of ``tuner status``; empty for a study without pbt."""
    spec = pbt_spec(study)
    if spec is None or spec.pbt is None:
        return []
    population = Population.of(trials, spec)
    done = population.latest_done()
    finished = "none" if done is None else f"{done + 1}"
    lines = [
        f"population-based training: {population.size} members, {population.intervals} "
        f"intervals of {spec.pbt.interval:,} steps; intervals finished by every member: "
        f"{finished} of {population.intervals}; exploits so far: {len(events(population))}",
        "members (latest completed unit):",
    ]
    for unit in latest_units(population):
        u = unit.user_attrs
        lines.append(
            f"  member {u[TrialAttr.PBT_MEMBER]:3d}  interval {u[TrialAttr.PBT_INTERVAL]}  "
            f"value {unit.value:.4f}  at {u.get(TrialAttr.PBT_TIMESTEP, 0):,} steps  "
            f"{_params_text(unit)}  lineage {lineage(unit)}"
        )
    return lines


def select_best(study: optuna.Study) -> tuple[FrozenTrial, str, str | None] | None:
    """(unit, rule, note) of the member to export; None for a study without pbt.

    The best member at the last interval every member finished: its schedule is the
    population's finding. Its value is one evaluation, as any single trial's is.
    """
    spec = pbt_spec(study)
    if spec is None:
        return None
    population = Population.of(study.get_trials(deepcopy=False), spec)
    k = population.latest_done()
    units = [] if k is None else [population.unit(m, k) for m in range(population.size)]
    ranked = [u for u in units if u is not None and u.value is not None]
    if not ranked:
        raise UserError(
            f"study {study.study_name!r} is population-based and no interval has finished "
            "for every member yet; run `tuner tune` until one has"
        )
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = sorted(ranked, key=lambda u: (u.value, -u.number), reverse=maximize)[0]
    assert k is not None
    rule = (
        f"pbt: the best member at interval {k} of {population.intervals - 1} (one evaluation "
        "of each member); its schedule is in `pbt.schedule` and `tuner train` replays it "
        "(`--seed S` on fresh seeds to verify it)"
    )
    note = None
    if k < population.intervals - 1:
        note = f"the population has not finished: interval {k} of {population.intervals - 1}"
    return best, rule, note


def note_markdown(study: optuna.Study, trials: list[FrozenTrial]) -> str:
    """The population as the study's optuna-dashboard note (markdown)."""
    lines = status_lines(study, trials)
    if not lines:
        return ""
    return (
        f"# Population-based training: `{study.study_name}`\n\n"
        "Each trial is one member's interval (user attrs `pbt_member`, `pbt_interval`; "
        "`pbt_parent`: the unit whose checkpoint it started from; `pbt_decision`: the "
        "exploit or explore that made it; `pbt_schedule`: its weights' history).\n\n"
        "```\n" + "\n".join(lines) + "\n```\n"
    )


def save_note(study: optuna.Study) -> None:
    """Write the population note to the dashboard (the planner calls it per interval)."""
    from optuna_dashboard import save_note as save

    body = note_markdown(study, study.get_trials(deepcopy=False, states=tuple(TrialState)))
    if body:
        save(study, body)


def members_table_html(study: optuna.Study) -> str:
    """The report's table: each member's latest unit, value, parameters, lineage."""
    spec = pbt_spec(study)
    if spec is None:
        return ""
    population = Population.of(study.get_trials(deepcopy=False), spec)
    e = html.escape
    rows = []
    for unit in latest_units(population):
        u = unit.user_attrs
        cells = [
            str(u[TrialAttr.PBT_MEMBER]),
            str(u[TrialAttr.PBT_INTERVAL]),
            f"{unit.value:.4f}",
            f"{u.get(TrialAttr.PBT_TIMESTEP, 0):,}",
            _params_text(unit),
            lineage(unit),
        ]
        rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("member", "interval", "value", "timesteps", "parameters", "lineage")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
