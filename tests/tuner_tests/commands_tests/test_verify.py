"""``tuner verify``: the top trials re-trained with fresh seeds, as jobs of ``STUDY:verify``.

The job queue runs for real: worker processes of ``tuner tune faults:verify`` on the
real PostgreSQL train each job (the tiny ``faults`` study: a few seconds a job),
one of them is killed mid-job and its job retried. What the export and the report
make of a verification is checked on a study built by hand, where the right
answer is known.
"""

from __future__ import annotations

import math
import signal
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from fault_support import (
    FAST_HEARTBEAT,
    FAULTS,
    by_state,
    finish,
    load_trials,
    reaping,
    running_trial_of,
    spawn_worker,
    wait_for,
)
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from optuna_dashboard import get_note
from scipy.stats import spearmanr
from support import run_cli

from tuner.base.errors import UserError
from tuner.cli import main
from tuner.commands.export import load_export
from tuner.commands.report import write_report
from tuner.commands.verify.companion import companion_name, config_key, verify_seed
from tuner.commands.verify.export_choice import select_for_export
from tuner.commands.verify.queue import queue_jobs
from tuner.commands.verify.statistics import Verification, VerifiedConfig, rank_verified
from tuner.commands.verify.summary import summarize
from tuner.commands.worker import Worker
from tuner.config.loading import load_spec, parse_spec
from tuner.config.space import to_config
from tuner.config.spec import StudySpec
from tuner.config.study import create_study
from tuner.storage.rdb import make_storage, study_names
from tuner.storage.record import StudyAttr, TrialAttr, TrialSystemAttr

COMPANION = companion_name("faults")
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
    "gamma": FloatDistribution(0.9, 0.999),
    "net_arch": CategoricalDistribution(["tiny", "small"]),
}


def tuned_study(url: str, n_trials: int, runs: Path) -> optuna.Study:
    """The faults study run for real by one in-process worker (no pruner: all complete)."""
    spec = load_spec(FAULTS).model_copy(update={"n_trials": n_trials})
    Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs).run()
    return optuna.load_study(study_name="faults", storage=url)


def jobs_by_key(trials: list[optuna.trial.FrozenTrial]) -> dict[tuple[str, int], list[int]]:
    """(configuration, seed) -> the numbers of the completed jobs that trained it."""
    out: dict[tuple[str, int], list[int]] = {}
    for t in by_state(trials, TrialState.COMPLETE):
        key = (
            t.system_attrs[TrialSystemAttr.VERIFY_KEY],
            t.system_attrs[TrialSystemAttr.VERIFY_SEED],
        )
        out.setdefault(key, []).append(t.number)
    return out


# --- the job queue, for real ------------------------------------------------------------


@pytest.mark.postgres
def test_verify_jobs_spread_over_two_workers_without_duplicates(runs, pg_url, capsys):
    study = tuned_study(pg_url, n_trials=2, runs=runs)
    spec = load_spec(FAULTS)
    top = study.trials
    verify = [
        "verify",
        FAULTS,
        "--storage",
        pg_url,
        "--top",
        "2",
        "--fresh-seeds",
        "2",
        "--queue-only",
    ]
    assert main(verify) == 0
    assert "4 jobs queued, 0 already there" in capsys.readouterr().out
    assert main(verify) == 0
    assert "0 jobs queued, 4 already there" in capsys.readouterr().out, "never queued twice"

    with reaping([spawn_worker(pg_url, runs, i, study=COMPANION) for i in range(2)]) as procs:
        outputs = finish(procs, timeout=300)
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "budget its queued jobs" in out

    jobs = load_trials(pg_url, COMPANION)
    assert len(jobs) == 4 and len(by_state(jobs, TrialState.COMPLETE)) == 4
    seeds = [verify_seed(spec, 0), verify_seed(spec, 1)]
    done = jobs_by_key(jobs)
    assert set(done) == {(config_key(t), s) for t in top for s in seeds}
    assert all(len(numbers) == 1 for numbers in done.values()), "each seed trained once"
    assert len({j.user_attrs[TrialAttr.WORKER] for j in jobs}) == 2, "both workers ran jobs"
    originals = {t.number: t for t in study.trials}
    for job in jobs:
        original = originals[job.user_attrs[TrialAttr.VERIFY_OF]]
        assert job.params == original.params
        assert job.user_attrs[TrialAttr.CONFIG] == original.user_attrs[TrialAttr.CONFIG], (
            "the exact config"
        )
        assert job.user_attrs[TrialAttr.VERIFY_SEED] not in {spec.seed + n for n in originals}
        assert job.intermediate_values, "the job reported its evaluations"
    assert len(load_trials(pg_url)) == 2, "the study itself gained no trial"
    assert "verification of 'faults' (faults:verify)" in outputs[0][0] + outputs[1][0]
    note = get_note(optuna.load_study(study_name=COMPANION, storage=pg_url))
    assert note.startswith("# Verification of `faults`") and "rank correlation" in note

    # The verification, and the export that uses it.
    v = summarize(study)
    assert v is not None and v.done and [c.n for c in v.configs] == [2, 2]
    best = v.verified[0]
    assert main(["export", FAULTS, "--storage", pg_url, "--out", str(runs / "best.yaml")]) == 0
    assert "rule: verified" in capsys.readouterr().out
    doc = load_export(runs / "best.yaml")
    assert doc["selection"].startswith("verified:")
    assert doc["trial"] == best.original.number
    assert doc["verification"]["values"] == pytest.approx(best.values)


@pytest.mark.postgres
def test_a_killed_verify_job_is_retried_with_its_seed(runs, pg_url):
    tuned_study(pg_url, n_trials=1, runs=runs)
    verify = [
        "verify",
        FAULTS,
        "--storage",
        pg_url,
        "--top",
        "1",
        "--fresh-seeds",
        "1",
        "--queue-only",
    ]
    assert main(verify) == 0
    with reaping([spawn_worker(pg_url, runs, 0, study=COMPANION)]) as procs:
        victim = procs[0]
        killed = wait_for(
            lambda: running_trial_of(pg_url, victim.pid, COMPANION), 120, "the job to train"
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    result = run_cli(
        "tune", COMPANION, "--storage", pg_url, "--device", "cpu", runs_path=runs, **FAST_HEARTBEAT
    )
    assert result.returncode == 0, result.stderr

    jobs = load_trials(pg_url, COMPANION)
    failed = by_state(jobs, TrialState.FAIL)
    assert [t.number for t in failed] == [killed.number]
    assert failed[0].user_attrs[TrialAttr.FAIL_REASON].startswith("heartbeat stale")
    (retry,) = by_state(jobs, TrialState.COMPLETE)
    assert retry.user_attrs[TrialAttr.RETRY_OF] == killed.number
    for key in ("verify_of", "verify_seed"):
        assert retry.user_attrs[key] == killed.user_attrs[key]
        assert retry.system_attrs[key] == killed.system_attrs[key]
    assert not by_state(jobs, TrialState.WAITING) and not by_state(jobs, TrialState.RUNNING)
    v = summarize(optuna.load_study(study_name="faults", storage=pg_url))
    assert v is not None
    (config,) = v.configs
    assert (config.n, config.failed, config.pending) == (1, 0, 0), "the retry counts, once"


# --- a verification built by hand: export and report ----------------------------------

ORIGINAL = [0.90, 0.80, 0.70]  # trials 0..2, single seed
VERIFIED = [[0.50, 0.60, 0.40], [0.62, 0.66, 0.64], [0.70, 0.72, 0.74]]  # per trial, per seed


@pytest.fixture
def handmade(tmp_path):
    """The faults spec, 3 completed trials and their verify jobs still queued."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = load_spec(FAULTS)
    storage = make_storage(url)
    study = create_study(spec, storage)
    for i, value in enumerate(ORIGINAL):
        params = {"learning_rate": 1e-4 * (i + 1), "gamma": 0.95, "net_arch": "tiny"}
        config = yaml.safe_load(yaml.safe_dump(to_config(spec, params).as_dict()))
        study.add_trial(
            create_trial(
                value=value,
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs={TrialAttr.CONFIG: config, TrialAttr.SCORES: {"random": value}},
            )
        )
    queue_jobs(study, storage, 3, 3)
    return url, study, storage


def finish_jobs(url: str, storage) -> None:
    """Record the planned values on the queued jobs, as a worker's tell would."""
    companion = optuna.load_study(study_name=COMPANION, storage=url)
    spec = load_spec(FAULTS)
    for job in companion.get_trials(states=(TrialState.WAITING,)):
        values = VERIFIED[job.system_attrs[TrialSystemAttr.VERIFY_OF]]
        index = [verify_seed(spec, i) for i in range(3)].index(
            job.system_attrs[TrialSystemAttr.VERIFY_SEED]
        )
        storage.set_trial_state_values(job._trial_id, state=TrialState.RUNNING)
        storage.set_trial_state_values(
            job._trial_id, state=TrialState.COMPLETE, values=[values[index]]
        )


def test_export_prefers_the_verified_best_and_records_why(handmade, tmp_path, capsys):
    url, study, storage = handmade
    out = tmp_path / "best.yaml"

    # Queued but not run: the single-seed best, and a note why the verification is unused.
    assert main(["export", "faults", "--storage", url, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "not finished (9 jobs waiting or running" in text
    doc = load_export(out)
    assert doc["trial"] == 0 and doc["selection"].startswith("single seed:")
    assert doc["verification"] is None

    finish_jobs(url, storage)
    assert main(["export", "faults", "--storage", url, "--out", str(out), "--force"]) == 0
    text = capsys.readouterr().out
    assert "replaced: trial 0 of study 'faults', value 0.9000, exported " in text, text
    doc = load_export(out)
    assert doc["trial"] == 2, "trial 2 has the best mean over fresh seeds"
    assert doc["selection"].startswith("verified:") and "rule: verified" in text
    v = doc["verification"]
    assert v["study"] == COMPANION and v["original_trial"] == 2
    assert (v["original_rank"], v["verified_rank"]) == (3, 1)
    assert v["values"] == pytest.approx(VERIFIED[2]) and v["mean"] == pytest.approx(0.72)
    assert v["std"] == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # Student t, 2 degrees of freedom
    assert v["interval"] == pytest.approx([0.72 - half, 0.72 + half])
    assert v["winners_curse"] == pytest.approx(0.90 - 0.50)
    assert v["rank_correlation"] == pytest.approx(-1.0)
    assert "Chosen by the rule 'verified'" in out.read_text()
    assert (
        load_export(out)["ppo_kwargs"] == study.trials[2].user_attrs[TrialAttr.CONFIG]["ppo_kwargs"]
    )


def test_export_without_verification_says_single_seed(handmade, tmp_path, capsys):
    url, study, _ = handmade
    storage = make_storage(url)
    optuna.delete_study(study_name=COMPANION, storage=storage)
    chosen = select_for_export(optuna.load_study(study_name="faults", storage=url))
    assert chosen.trial.number == 0 and chosen.verification is None
    assert chosen.rule.startswith("single seed:") and "tuner verify faults" in chosen.rule


@pytest.mark.slow
def test_report_section_renders_ranks_intervals_and_the_winners_curse(handmade, tmp_path):
    url, study, storage = handmade
    finish_jobs(url, storage)
    report = write_report(study, tmp_path / "report")
    text = report.html.read_text()
    section = text[text.index('<h2 id="verification">') :]
    assert "trial 0 (0.9000 on one seed)" in section
    assert "<b>0.5000</b> on average over 3 fresh seeds: a fall of <b>0.4000</b>" in section
    rho = spearmanr([1, 2, 3], [3, 2, 1])[0]
    assert f"<b>{rho:.4f}</b>" in section
    assert 'id="fig-verification"' in section and "error_y" in section
    for number, (orig, seeds) in enumerate(zip(ORIGINAL, VERIFIED, strict=True)):
        mean = sum(seeds) / 3
        assert f'<td class="num">{orig:.4f}</td>' in section
        assert f'<td class="num">{mean:.4f}</td>' in section, (number, mean)
    assert (tmp_path / "report" / "verification.png").stat().st_size > 0

    optuna.delete_study(study_name=COMPANION, storage=storage)
    text = write_report(study, tmp_path / "plain").html.read_text()
    assert "Not verified: every value in this report comes from one training run" in text


def test_dashboard_lists_the_companion_study(handmade, capsys):
    from tuner.commands.dashboard import create_dashboard

    url, *_ = handmade
    dash = create_dashboard(url, port=0)
    try:
        assert f"study {COMPANION!r}" in dash.banner()
        import threading

        threading.Thread(target=dash.server.serve_forever, daemon=True).start()
        body = urllib.request.urlopen(f"http://127.0.0.1:{dash.port}/api/studies").read()
        assert COMPANION.encode() in body
    finally:
        dash.server.shutdown()
        dash.server.server_close()


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--top", "0"], "--top: expected an integer between 1 and 50, but got '0'"),
        (
            ["--fresh-seeds", "-1"],
            "--fresh-seeds: expected an integer between 1 and 20, but got '-1'",
        ),
        (["--top", "4"], "--top 4: study 'faults' has 3 completed configuration(s), but 4"),
    ],
)
def test_bad_verify_input_is_one_line_and_exit_2(handmade, capsys, args, expected):
    url, *_ = handmade
    storage = make_storage(url)
    optuna.delete_study(study_name=COMPANION, storage=storage)
    try:
        code = main(["verify", "faults", "--storage", url, "--queue-only", *args])
    except SystemExit as stop:  # a bound on an argument: argparse exits from parse_args
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1, err
    assert COMPANION not in study_names(storage), "nothing was written"


@pytest.mark.slow
def test_unknown_study_or_missing_jobs_is_one_line_and_exit_2(handmade, runs, capsys):
    url, *_ = handmade
    assert main(["verify", "nosuch", "--storage", url]) == 2
    assert "no study named 'nosuch'" in capsys.readouterr().err
    assert main(["verify", COMPANION, "--storage", url]) == 2
    assert "expected the name of a study to verify" in capsys.readouterr().err
    assert main(["tune", "nosuch:verify", "--storage", url]) == 2
    assert "no study named 'nosuch'" in capsys.readouterr().err
    storage = make_storage(url)
    optuna.delete_study(study_name=COMPANION, storage=storage)
    assert main(["tune", COMPANION, "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "no verify jobs for study 'faults'" in err and err.count("\n") == 1
    # As a process: the exit code and no traceback.
    result = run_cli("verify", "faults", "--storage", url, "--top", "0", runs_path=runs)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


# --- budget.runs: several training runs per trial, the Wilcoxon pruner -------------------


def runs_spec(runs: int, pruner: dict) -> StudySpec:
    data = yaml.safe_load(Path(FAULTS).read_text())
    data["budget"]["runs"] = runs
    data["pruner"] = pruner
    data["n_trials"] = 1
    return parse_spec(data)


def test_several_runs_per_trial_report_each_run_and_the_mean(runs, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = runs_spec(2, {"type": "none"})
    Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs).run()
    (trial,) = optuna.load_study(study_name="faults", storage=url).trials
    assert trial.state == TrialState.COMPLETE
    values = trial.user_attrs[TrialAttr.RUN_VALUES]
    # The mean, rounded to 4 places as every score the tuner reports.
    assert len(values) == 2 and trial.value == round(sum(values) / 2, 4)
    assert trial.intermediate_values == {0: values[0], 1: values[1]}, "step = run index"
    assert trial.user_attrs[TrialAttr.TIMESTEPS] >= 2 * spec.budget.total_timesteps


@pytest.mark.slow
def test_wilcoxon_pruner_stops_a_trial_whose_runs_lose_to_the_best(runs, tmp_path):
    """A best trial that won every run: the next trial is pruned once 3 runs lost (p 1/8)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = runs_spec(4, {"type": "wilcoxon", "options": {"p_threshold": 0.2}})
    study = create_study(spec, make_storage(url))
    params = {"learning_rate": 1e-3, "gamma": 0.95, "net_arch": "tiny"}
    study.add_trial(
        create_trial(
            value=1.0,
            params=params,
            distributions=DISTRIBUTIONS,
            intermediate_values={i: 1.0 for i in range(4)},
        )
    )
    study.set_user_attr(StudyAttr.N_TRIALS, 2)
    Worker.open(
        spec.model_copy(update={"n_trials": 2}), url, worker_index=0, device="cpu", runs_dir=runs
    ).run()
    trial = optuna.load_study(study_name="faults", storage=url).trials[1]
    assert trial.state == TrialState.PRUNED, trial.user_attrs
    assert trial.user_attrs[TrialAttr.PRUNE_REASON].startswith("pruned after run 3 of 4")
    assert sorted(trial.intermediate_values) == [0, 1, 2], "one report per run, no fourth"
    assert len(trial.user_attrs[TrialAttr.RUN_VALUES]) == 3


@pytest.mark.parametrize(
    ("n_runs", "pruner", "expected"),
    [
        (2, {"type": "median"}, "expected wilcoxon or none with budget.runs: 2, but got median"),
        (1, {"type": "wilcoxon"}, "budget.runs: expected at least 2 with pruner.type: wilcoxon"),
        (3, {"type": "wilcoxon", "options": {"p_threshold": 2}}, "p_threshold must be between"),
    ],
)
def test_runs_and_pruner_that_do_not_fit_are_one_clear_error(n_runs, pruner, expected):
    with pytest.raises(UserError) as err:
        runs_spec(n_runs, pruner)
    assert expected in str(err.value)


def test_statistics_on_numbers_alone_for_a_minimizing_study():
    """No storage: lower is better, a tie in the mean goes to the better original rank,
    one seed has a mean but no interval, and the curse is a rise of the original best."""
    originals = [create_trial(value=v, params={}, distributions={}) for v in (0.125, 0.25, 0.375)]
    configs = [
        VerifiedConfig(originals[0], 1, seeds=[1, 2], values=[0.5, 0.75]),
        VerifiedConfig(originals[1], 2, seeds=[1], values=[0.5]),
        VerifiedConfig(originals[2], 3, seeds=[1, 2], values=[0.25, 0.75]),
    ]
    rank_verified(configs, maximize=False)
    assert [c.mean for c in configs] == [0.625, 0.5, 0.5]
    assert [c.verified_rank for c in configs] == [3, 1, 2], "a tie: original rank 2 first"
    assert configs[1].interval is None, "one seed: no interval"
    v = Verification("study", "study:verify", maximize=False, configs=configs)
    assert [c.original_rank for c in v.verified] == [2, 3, 1]
    assert v.winners_curse == pytest.approx(0.625 - 0.125), "the original best got worse"
    assert v.mean_drop == pytest.approx((0.5 + 0.25 + 0.125) / 3)
    assert v.rank_correlation == pytest.approx(spearmanr([1, 2, 3], [3, 1, 2])[0])


def test_fresh_seeds_past_two_to_the_32_are_refused_before_anything_is_queued(handmade):
    """A seed past 2**32 cannot train (numpy's limit): refused in one line, nothing queued."""
    url, study, storage = handmade
    companion = optuna.load_study(study_name=COMPANION, storage=url)
    before = len(companion.get_trials(deepcopy=False))
    spec = load_spec(FAULTS).model_copy(update={"seed": 2**32 - 150_000})
    with pytest.raises(UserError, match=r"expected fresh seeds in \[0, 2\*\*32\)"):
        queue_jobs(study, storage, 1, 2, spec)
    assert len(companion.get_trials(deepcopy=False)) == before
