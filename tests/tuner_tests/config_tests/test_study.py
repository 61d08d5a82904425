"""Spec -> the Optuna study (tuner/config/study.py): created once with its spec recorded,
and a changed study file refused or recorded."""

from __future__ import annotations

import os
import signal
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from support import write_study

from tuner.base.errors import UserError
from tuner.cli import main
from tuner.config.loading import parse_spec
from tuner.config.spec import StudySpec
from tuner.config.study import (
    create_study,
    load_study,
    signals_deferred,
    spec_changes,
    worker_seed,
)
from tuner.storage.rdb import make_storage
from tuner.storage.record import StudyAttr, TrialAttr


def small_spec(**overrides: Any) -> StudySpec:
    """A valid study without a search space: what is tested here is the study around it."""
    data = {"study_name": "small", "n_trials": 4, "budget": {"total_timesteps": 64}}
    return parse_spec({**data, **overrides}, "test")


def test_each_worker_index_seeds_its_sampler_apart_and_reproducibly() -> None:
    """With one seed every worker would propose the same first trials."""
    spec = small_spec(seed=5)
    seeds = [worker_seed(spec, i) for i in range(4)]
    assert seeds == [worker_seed(spec, i) for i in range(4)], "an index always gets its seed"
    assert len(set(seeds)) == 4 and all(0 <= s < 2**32 for s in seeds)
    assert worker_seed(small_spec(seed=6), 0) != seeds[0], "the study's seed moves them all"
    # Scaled replicas have no index: each draws its own seed.
    assert len({worker_seed(spec, None) for _ in range(5)}) > 1


def test_spec_changes_name_each_changed_added_and_removed_leaf() -> None:
    old = {"n_trials": 6, "ppo": {"gamma": 0.9, "n_steps": 64}, "seed": 0}
    new = {"n_trials": 9, "ppo": {"gamma": 0.9, "batch_size": 32}, "note": "x" * 80}
    assert spec_changes(old, new) == [
        "n_trials: 6 -> 9",
        "ppo.n_steps: 64 -> (removed)",
        "ppo.batch_size: (absent) -> 32",
        "seed: 0 -> (removed)",
        f"note: (absent) -> {repr('x' * 80)[:57]}...",
    ]
    assert spec_changes(old, dict(old)) == []


def test_creating_a_study_is_idempotent_and_records_its_spec() -> None:
    storage = optuna.storages.InMemoryStorage()
    spec = small_spec()
    study = create_study(spec, storage)
    again = create_study(spec, storage)
    assert again.study_name == study.study_name and len(storage.get_all_studies()) == 1
    assert again.user_attrs[StudyAttr.SPEC] == spec.model_dump(mode="json")
    assert again.user_attrs[StudyAttr.N_TRIALS] == 4
    assert StudyAttr.SPEC_CHANGES not in again.user_attrs, "the same file changes nothing"


def test_a_study_of_the_other_direction_is_refused() -> None:
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="small", storage=storage, direction="minimize")
    with pytest.raises(UserError, match="exists with direction minimize, but the study file"):
        create_study(small_spec(), storage)


def test_a_file_whose_every_trial_failed_on_its_configuration_may_be_fixed() -> None:
    """Nothing was built from the old file, so the fix goes on without --accept-changes
    (and is recorded); once a trial ran, the same change is refused."""
    storage = optuna.storages.InMemoryStorage()
    study = create_study(small_spec(), storage)
    broken = {TrialAttr.CONFIG_ERROR: True}
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=broken))
    fixed = small_spec(ppo={"n_steps": 32})
    create_study(fixed, storage)
    (record,) = study.user_attrs[StudyAttr.SPEC_CHANGES]
    assert record["changes"] == ["ppo.n_steps: (absent) -> 32"]
    assert not record["accepted_by_flag"]
    study.add_trial(create_trial(value=0.5))
    with pytest.raises(UserError, match=r"ppo\.n_steps: 32 -> 16.*--accept-changes"):
        create_study(small_spec(ppo={"n_steps": 16}), storage)


def test_load_study_brings_this_workers_sampler_and_the_files_pruner() -> None:
    storage = optuna.storages.InMemoryStorage()
    spec = small_spec(sampler={"type": "random"}, pruner={"type": "hyperband"})
    study = load_study(spec, storage, seed=3)
    assert isinstance(study.sampler, optuna.samplers.RandomSampler)
    assert isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    assert study.user_attrs[StudyAttr.SPEC]["study_name"] == "small"


def test_a_signal_inside_the_block_is_delivered_after_it() -> None:
    """The study row and its spec are written together: a SIGTERM between them waits."""
    heard: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        heard.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert heard == [], "held inside the block"
        assert heard == [signal.SIGTERM], "delivered once the block is done, to our handler"
        assert signal.getsignal(signal.SIGTERM) is handler, "the handler is put back"
    finally:
        signal.signal(signal.SIGTERM, previous)


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
