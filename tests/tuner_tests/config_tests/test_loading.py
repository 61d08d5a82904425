"""Reading a study: its file (models, then the world), its name (one key), its stored spec.

And one meaning per word: a study file with a renamed key is told the new name; a spec
stored on a study before the renames is read in the new keys.
"""

from __future__ import annotations

import optuna
import pytest
import yaml
from support import REPO_ROOT

from env.options import DEFAULTS
from tuner.base.errors import UserError
from tuner.config.loading import (
    load_spec,
    parse_spec,
    spec_of,
    stored_spec,
    stored_spec_data,
    study_name_in,
    upgrade_stored_spec,
)
from tuner.config.spec import EnvSpec, StudySpec
from tuner.storage.record import StudyAttr

SMOKE = REPO_ROOT / "studies" / "smoke.yaml"


def smoke_data() -> dict:
    return yaml.safe_load(SMOKE.read_text())


def test_the_env_section_takes_the_games_defaults():
    """One default per option, kept by the game (env.options): a file that leaves the env
    out trains on exactly GameOptions' defaults."""
    assert EnvSpec().model_dump() == DEFAULTS.as_dict()
    assert load_spec("smoke").env.stones == DEFAULTS.stones


def test_a_study_name_is_one_key_read(tmp_path):
    """Resolving the name reads the study_name, not the whole file: a file whose other keys
    would fail validation still names its study."""
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump({"study_name": "odd", "n_trials": "many"}))
    assert study_name_in(path) == "odd"
    path.write_text("n_trials: 3\n")
    with pytest.raises(UserError, match="key 'study_name' is required but missing"):
        study_name_in(path)


def test_validated_models_are_never_mutated():
    """A single allowed value of a condition is a list of one, made by the validator;
    the models are frozen."""
    data = smoke_data()
    data["search_space"]["gamma"]["condition"] = {"net_arch": "tiny"}
    data["search_space"] = {
        "net_arch": data["search_space"].pop("net_arch"),
        **data["search_space"],
    }
    spec = parse_spec(data, "conditions")
    assert spec.search_space["gamma"].condition == {"net_arch": ["tiny"]}
    assert data["search_space"]["gamma"]["condition"] == {"net_arch": "tiny"}, "input kept"
    with pytest.raises(ValueError, match="frozen"):
        spec.search_space["gamma"].low = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "patch", "message"),
    [
        ("env", {"seeds": 5}, "env.seeds is now env.stones (stones per pit)"),
        ("budget", {"seeds": 2}, "budget.seeds is now budget.runs (training runs per trial)"),
    ],
)
def test_a_file_with_a_renamed_key_is_told_its_new_name(section, patch, message):
    data = smoke_data()
    data[section] = {**data.get(section, {}), **patch}
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        parse_spec(data, "old.yaml")
    assert str(err.value).startswith(f"old.yaml: key '{section}': ")
    assert "\n" not in str(err.value)


def old_stored_spec() -> dict:
    """A spec as a study created before the renames recorded it."""
    data = load_spec("smoke").model_dump(mode="json")
    data["env"] = {("seeds" if k == "stones" else k): v for k, v in data["env"].items()}
    data["budget"] = {("seeds" if k == "runs" else k): v for k, v in data["budget"].items()}
    return data


def test_a_spec_stored_before_the_renames_is_read_in_the_new_keys(tmp_path):
    """A study in a database is history: its recorded spec is upgraded on read, by the one
    reader every command uses, and compares equal with today's file (no drift)."""
    old = old_stored_spec()
    upgraded = upgrade_stored_spec(old)
    assert upgraded["env"]["stones"] == 4 and "seeds" not in upgraded["env"]
    assert upgraded["budget"]["runs"] == 1 and "seeds" not in upgraded["budget"]
    assert old["env"]["seeds"] == 4, "the recorded data itself is not touched"

    study = optuna.create_study(
        study_name="smoke", storage=f"sqlite:///{tmp_path / 'db'}", direction="maximize"
    )
    study.set_user_attr(StudyAttr.SPEC, old)
    assert stored_spec_data(study)["budget"]["runs"] == 1
    spec = stored_spec(study)
    assert isinstance(spec, StudySpec) and spec == load_spec("smoke")
    assert spec_of(study) == spec

    from tuner.config.study import create_study

    create_study(load_spec("smoke"), study._storage)  # the same file: no drift refused
    assert StudyAttr.SPEC_CHANGES not in study.user_attrs


def test_a_study_without_a_recorded_spec_reads_none(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'db'}")
    assert stored_spec_data(study) == {} and stored_spec(study) is None
