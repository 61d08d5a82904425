"""Best trial -> YAML; YAML -> a trained agent.

The export holds the MaskablePPO keyword arguments exactly as the best trial
built its model (recomputed by the same pure ``to_config`` from the trial's
params and checked against what the trial recorded), the game options (the
fields of :class:`env.options.GameOptions`, named as a study file's ``env:``
section names them), the budget and the evaluation, plus metadata. ``tuner
train`` feeds that file back to the same ``train`` function the trials used.

One schema for both directions, :class:`ExportDocument`: ``tuner export`` builds the
document through it and ``tuner train`` reads the file through it, so an export the
trainer would refuse is never written, and a hand-edited file fails on its first bad
key in one line (key, what was expected, what was found), before any training.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final, Literal, TextIO

import optuna
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from env.policy_files import save_model
from tuner.base.errors import UserError
from tuner.base.files import write_atomic
from tuner.base.runs import confined, tensorboard_dir
from tuner.base.settings import DEFAULT_RUNS
from tuner.config.bounds import PPO_DEFAULTS, check_batch_fits
from tuner.config.checks import check_opponent_names, check_ppo_values, ppo_argument_keys
from tuner.config.loading import STUDIES_DIR, read_yaml
from tuner.config.space import game_options, to_config
from tuner.config.spec import (
    SCHEDULE_KEYS,
    SCHEDULES,
    BudgetSpec,
    EnvSpec,
    EvaluationSpec,
    StudySpec,
    format_error,
)
from tuner.pbt.replay import PbtExport, export_section, replay
from tuner.storage.record import TrialAttr, shown_results
from tuner.trial.callbacks import CheckpointCallback, StopOnSignalCallback
from tuner.trial.progress import ProgressCallback, ProgressDisplay
from tuner.trial.training import TrainingRun, train

FORMAT: Final = "kalaha-tuner/best-trial/v1"  # Final: its type is the literal the schema pins
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


def export_document(spec: StudySpec, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The export as data: what to train, and where it came from."""
    config = to_config(spec, dict(trial.params))
    recorded = upgrade_export(trial.user_attrs.get(TrialAttr.CONFIG))
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
        "results": {k: _result_record(r) for k, r in shown_results(trial.user_attrs).items()},
        "rating": trial.user_attrs.get(TrialAttr.RATING),
        "params": dict(trial.params),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "ppo_kwargs": config.ppo_kwargs,
        "env_kwargs": config.game.as_dict(),
        "budget": spec.budget,
        "evaluation": spec.evaluation,
        "seed": spec.seed + trial.number,
    }
    if spec.pbt is not None:  # the winner's schedule, which `tuner train` replays
        data["pbt"] = export_section(spec, trial)
    try:  # built through the schema train reads it with: never an export train refuses
        document = ExportDocument.model_validate(data)
    except ValidationError as err:
        raise UserError(format_error(f"trial {trial.number}'s export", err)) from None
    out = document.model_dump(exclude=set() if document.pbt else {"pbt"})
    del out["scores"]  # older exports' bare scores: "results" carries them with counts
    return out


RESULT_KEYS = ("score", "ci_low", "ci_high", "games", "wins", "draws", "losses")


def _result_record(result: dict[str, Any]) -> dict[str, Any]:
    """One opponent's last evaluation as the export shows it: the score with its 95%
    interval and the games behind it."""
    return {k: result[k] for k in RESULT_KEYS if k in result}


def _plain(data: Any) -> Any:
    """Round-trip through YAML so tuples and lists compare equal to JSON user attrs.

    Key order is kept: the order of an opponent mix (``{pool: 0.5, random: 0.25}``)
    decides which games each opponent plays, so a sorted export would retrain
    another agent than the trial's.
    """
    return yaml.safe_load(yaml.safe_dump(data, sort_keys=False))


def describe_export(path: Path) -> str:
    """One phrase naming what an existing file at ``path`` holds, for the user to weigh
    before it is replaced (an unreadable or foreign file is said to be one)."""
    try:
        old = read_yaml(path)
    except UserError:
        return "a file that is not an export"
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        return "a file that is not an export"
    parts = [f"trial {old.get('trial')} of study {old.get('study')!r}"]
    if isinstance(old.get("value"), int | float):
        parts.append(f"value {old['value']:.4f}")
    if old.get("exported_at"):
        parts.append(f"exported {old['exported_at']}")
    return ", ".join(parts)


def replacing(doc: dict[str, Any], path: Path, force: bool) -> str | None:
    """What writing ``doc`` to ``path`` would replace: None when nothing (no file, or an
    export of the same study and trial); else the phrase, and without ``force`` an error.

    A shipped export (studies/best/net_arch.yaml is the verified reference README cites)
    must not be overwritten silently by a one-trial study of the same name.
    """
    if not path.exists():
        return None
    try:
        old = read_yaml(path)
    except UserError:
        old = None
    if isinstance(old, dict) and (old.get("study"), old.get("trial")) == (
        doc["study"],
        doc["trial"],
    ):
        return None
    what = describe_export(path)
    if not force:
        raise UserError(
            f"{path} exists and holds {what}; expected a new file, so nothing was written. "
            "Pass --force to replace it (make export ARGS=--force), or --out PATH to write "
            "elsewhere"
        )
    return what


def write_export(doc: dict[str, Any], path: Path) -> Path:
    """Write an export (with the selection record the command adds) atomically, after
    checking it against the schema ``tuner train`` reads it with."""
    try:
        ExportDocument.model_validate(doc)
    except ValidationError as err:
        raise UserError(format_error(f"export of study {doc.get('study')!r}", err)) from None
    header = (
        f"# Best trial of study {doc['study']!r} (trial {doc['trial']}, value {doc['value']}).\n"
        f"# Retrain it with: tuner train {path}\n"
    )
    if doc.get("selection"):
        header += f"# Chosen by the rule {doc['selection'].split(':')[0]!r}: see selection below.\n"
    # never a half-written export, never a stray .tmp
    return write_atomic(path, header + yaml.safe_dump(_plain(doc), sort_keys=False))


class ExportDocument(BaseModel):
    """An export file. What ``tuner train`` uses (``ppo_kwargs``, ``env_kwargs``,
    ``budget``, ``evaluation``, ``seed``, ``study``) is required and checked as a study
    file's settings are; the rest records where the configuration came from and is
    optional, so that a hand-written file with only the settings still trains.

    ``ppo_kwargs`` are MaskablePPO's own keyword arguments (its signature, read when a
    file is checked) plus ``lr_schedule``; ``env_kwargs`` are the game options, checked
    by the model of a study file's ``env:`` section. A file written before keys were
    renamed is read in today's keys (:func:`upgrade_export`).
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    format: Literal["kalaha-tuner/best-trial/v1"] = FORMAT
    study: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    trial: int | None = None
    value: float | None = Field(None, allow_inf_nan=True)  # a note: the trial's value
    # Per opponent: score, 95% interval (ci_low, ci_high), games, W/D/L. Older exports
    # hold bare ``scores`` instead, still read.
    results: dict[str, dict[str, float | int]] = Field(default_factory=dict)
    scores: dict[str, float] | None = None
    rating: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    exported_at: str | dt.datetime | None = None  # YAML reads an unquoted one as a datetime
    versions: dict[str, Any] = Field(default_factory=dict)
    algorithm: Literal["MaskablePPO"] = "MaskablePPO"
    policy: Literal["MlpPolicy"] = "MlpPolicy"
    ppo_kwargs: dict[str, Any]
    env_kwargs: EnvSpec
    budget: BudgetSpec
    evaluation: EvaluationSpec
    seed: int = Field(ge=0, lt=2**32)
    # A population-based study's winner: its schedule, replayed by `tuner train`.
    pbt: PbtExport | None = None

    @model_validator(mode="after")
    def _settings(self) -> ExportDocument:
        known = ppo_argument_keys() | SCHEDULE_KEYS
        for key in self.ppo_kwargs:
            if key not in known:
                raise ValueError(
                    f"ppo_kwargs.{key}: unknown setting; expected a MaskablePPO argument "
                    f"({', '.join(sorted(known))})"
                )
        check_ppo_values(self.ppo_kwargs, "ppo_kwargs")  # each value within its bound
        check_batch_fits(
            [self.ppo_kwargs.get("n_steps", PPO_DEFAULTS["n_steps"])],
            [self.ppo_kwargs.get("batch_size", PPO_DEFAULTS["batch_size"])],
            self.budget.n_envs,
            "ppo_kwargs.batch_size",
        )
        schedule = self.ppo_kwargs.get("lr_schedule", "constant")
        if schedule not in SCHEDULES:
            raise ValueError(
                f"ppo_kwargs.lr_schedule: expected 'constant' or 'linear', but got {schedule!r}"
            )
        check_opponent_names(self.env_kwargs.opponents, "env_kwargs.opponents")
        return self


# Keys an export (or a trial's recorded config) wrote before they were renamed, so that
# one word has one meaning: section -> {old key: new key}.
_RENAMED_EXPORT_KEYS = {
    "env_kwargs": {"opponent": "opponents", "seeds": "stones"},
    "budget": {"seeds": "runs"},
}


def upgrade_export(doc: Any) -> Any:
    """An export, or a trial's recorded config, written before the renames, in today's keys.

    ``env_kwargs`` once held KalahaEnv's keywords (``opponent``, ``seeds``): today they are
    the game options, named as in a study file (``opponents``, ``stones``); the training
    runs per trial are ``budget.runs``, no longer ``budget.seeds``. The committed exports
    and the configs recorded on existing studies keep reading; anything else is as it was.
    """
    if not isinstance(doc, dict):
        return doc
    doc = dict(doc)
    for section, renamed in _RENAMED_EXPORT_KEYS.items():
        part = doc.get(section)
        if isinstance(part, dict) and not set(renamed.values()) & set(part):
            doc[section] = {renamed.get(k, k): v for k, v in part.items()}
    return doc


def load_export(path: str | Path) -> dict[str, Any]:
    """Read and check an export file: every key ``tuner train`` uses, before it trains."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"export file {str(path)!r} does not exist; run `tuner export STUDY` first")
    doc = upgrade_export(read_yaml(path))
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


def checked_export(doc: ExportDocument | dict[str, Any]) -> ExportDocument:
    """``doc`` as an :class:`ExportDocument`, checked, so that nothing trains an unchecked file."""
    if isinstance(doc, ExportDocument):
        return doc
    try:
        return ExportDocument.model_validate(upgrade_export(doc))
    except ValidationError as err:  # e.g. an export from before objective: score|rating
        raise UserError(format_error(f"export of study {doc.get('study')!r}", err)) from None


def model_path(export: ExportDocument, runs_dir: Path = DEFAULT_RUNS) -> Path:
    """Where ``tuner train`` saves the agent by default: ``RUNS/models/STUDY.zip``."""
    return confined(runs_dir / "models", f"{export.study}.zip")


def checkpoint_path(out: Path, timesteps: int) -> Path:
    """``agent.zip`` at 100000 steps -> ``agent_100000_steps.zip`` beside it (as rl-zoo)."""
    return out.with_name(f"{out.stem}_{timesteps}_steps.zip")


def train_from_export(
    doc: ExportDocument | dict[str, Any],
    *,
    device: str = "auto",
    total_timesteps: int | None = None,
    out: Path | None = None,
    seed: int | None = None,
    runs_dir: Path = DEFAULT_RUNS,
    callbacks: list[Any] | None = None,
) -> tuple[TrainingRun, Path]:
    """Train the exported configuration with the trials' own ``train``; save the model.

    ``doc`` is an :class:`ExportDocument` or its data (checked here). ``seed`` retrains
    with a fresh seed (a check that the result was not one lucky draw); by default the
    trial's own seed is used. A run stopped by one of ``callbacks`` (a signal) is saved
    as far as it got. TensorBoard logs go below the study's folder (``train_1``, ...),
    where ``make tensorboard STUDY=...`` shows them beside the trials.
    """
    export = checked_export(doc)
    budget = export.budget
    game = game_options(export.env_kwargs)
    if export.pbt is not None:  # a population's winner: its schedule, replayed
        run = replay(
            export.pbt, export.ppo_kwargs, game, budget=budget,
            evaluation=export.evaluation, study=export.study, total_timesteps=total_timesteps,
            seed=seed, device=device, runs_dir=runs_dir, callbacks=callbacks,
        )  # fmt: skip
    else:
        run = train(
            export.ppo_kwargs,
            game,
            total_timesteps=total_timesteps or budget.total_timesteps,
            n_envs=budget.n_envs,
            n_evaluations=budget.n_evaluations,
            evaluation=export.evaluation,
            seed=export.seed if seed is None else seed,
            device=device,
            tensorboard_log=tensorboard_dir(runs_dir, export.study),
            tb_log_name="train",
            callbacks=callbacks,
        )
    if run.state.diverged:
        raise UserError(f"training diverged: {run.state.diverged}")
    if run.state.stalled:
        raise UserError(f"training stopped: {run.state.stalled}")
    out = out or model_path(export, runs_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out = save_model(run.model, out)
    return run, out


class Interrupt:
    """SIGINT or SIGTERM during ``tuner train``: the first stops training at the next step
    (the model is then saved), a second one stops at once, unsaved."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.signal: str | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = name
        print(
            f"{name} received: stopping after the current step and saving the model "
            "(again to stop at once, unsaved)",
            file=self.stream,
            flush=True,
        )

    def reason(self) -> str | None:
        return f"{self.signal} received" if self.signal else None


@contextmanager
def interruptible(stream: TextIO) -> Iterator[Interrupt]:
    """Catch SIGINT and SIGTERM (in the main thread; elsewhere signals stay as they are)."""
    interrupt = Interrupt(stream)
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupt
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class Retrained:
    """What ``tuner train`` did: the run, where the model went, the checkpoints, and the
    signal that stopped it early (None: the whole budget was trained)."""

    run: TrainingRun
    out: Path
    total_timesteps: int
    checkpoints: list[Path]
    stopped_by: str | None


def retrain(
    doc: ExportDocument | dict[str, Any],
    *,
    save_every: int | None = None,
    stream: TextIO | None = None,
    **options: Any,
) -> Retrained:
    """:func:`train_from_export` as ``tuner train`` runs it: the progress bar and a line per
    evaluation, a checkpoint every ``save_every`` timesteps, and the model saved when a
    signal stops it (``options``: those of :func:`train_from_export`)."""
    export = checked_export(doc)
    stream = stream or sys.stdout
    total = options.get("total_timesteps") or export.budget.total_timesteps
    out = options.pop("out", None) or model_path(export, options.get("runs_dir", DEFAULT_RUNS))
    reporter = ProgressDisplay(total, stream=stream, evaluation_lines=True, name="train")
    checkpoints: list[Path] = []
    with interruptible(sys.stderr) as interrupt:
        callbacks: list[Any] = [StopOnSignalCallback(interrupt.reason), ProgressCallback(reporter)]
        if save_every:
            saver = CheckpointCallback(
                save_every,
                lambda n: checkpoint_path(out, n),
                on_save=lambda p, n: reporter.print_line(f"checkpoint at step {n}: {p}"),
            )
            checkpoints = saver.saved
            callbacks.append(saver)
        try:
            run, out = train_from_export(export, out=out, callbacks=callbacks, **options)
        finally:
            reporter.close()
    return Retrained(run, out, total, checkpoints, interrupt.signal)
