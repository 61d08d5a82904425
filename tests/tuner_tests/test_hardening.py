"""What a hostile or careless user found on the tuner (issue 12), each case as a test.

Each test here failed before its fix: a configuration typo that burnt the budget,
a graceful stop that used up the retry budget, permanent storage errors retried
as lost connections, unbounded YAML, tracebacks where one line was promised,
paths that escaped the runs folder.
"""

from __future__ import annotations

import optuna
import yaml
from optuna.trial import TrialState
from support import REPO_ROOT, run_cli

from tuner.worker import budget_used


def smoke_data(**overrides) -> dict:
    """The smoke study, with fewer evaluation games, and ``overrides`` on top."""
    data = yaml.safe_load((REPO_ROOT / "studies" / "smoke.yaml").read_text())
    data["evaluation"]["games"] = 20
    data.update(overrides)
    return data


def write_study(path, data: dict):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2, no traceback, and a last stderr line that says what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


# --- 4. a configuration error does not burn the budget ----------------------------------


def test_a_configuration_error_stops_the_worker_and_spends_no_budget(runs, tmp_path):
    """A setting that passes the schema but cannot build the model (Adam has ``eps``, not
    ``epsilon``): the worker stops after two such trials with exit 2, the trials say
    "configuration error" (not "training diverged"), and once the file is fixed the
    study still has its whole budget."""
    ppo = {"n_steps": 64, "batch_size": 128, "n_epochs": 2}
    data = smoke_data(
        n_trials=2, ppo={**ppo, "policy_kwargs": {"optimizer_kwargs": {"epsilon": 1.0e-5}}}
    )
    path = write_study(tmp_path / "typo.yaml", data)
    result = run_cli("tune", str(path), runs_path=runs)
    assert_one_line_error(result, "configuration error", "epsilon", "fix the study file")

    url = f"sqlite:///{runs / 'optuna.db'}"
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    for t in trials:
        assert t.user_attrs["config_error"] is True
        assert t.user_attrs["fail_reason"].startswith("configuration error: MaskablePPO cannot")
        assert "diverged" not in t.user_attrs["fail_reason"]
    assert budget_used(trials) == 0

    data["ppo"]["policy_kwargs"] = {"optimizer_kwargs": {"eps": 1.0e-5}}
    write_study(path, data)
    result = run_cli("tune", str(path), runs_path=runs)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == data["n_trials"] and budget_used(trials) == data["n_trials"]
