"""The export document's schema: the file ``tuner export`` writes is the file ``tuner train``
reads, and the shipped best configuration still reads."""

from __future__ import annotations

import pytest
import yaml
from support import REPO_ROOT

from tuner.base.errors import UserError
from tuner.commands.export import ExportDocument, load_export, write_export

SHIPPED = REPO_ROOT / "studies" / "best" / "selfplay.yaml"


def test_the_shipped_selfplay_export_loads_through_the_schema():
    doc = load_export(SHIPPED)
    export = ExportDocument.model_validate(doc)
    assert export.study == "selfplay" and export.trial == 1
    assert export.ppo_kwargs["n_steps"] == 128
    assert export.ppo_kwargs["policy_kwargs"] == {"net_arch": [256, 256, 256], "lookahead": 2}
    assert export.env_kwargs["opponent"] == {"pool": 0.3, "greedy@0.1": 0.35, "minimax:2@0.1": 0.35}
    assert export.budget.total_timesteps == 1_000_000 and export.budget.n_envs == 64
    assert export.evaluation.opponents == ["greedy", "minimax:2", "minimax:4"]
    assert export.selection.startswith("single seed"), "notes beyond the schema are kept"


def test_an_export_train_would_refuse_is_never_written(tmp_path):
    doc = yaml.safe_load(SHIPPED.read_text())
    doc["ppo_kwargs"]["lerning_rate"] = 1.0e-3
    path = tmp_path / "best.yaml"
    with pytest.raises(UserError, match=r"ppo_kwargs\.lerning_rate: unknown setting"):
        write_export(doc, path)
    assert not path.exists()


def test_an_export_for_another_algorithm_is_a_one_line_error(tmp_path, capsys):
    from tuner.cli import main

    doc = yaml.safe_load(SHIPPED.read_text())
    doc["algorithm"] = "PPO"
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["train", str(path), "--timesteps", "64", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "key 'algorithm'" in err and "'PPO'" in err, err
