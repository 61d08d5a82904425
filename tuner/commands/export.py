"""Best trial -> YAML; YAML -> a trained agent.

The export holds the MaskablePPO keyword arguments exactly as the best trial
built its model (recomputed by the same pure ``to_config`` from the trial's
params and checked against what the trial recorded), the env options, the
budget and the evaluation, plus metadata. ``tuner train`` feeds that file back
to the same ``train`` function the trials used.

One schema for both directions, :class:`ExportDocument`: ``tuner export`` builds the
document through it and ``tuner train`` reads the file through it, so an export the
trainer would refuse is never written, and a hand-edited file fails on its first bad
key in one line (key, what was expected, what was found), before any training.
"""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from env.policy_files import save_model
from tuner.base.errors import UserError
from tuner.base.runs import confined, tensorboard_dir
from tuner.base.settings import DEFAULT_RUNS
from tuner.commands.status import state_counts
from tuner.config.space import to_config
from tuner.config.spec import (
    ENV_KEYS,
    SCHEDULE_KEYS,
    STUDIES_DIR,
    BudgetSpec,
    EnvSpec,
    EvaluationSpec,
    StudySpec,
    check_ppo_values,
    format_error,
    ppo_argument_keys,
    read_yaml,
)
from tuner.storage.record import TrialAttr
from tuner.trial.training import TrainingRun, train

FORMAT = "kalaha-tuner/best-trial/v1"
PACKAGES = ("kalaha-tuner", "optuna", "stable-baselines3", "sb3-contrib", "torch", "gymnasium")


def best_path(study_name: str, studies_dir: Path = STUDIES_DIR) -> Path:
    """Where a study's export goes: ``STUDIES/best/STUDY.yaml``."""
    return confined(studies_dir / "best", f"{study_name}.yaml")


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        counts = state_counts(study.get_trials(deepcopy=False))
        found = ", ".join(f"{k}={v}" for k, v in counts.items()) or "no trials"
        raise UserError(
            f"study {study.study_name!r} has no completed trial to export ({found}); "
            "run `make tune` until one completes"
        )
    return study.best_trial


def export_document(spec: StudySpec, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The export as data: what to train, and where it came from."""
    config = to_config(spec, dict(trial.params))
    recorded = trial.user_attrs.get(TrialAttr.CONFIG)
    if recorded is not None and recorded != _plain(config.as_dict()):
        raise UserError(
            f"trial {trial.number}'s recorded config differs from what the study file gives "
            "for its params now; the study file changed since the trial ran. Export with the "
            "study file the trial ran with"
        )
    data = {
        "format": FORMAT,
        "study": spec.study_name,
        "trial": trial.number,
        "value": trial.value,
        "scores": trial.user_attrs.get(TrialAttr.SCORES, {}),
        "rating": trial.user_attrs.get(TrialAttr.RATING),
        "params": dict(trial.params),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "ppo_kwargs": config.ppo_kwargs,
        "env_kwargs": config.env_kwargs,
        "budget": spec.budget,
        "evaluation": spec.evaluation,
        "seed": spec.seed + trial.number,
    }
    try:  # built through the schema train reads it with: never an export train refuses
        document = ExportDocument.model_validate(data)
    except ValidationError as err:
        raise UserError(format_error(f"trial {trial.number}'s export", err)) from None
    return document.model_dump()


def _plain(data: Any) -> Any:
    """Round-trip through YAML so tuples and lists compare equal to JSON user attrs.

    Key order is kept: the order of an opponent mix (``{pool: 0.5, random: 0.25}``)
    decides which games each opponent plays, so a sorted export would retrain
    another agent than the trial's.
    """
    return yaml.safe_load(yaml.safe_dump(data, sort_keys=False))


def write_export(doc: dict[str, Any], path: Path) -> Path:
    """Write an export (with the selection record the command adds) atomically, after
    checking it against the schema ``tuner train`` reads it with."""
    try:
        ExportDocument.model_validate(doc)
    except ValidationError as err:
        raise UserError(format_error(f"export of study {doc.get('study')!r}", err)) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Best trial of study {doc['study']!r} (trial {doc['trial']}, value {doc['value']}).\n"
        f"# Retrain it with: tuner train {path}\n"
    )
    if doc.get("selection"):
        header += f"# Chosen by the rule {doc['selection'].split(':')[0]!r}: see selection below.\n"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(_plain(doc), sort_keys=False))
    tmp.replace(path)  # never leave a half-written export behind
    return path


class ExportDocument(BaseModel):
    """An export file. What ``tuner train`` uses (``ppo_kwargs``, ``env_kwargs``,
    ``budget``, ``evaluation``, ``seed``, ``study``) is required and checked as a study
    file's settings are; the rest records where the configuration came from and is
    optional, so that a hand-written file with only the settings still trains.

    ``ppo_kwargs`` are MaskablePPO's own keyword arguments (its signature, read when a
    file is checked) plus ``lr_schedule``; ``env_kwargs`` are the env's options.
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    format: Literal["kalaha-tuner/best-trial/v1"] = FORMAT
    study: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    trial: int | None = None
    value: float | None = Field(None, allow_inf_nan=True)  # a note: the trial's value
    scores: dict[str, float] = Field(default_factory=dict)
    rating: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    exported_at: str | dt.datetime | None = None  # YAML reads an unquoted one as a datetime
    versions: dict[str, Any] = Field(default_factory=dict)
    algorithm: Literal["MaskablePPO"] = "MaskablePPO"
    policy: Literal["MlpPolicy"] = "MlpPolicy"
    ppo_kwargs: dict[str, Any]
    env_kwargs: dict[str, Any]
    budget: BudgetSpec
    evaluation: EvaluationSpec
    seed: int = Field(ge=0, lt=2**32)

    @model_validator(mode="after")
    def _settings(self) -> ExportDocument:
        known = ppo_argument_keys() | SCHEDULE_KEYS
        for key in self.ppo_kwargs:
            if key not in known:
                raise ValueError(
                    f"ppo_kwargs.{key}: unknown setting; expected a MaskablePPO argument "
                    f"({', '.join(sorted(known))})"
                )
        check_ppo_values(self.ppo_kwargs, "ppo_kwargs")
        schedule = self.ppo_kwargs.get("lr_schedule", "constant")
        if schedule not in ("constant", "linear"):
            raise ValueError(
                f"ppo_kwargs.lr_schedule: expected 'constant' or 'linear', but got {schedule!r}"
            )
        env = dict(self.env_kwargs)
        opponents = env.pop("opponent", ["random"])
        for key in env:
            if key not in ENV_KEYS:
                raise ValueError(
                    f"env_kwargs.{key}: unknown env option; expected opponent or one of "
                    f"{sorted(ENV_KEYS)}"
                )
        try:
            EnvSpec.model_validate({**env, "opponents": opponents})
        except ValidationError as err:
            message = format_error("env_kwargs", err).replace("opponents", "opponent")
            raise ValueError(message) from None
        return self


def load_export(path: str | Path) -> dict[str, Any]:
    """Read and check an export file: every key ``tuner train`` uses, before it trains."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"export file {str(path)!r} does not exist; run `tuner export STUDY` first")
    doc = read_yaml(path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(
            f"{path}: expected an export with format: {FORMAT}, but got "
            f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}"
        )
    try:
        ExportDocument.model_validate(doc)
    except ValidationError as err:
        raise UserError(format_error(str(path), err)) from None
    return doc


def train_from_export(
    doc: ExportDocument | dict[str, Any],
    *,
    device: str = "auto",
    total_timesteps: int | None = None,
    out: Path | None = None,
    seed: int | None = None,
    runs_dir: Path = DEFAULT_RUNS,
) -> tuple[TrainingRun, Path]:
    """Train the exported configuration with the trials' own ``train``; save the model.

    ``doc`` is an :class:`ExportDocument` or its data (checked here, so that no caller
    trains an unchecked file). ``seed`` retrains with a fresh seed (a check that the
    result was not one lucky draw); by default the trial's own seed is used.
    """
    if isinstance(doc, ExportDocument):
        export = doc
    else:
        try:
            export = ExportDocument.model_validate(doc)
        except ValidationError as err:  # e.g. an export from before objective: score|rating
            source = f"export of study {doc.get('study')!r}"
            raise UserError(format_error(source, err)) from None
    budget = export.budget
    run = train(
        export.ppo_kwargs,
        export.env_kwargs,
        total_timesteps=total_timesteps or budget.total_timesteps,
        n_envs=budget.n_envs,
        n_evaluations=budget.n_evaluations,
        evaluation=export.evaluation,
        seed=export.seed if seed is None else seed,
        device=device,
        tensorboard_log=tensorboard_dir(runs_dir, f"{export.study}_train"),
        tb_log_name="train",
    )
    if run.progress.diverged:
        raise UserError(f"training diverged: {run.progress.diverged}")
    out = out or confined(runs_dir / "models", f"{export.study}.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    out = save_model(run.model, out)
    return run, out
