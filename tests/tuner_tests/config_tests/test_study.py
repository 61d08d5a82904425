"""Spec -> the Optuna study (tuner/config/study.py): created once with its spec recorded,
and a changed study file refused or recorded."""

from __future__ import annotations

import os
import signal

import optuna
import pytest
from support import write_study

from tuner.cli import main
from tuner.config.spec import parse_spec
from tuner.config.study import create_study
from tuner.storage.rdb import make_storage
from tuner.storage.record import StudyAttr

# --- hardening (issue 12) ----------------------------------------------------------------


def test_a_changed_study_file_is_refused_or_recorded(runs, tmp_path, capsys, tiny_spec):
    """Hardening (issue 12): a study file edited under a running study mixed the trials of
    two configurations. It is compared with the spec stored at creation now."""
    url = f"sqlite:///{runs / 'optuna.db'}"
    data = tiny_spec()
    path = write_study(tmp_path / "smoke.yaml", data)

    def create(*flags: str) -> tuple[int, str]:
        code = main(["create", str(path), "--storage", url, *flags])
        return code, capsys.readouterr().err.strip()

    assert create() == (0, "")
    assert create() == (0, ""), "the same file goes on"

    # Comparable: a larger budget and a new description are allowed, and recorded.
    data = {**data, "n_trials": 9, "description": "more trials"}
    write_study(path, data)
    assert create() == (0, "")
    study = optuna.load_study(study_name="smoke", storage=url)
    assert (
        study.user_attrs[StudyAttr.N_TRIALS] == 9
        and study.user_attrs[StudyAttr.SPEC]["n_trials"] == 9
    )
    (record,) = study.user_attrs[StudyAttr.SPEC_CHANGES]
    assert "n_trials: 6 -> 9" in record["changes"] and not record["accepted_by_flag"]

    # Not comparable: a changed search space, or a smaller budget, is refused by name.
    space = {**data["search_space"], "gamma": {"type": "float", "low": 0.9, "high": 0.99}}
    for changed, named in [
        ({**data, "search_space": space}, "search_space.gamma.high: 0.999 -> 0.99"),
        ({**data, "n_trials": 3}, "n_trials: 9 -> 3"),
    ]:
        write_study(path, changed)
        code, err = create()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert named in err and "new study_name" in err and "--accept-changes" in err, err
    assert (
        optuna.load_study(study_name="smoke", storage=url).user_attrs[StudyAttr.SPEC]["n_trials"]
        == 9
    )

    # The explicit flag goes on and records what changed.
    write_study(path, {**data, "search_space": space})
    assert create("--accept-changes") == (0, "")
    study = optuna.load_study(study_name="smoke", storage=url)
    last = study.user_attrs[StudyAttr.SPEC_CHANGES][-1]
    assert last["accepted_by_flag"] and last["changes"] == [
        "search_space.gamma.high: 0.999 -> 0.99"
    ]
    assert study.user_attrs[StudyAttr.SPEC]["search_space"]["gamma"]["high"] == 0.99


def test_a_signal_during_study_creation_waits_until_its_spec_is_recorded(
    runs, monkeypatch, tiny_spec
):
    """Hardening (issue 12): Ctrl-C right after the study row was written used to leave it
    without its spec."""
    storage = make_storage(f"sqlite:///{runs / 'optuna.db'}")
    create_new_study = storage.create_new_study

    def created_then_interrupted(*args, **kwargs):
        study_id = create_new_study(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, right after the row exists
        return study_id

    monkeypatch.setattr(storage, "create_new_study", created_then_interrupted)
    spec = parse_spec(tiny_spec(), "smoke")
    with pytest.raises(KeyboardInterrupt):  # delivered, once the spec is recorded
        create_study(spec, storage)
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{runs / 'optuna.db'}")
    assert study.user_attrs[StudyAttr.SPEC] == spec.model_dump(mode="json")
