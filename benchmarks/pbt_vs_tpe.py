"""PBT against TPE + Hyperband on one search space, at equal CPU time (issue 23's measure).

``make bench-pbt CPU_HOURS=4`` runs, one after the other so that each has the machine:

1. the TPE study (``studies/exploration.yaml``) with ``--workers`` worker processes for
   ``CPU_HOURS / workers`` hours of wall time (each worker is one core: one torch thread);
2. the PBT study (``studies/exploration_pbt.yaml``, the same space, env, network and
   rating) the same way, its members' budget stretched to fill the same CPU time (a copy
   of the file with more intervals: ``--steps-per-second``, 1,700 by default, the
   exploration study's measured rate, says how many fit; the timeout cuts it where it is);
3. for each: ``tuner export`` of its winner (TPE: the best trial; PBT: the best member at
   the last interval every member finished, whose schedule is replayed up to there) and
   ``--fresh-seeds`` retrainings with fresh seeds (as ``tuner train FILE --seed S``), each rated
   by its final evaluation.

It prints, per study, the CPU-hours its trials took (the sum of their durations: worker
time), how many trials or units ran, the best value found, and the fresh seeds' ratings
(mean, standard deviation); and draws the best value found against CPU-hours for both
(``bench-pbt.png``). A worker stops claiming after its time, so the last trials may run
over by one trial's length; the CPU-hours printed are what was spent. All figures come
from one run on one machine: compare the rows, not machines.

Everything goes below ``--out`` (default ``runs/bench-pbt``): its own SQLite storage,
artifacts and exports, apart from the studies you tune yourself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _env(out: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPTUNA_STORAGE", None)
    env.update({"KALAHA_RUNS": str(out / "runs"), "KALAHA_TORCH_THREADS": "1"})
    return env


def tune(study_file: Path, out: Path, workers: int, seconds: float) -> None:
    """``workers`` worker processes on the study for ``seconds`` each (then they finish a trial)."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tuner",
                "tune",
                str(study_file),
                "--worker-index",
                str(i),
                "--timeout",
                str(int(seconds)),
            ],
            cwd=REPO,
            env=_env(out),
            stdout=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    for p in procs:
        p.wait()


def history(study: Any) -> list[tuple[float, float]]:
    """(CPU-hours spent so far, best value so far) at each finished trial, in finishing order."""
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.datetime_start and t.datetime_complete
    ]
    done.sort(key=lambda t: t.datetime_complete)
    spent, best, out = 0.0, None, []
    for t in done:
        spent += (t.datetime_complete - t.datetime_start).total_seconds() / 3600
        if t.state == TrialState.COMPLETE and t.value is not None:
            best = t.value if best is None else max(best, t.value)
        if best is not None:
            out.append((spent, best))
    return out


def stretched_pbt(study_file: Path, out: Path, cpu_hours: float, steps_per_second: float) -> Path:
    """A copy of the PBT study whose members train as many intervals as ``cpu_hours`` allow."""
    import yaml

    data = yaml.safe_load(study_file.read_text())
    pbt = data["pbt"]
    # 0.85: the evaluations' share of a unit at 200 rated games (make bench-rating)
    steps = cpu_hours * 3600 * steps_per_second * 0.85
    intervals = max(1, int(steps // (pbt["population"] * pbt["interval"])))
    data["budget"]["total_timesteps"] = intervals * pbt["interval"]
    data["n_trials"] = intervals * pbt["population"]
    path = out / study_file.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _retrain(export: str, seed: int, runs: str) -> float:
    """One fresh-seed retraining of an export; its final evaluation's value.

    A PBT winner's schedule is replayed up to the end of its last interval (where the
    population was when the time ran out), not to the stretched budget.
    """
    import torch

    from tuner.commands.export import load_export, train_from_export

    torch.set_num_threads(1)
    doc = load_export(export)
    steps = None
    if doc.get("pbt"):
        steps = doc["pbt"]["schedule"][-1]["timestep"] + doc["pbt"]["interval"]
    run, _ = train_from_export(
        doc, device="cpu", seed=seed, runs_dir=Path(runs), total_timesteps=steps,
        out=Path(runs) / "models" / f"{Path(export).stem}_seed{seed}.zip",
    )  # fmt: skip
    return run.state.evaluations[-1].value


def verify(study_file: Path, out: Path, workers: int, seeds: list[int]) -> dict[str, Any]:
    """Export the study's winner and retrain it on fresh seeds, ``workers`` at a time."""
    import optuna

    from tuner.config.loading import load_spec

    spec = load_spec(study_file)
    export = out / "best" / f"{spec.study_name}.yaml"
    subprocess.run(
        [sys.executable, "-m", "tuner", "export", str(study_file), "--out", str(export)],
        cwd=REPO, env=_env(out), check=True, capture_output=True,
    )  # fmt: skip
    with ProcessPoolExecutor(max_workers=workers) as pool:
        values = list(pool.map(_retrain, [str(export)] * len(seeds), seeds,
                               [str(out / "runs")] * len(seeds)))  # fmt: skip
    storage = f"sqlite:///{out / 'runs' / 'optuna.db'}"
    study = optuna.load_study(study_name=spec.study_name, storage=storage)
    return summary(study, seeds, values)


def summary(study: Any, seeds: list[int], values: list[float]) -> dict[str, Any]:
    """A study's row of the comparison: its spending, best value and fresh-seed values."""
    curve = history(study)
    return {
        "study": study.study_name,
        "trials": len(study.get_trials(deepcopy=False)),
        "cpu_hours": curve[-1][0] if curve else 0.0,
        "best_value": curve[-1][1] if curve else None,
        "fresh_seeds": seeds,
        "fresh_values": values,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "curve": curve,
    }


def recorded(study_file: Path, storage: str) -> dict[str, Any]:
    """A study that already ran and was verified (``tuner verify``) in ``storage``.

    Its curve is read from its trials and its fresh-seed values from its verified best
    (the configuration ``tuner export`` picks), so a TPE study run once need not run again
    to be compared; the CPU-hours it spent are what its trials took, as for a new run.
    """
    import optuna

    from tuner.commands.verify.summary import summarize
    from tuner.config.loading import load_spec

    spec = load_spec(study_file)
    study = optuna.load_study(study_name=spec.study_name, storage=storage)
    verification = summarize(study)
    ranked = [c for c in verification.configs if c.verified_rank] if verification else []
    if not ranked:
        raise SystemExit(f"error: study {spec.study_name!r} in {storage} has no verification; "
                         f"run `tuner verify {spec.study_name}` first")  # fmt: skip
    best = min(ranked, key=lambda c: c.verified_rank or 0)
    return summary(study, best.seeds, best.values)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        xs, ys = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
        ax.step(xs, ys, where="post", label=f"{r['study']} (fresh seeds {r['mean']:.4g})")
    ax.set_xlabel("CPU-hours (sum of trial durations)")
    ax.set_ylabel("best value found (rating)")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-hours", type=float, default=4.0, help="per study (default 4)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh-seeds", type=int, default=3, help="fresh seeds per winner")
    parser.add_argument("--tpe", type=Path, default=REPO / "studies" / "exploration.yaml")
    parser.add_argument("--pbt", type=Path, default=REPO / "studies" / "exploration_pbt.yaml")
    parser.add_argument("--steps-per-second", type=float, default=1700.0,
                        help="one worker's training rate, to size the PBT members' budget")  # fmt: skip
    parser.add_argument("--tpe-storage", default=None,
                        help="the TPE study already ran and was verified in this storage: "
                        "read it from there instead of running it again")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs") / "bench-pbt")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [2026 + 1000 * i for i in range(args.fresh_seeds)]
    pbt = stretched_pbt(args.pbt, args.out, args.cpu_hours, args.steps_per_second)
    results = [recorded(args.tpe, args.tpe_storage)] if args.tpe_storage else []
    for study in (args.tpe, pbt)[len(results) :]:
        print(
            f"tuning {study.name}: {args.workers} workers, {args.cpu_hours} CPU-hours", flush=True
        )
        tune(study, args.out, args.workers, args.cpu_hours * 3600 / args.workers)
        results.append(verify(study, args.out, args.workers, seeds))
    print(f"{'study':<18}{'units':>7}{'CPU-h':>8}{'best':>9}{'fresh seeds (mean, std)':>40}")
    for r in results:
        vals = ", ".join(f"{v:.4g}" for v in r["fresh_values"])
        print(f"{r['study']:<18}{r['trials']:>7}{r['cpu_hours']:>8.2f}{r['best_value']:>9.4g}"
              f"   {vals}  ({r['mean']:.4g}, {r['std']:.2g})")  # fmt: skip
    (args.out / "bench-pbt.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "bench-pbt.png")
    print(f"figure: {args.out / 'bench-pbt.png'}; numbers: {args.out / 'bench-pbt.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
