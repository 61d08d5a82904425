"""Trial artifacts: find and download a trial's model from the artifact store."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import download_artifact

from tuner.base.errors import UserError
from tuner.base.runs import artifact_store, artifacts_dir, confined
from tuner.storage.record import TrialAttr


def download_trial_model(study: optuna.Study, number: int, runs_dir: Path) -> Path:
    """Trial ``number``'s model, copied from the artifact store to ``runs_dir/downloads``."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise UserError(
            f"study {study.study_name!r} has no trial {number}; expected 0..{len(trials) - 1}"
        )
    artifact_id = trials[number].user_attrs.get(TrialAttr.MODEL_ARTIFACT_ID)
    if not artifact_id:
        raise UserError(
            f"trial {number} of {study.study_name!r} has no model artifact "
            f"(state {trials[number].state.name}); only completed trials keep their model"
        )
    out = confined(runs_dir / "downloads", f"{study.study_name}_trial_{number:04d}.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    store = artifact_store(artifacts_dir(runs_dir))
    download_artifact(artifact_store=store, file_path=str(out), artifact_id=artifact_id)
    return out
