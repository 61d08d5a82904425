"""Storage overhead per trial with 1, 2, 4 and 8 concurrent worker processes.

Each run is a fresh study on one backend, ``--trials`` trials in all, shared by
N worker processes that start together. A trial is Optuna's ask, three
suggestions, one report and the tell, with an objective that computes nothing,
so what is measured is the storage (and the sampler reading it):

- SQLite: the embedded default file, through the tuner's storage settings;
- journal: Optuna's append-only journal file (``JournalFileBackend``);
- PostgreSQL: a fresh database on the server, through the tuner's storage
  settings (pool, pre-ping, heartbeat configuration).

Then the same on PostgreSQL through the tuner's own worker loop (claim lock,
stale-trial check, heartbeat thread, global budget), with the peak number of
PostgreSQL connections each worker process held, read from
``pg_stat_activity`` while the run goes on.

``make bench-storage`` runs it; it prints figures and never fails on a slow
machine. All figures come from one run, so compare rows, not machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("sqlite", "journal", "postgresql")
STUDY = "bench"
DEFAULT_PG = os.environ.get("KALAHA_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")


# --- the child: one worker process -----------------------------------------------------


def _quiet() -> None:
    import logging
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    logging.getLogger("tuner").setLevel(logging.ERROR)


def _open_storage(backend: str, url: str) -> Any:
    import optuna

    if backend == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url))
    from tuner.storage.rdb import make_storage

    return make_storage(url)


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _suggest_report(trial: Any) -> float:
    x = trial.suggest_float("x", 1.0e-5, 1.0e-2, log=True)
    y = trial.suggest_float("y", 0.9, 0.999)
    arch = trial.suggest_categorical("arch", ["tiny", "small", "medium"])
    value = math.log10(x) + y + len(arch) * 0.01
    trial.report(value, step=1)
    return value


def child_bare(
    backend: str, url: str, n: int, sampler: str, seed: int
) -> tuple[list[float], float]:
    """``n`` trials of ask + suggest + report + tell: the seconds each took, the last end."""
    import optuna

    study = optuna.load_study(
        study_name=STUDY, storage=_open_storage(backend, url), sampler=_sampler(sampler, seed)
    )
    _ready_then_wait()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        trial = study.ask()
        value = _suggest_report(trial)
        study.tell(trial, value)
        times.append(time.perf_counter() - start)
    return times, time.time()


def child_worker(url: str, n_trials: int, sampler: str, seed: int) -> tuple[list[float], float]:
    """The tuner's worker loop with a trivial objective, until the global budget is spent.

    A trial's time runs from the end of the worker's previous trial to the end of
    this one: claim (lock, stale check, budget count, ask), heartbeat, objective, tell.
    """
    from tuner.commands.worker import Worker
    from tuner.config.spec import parse_spec
    from tuner.trial.progress import TrialHooks

    spec = parse_spec(
        {
            "study_name": STUDY,
            "n_trials": n_trials,
            "sampler": {"type": sampler},
            "pruner": {"type": "none"},
            "budget": {"total_timesteps": 8, "n_evaluations": 1},
        },
        "benchmark",
    )
    times: list[float] = []
    last = [0.0, time.time()]

    def objective(trial: Any, _spec: Any, **_: Any) -> float:
        return _suggest_report(trial)

    class Clock(TrialHooks):  # the worker's reporter: times each trial, shows nothing
        def on_trial_end(self, *_args: Any) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0], last[1] = now, time.time()

    worker = Worker.open(
        spec, url, worker_index=seed, device="cpu", objective_fn=objective, reporter=Clock()
    )
    _ready_then_wait()
    last[0] = time.perf_counter()
    report = worker.run()
    failed = [(n, state) for n, state, _ in report.finished if state != "COMPLETE"]
    if failed:  # timing failures would measure the wrong thing
        raise RuntimeError(f"trials did not complete in the worker loop: {failed[:5]}")
    return times, last[1]


def _ready_then_wait() -> None:
    print("ready", flush=True)
    sys.stdin.readline()  # the parent says go once every worker is ready


def child_main(argv: list[str]) -> None:
    _quiet()
    mode, backend, url, n, sampler, seed = argv
    if mode == "bare":
        times, end = child_bare(backend, url, int(n), sampler, int(seed))
    else:
        times, end = child_worker(url, int(n), sampler, int(seed))
    # The end of the last trial, not of the process: a worker that found the budget
    # spent while others still ran trials lingers a moment before it exits.
    print(json.dumps({"pid": os.getpid(), "times": times, "end": end}), flush=True)


# --- the parent: runs, connection counts, the table -------------------------------------


@dataclass
class Result:
    backend: str
    workers: int
    trials: int
    wall: float
    times: list[float]
    connections: dict[int, int] = field(default_factory=dict)

    @property
    def ms_mean(self) -> float:
        return 1000 * statistics.fmean(self.times)

    @property
    def ms_p95(self) -> float:
        return 1000 * statistics.quantiles(self.times, n=20)[-1] if len(self.times) > 1 else 0.0

    @property
    def throughput(self) -> float:
        return self.trials / self.wall


def _create_study(backend: str, url: str) -> None:
    import optuna

    optuna.create_study(study_name=STUDY, storage=_open_storage(backend, url), direction="maximize")


def run_once(
    mode: str,
    backend: str,
    url: str,
    workers: int,
    trials: int,
    sampler: str,
) -> Result:
    from tuner.storage.rdb import worker_connections

    if mode == "bare":
        _create_study(backend, url)
        shares = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
    else:
        shares = [trials] * workers  # the global budget: the workers share it by themselves
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.storage",
                "--child",
                mode,
                backend,
                url,
                str(n),
                sampler,
                str(i),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for i, n in enumerate(shares)
    ]
    try:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a benchmark worker failed to start: {line!r}")
        peak: dict[int, int] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                # application_name "kalaha-tuner HOST:PID" tells whose connections they are
                if backend == "postgresql":
                    for app, n in worker_connections(url).items():
                        pid = int(app.rsplit(":", 1)[1])
                        peak[pid] = max(peak.get(pid, 0), n)
                stop.wait(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        start = time.time()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        watcher.start()
        outputs = [p.communicate(timeout=3600)[0] for p in procs]
        stop.set()
        watcher.join()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    times: list[float] = []
    end = start
    for p, out in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"a benchmark worker exited with {p.returncode}")
        report = json.loads(out.strip().splitlines()[-1])
        times.extend(report["times"])
        end = max(end, report["end"])
    wall = end - start
    worker_pids = {p.pid for p in procs}
    connections = {pid: n for pid, n in peak.items() if pid in worker_pids}
    return Result(backend, workers, len(times), wall, times, connections)


def fresh_store(backend: str, tmp: Path, pg_server: str) -> tuple[str, str | None]:
    """A new empty storage: (url or path, PostgreSQL database name)."""
    from tests.pgadmin import create_database, unique_name

    tag = secrets.token_hex(3)
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'bench_{tag}.db'}", None
    if backend == "journal":
        return str(tmp / f"bench_{tag}.log"), None
    name = unique_name("kalaha_bench")
    return create_database(pg_server, name), name


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="trials per run (default 500)")
    parser.add_argument("--workers", default="1,2,4,8", help="worker process counts")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="subset of " + ", ".join(BACKENDS)
    )
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument(
        "--pg",
        default=DEFAULT_PG,
        help="PostgreSQL server URL, no database (default %(default)s; $KALAHA_BENCH_PG)",
    )
    parser.add_argument(
        "--no-worker-loop", action="store_true", help="skip the tuner worker-loop runs"
    )
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"--backends: unknown {sorted(unknown)}; expected some of {list(BACKENDS)}")
    from tests.pgadmin import drop_database

    _quiet()

    print(
        f"storage overhead per trial: ask + 3 suggestions + report + tell, trivial objective, "
        f"{args.sampler.upper()} sampler, {args.trials} trials per run, {os.cpu_count()} CPU cores"
    )
    print("ms/trial: what one worker waits per trial (mean, 95th percentile); "
          "trials/s: all workers together")  # fmt: skip
    print()
    header = f"{'backend':<12s} {'workers':>7s} {'ms/trial':>9s} {'p95 ms':>8s} {'trials/s':>9s}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="kalaha-bench-") as tmp:
        for backend in backends:
            for n in counts:
                url, dbname = fresh_store(backend, Path(tmp), args.pg)
                try:
                    r = run_once("bare", backend, url, n, args.trials, args.sampler)
                finally:
                    if dbname:
                        drop_database(args.pg, dbname)
                print(
                    f"{backend:<12s} {n:>7d} {r.ms_mean:>9.1f} {r.ms_p95:>8.1f} "
                    f"{r.throughput:>9.1f}",
                    flush=True,
                )
        if "postgresql" in backends and not args.no_worker_loop:
            print()
            print(
                "PostgreSQL through the tuner's worker loop (claim lock, stale check, heartbeat "
                "thread, global budget),\nwith the peak connections each worker process held "
                "(pg_stat_activity; the pool allows 2 x KALAHA_POOL_SIZE)"
            )
            print()
            header = (
                f"{'workers':>7s} {'ms/trial':>9s} {'p95 ms':>8s} {'trials/s':>9s} "
                f"{'connections/worker':>19s}"
            )
            print(header)
            print("-" * len(header))
            for n in counts:
                url, dbname = fresh_store("postgresql", Path(tmp), args.pg)
                try:
                    r = run_once("worker", "postgresql", url, n, args.trials, args.sampler)
                finally:
                    if dbname:
                        drop_database(args.pg, dbname)
                conns = sorted(r.connections.values())
                shown = (
                    f"{conns[0]}-{conns[-1]}"
                    if conns and conns[0] != conns[-1]
                    else (str(conns[0]) if conns else "?")
                )
                print(
                    f"{n:>7d} {r.ms_mean:>9.1f} {r.ms_p95:>8.1f} {r.throughput:>9.1f} {shown:>19s}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
