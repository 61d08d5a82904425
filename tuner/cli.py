"""The command line, thin: parse, call the module that does the work, print.

A user's mistake (a bad study file, a bad environment variable, an unreachable
database, an unknown study) is one line on stderr and exit code 2; no traceback.
:func:`main` reads the environment once (:class:`~tuner.base.settings.Settings`) and
hands each command its settings; a flag wins over the variable it overrides.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tuner.base.errors import EXIT_BAD_INPUT, UserError
from tuner.base.settings import Settings
from tuner.storage.record import StudyAttr

OPENING_HELP = "random plies of each opening (default: env.arena.DEFAULT_OPENING_PLIES, 4)"
GAMES_HELP = (
    "games per opponent (even; default: env.arena.DEFAULT_EVAL_GAMES, 200, as a study's "
    "evaluation.games)"
)
Command = Callable[[argparse.Namespace, Settings], int]


def _opening_plies(args: argparse.Namespace) -> int:
    """The arena's default unless given (imported late: the CLI starts without numba)."""
    from env.arena import DEFAULT_OPENING_PLIES

    return DEFAULT_OPENING_PLIES if args.opening_plies is None else args.opening_plies


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error style: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _eval_games(args: argparse.Namespace) -> int:
    """The one default of evaluation games unless given (imported late, as above)."""
    from env.arena import DEFAULT_EVAL_GAMES

    return DEFAULT_EVAL_GAMES if args.games is None else args.games


def _bounded(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` number in [low, high]."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or value < low or (high is not None and value > high):
            limits = f"between {low} and {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'} {limits}, but got {text!r}"
            )
        return value

    parse.__name__ = kind.__name__
    return parse


def _threads(n: int) -> None:
    """One torch thread per worker unless told otherwise: more never helped on small nets."""
    import torch

    torch.set_num_threads(n)


def _thread_count(args: argparse.Namespace, settings: Settings) -> int:
    """``--threads``, else ``$KALAHA_TORCH_THREADS`` (checked by Settings), else 1."""
    return args.threads if args.threads is not None else settings.torch_threads


def _device(args: argparse.Namespace, settings: Settings) -> str:
    """``--device``, else ``$KALAHA_DEVICE``, else ``auto``."""
    return args.device if args.device is not None else settings.device


def _quiet_known_warnings() -> None:
    """Silence the warnings the tuner knows to be harmless, once per process.

    The worker runs Optuna's heartbeat around ask/tell itself, as ``Study.optimize``
    does, and Optuna warns that heartbeats are meant for ``optimize``. Installed
    here rather than at import, so that importing a module changes nothing global.
    """
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def cmd_tune(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.verify import base_name, worker_setup
    from tuner.commands.worker import Worker
    from tuner.config.spec import load_spec
    from tuner.storage.rdb import describe
    from tuner.trial.progress import Reporter

    url = settings.storage_url_for(args.storage)
    options: dict = {}
    if base_name(args.study) is not None:  # STUDY:verify: run the queued verify jobs
        spec, options = worker_setup(args.study, url, settings.storage)
    else:
        spec = load_spec(args.study, settings.studies_dir)
    _threads(_thread_count(args, settings))
    worker = Worker.open(
        spec,
        url,
        max_trials=args.n_trials,
        timeout=args.timeout,
        device=_device(args, settings),
        worker_index=args.worker_index if args.worker_index is not None else settings.worker_index,
        settings=settings.storage,
        reporter=Reporter(spec.budget.total_timesteps * spec.budget.seeds),
        runs_dir=settings.runs_dir,
        accept_changes=args.accept_changes,
        **options,
    )
    budget = "its queued jobs" if options else f"{spec.n_trials} trials"
    print(
        f"worker on study {spec.study_name!r} ({describe(url)}), "
        f"device {worker.device}, budget {budget}",
        flush=True,
    )
    report = worker.run()
    if report.config_error:
        raise UserError(
            f"{report.config_error}. The worker stopped: its trials kept failing with this "
            "configuration error (such trials do not count against n_trials); fix the study "
            "file and run again"
        )
    counts = ", ".join(f"{s}={report.count(s)}" for s in ("COMPLETE", "PRUNED", "FAIL"))
    stop = f" (stopped by {report.stopped_by})" if report.stopped_by else ""
    print(f"worker done: {len(report.finished)} trials, {counts}{stop}", flush=True)
    if options:  # a verify worker: where the verification stands now
        from tuner.commands.verify import conclude

        print(conclude(worker.study) or "", flush=True)
    return 0


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.config.spec import load_spec
    from tuner.config.study import create_study
    from tuner.storage.rdb import make_storage

    spec = load_spec(args.study, settings.studies_dir)
    storage = make_storage(settings.storage_url_for(args.storage), settings.storage)
    create_study(spec, storage, accept_changes=args.accept_changes)
    print(f"study {spec.study_name!r} is ready ({spec.n_trials} trials)")
    return 0


def _load_existing(study_name_or_file: str, storage_url: str | None, settings: Settings):
    import optuna

    from tuner.config.spec import resolve_study_path
    from tuner.storage.rdb import describe, make_storage, require_existing, study_names

    url = settings.storage_url_for(storage_url)
    require_existing(url)
    storage = make_storage(url, settings.storage)
    path = resolve_study_path(study_name_or_file, settings.studies_dir)
    name = study_name_or_file
    if path.exists():
        from tuner.config.spec import load_spec

        name = load_spec(path).study_name
    if name not in study_names(storage):
        raise UserError(
            f"no study named {name!r} in {describe(url)}; "
            f"expected one of {study_names(storage)}. Run `tuner tune {name}` first"
        )
    return optuna.load_study(study_name=name, storage=storage), storage


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.status import format_status
    from tuner.storage.rdb import worker_connections

    study, storage = _load_existing(args.study, args.storage, settings)
    print(format_status(study, storage, worker_connections(storage.url)))
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.export import best_path, export_document, write_export
    from tuner.commands.verify import select_for_export
    from tuner.config.spec import load_spec, parse_spec, upgrade_stored_spec

    study, _ = _load_existing(args.study, args.storage, settings)
    chosen = select_for_export(study)
    trial = chosen.trial
    spec_data = upgrade_stored_spec(study.user_attrs.get(StudyAttr.SPEC))
    spec = (
        parse_spec(spec_data, f"study {study.study_name!r}")
        if spec_data
        else load_spec(args.study, settings.studies_dir)
    )
    doc = {**export_document(spec, trial), **chosen.record()}
    out = Path(args.out) if args.out else best_path(spec.study_name, settings.studies_dir)
    path = write_export(doc, out)
    print(f"trial {trial.number} (value {trial.value:.4f}) exported to {path}")
    if chosen.note:
        print(f"note: {chosen.note}")
    print(f"rule: {chosen.rule}")
    if chosen.verification:
        v = chosen.verification
        iv = v["interval"]
        print(
            f"verified: mean {v['mean']:.4f} over {len(v['seeds'])} fresh seeds"
            + (f", {v['confidence']:.0%} interval [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "")
            + f"; original rank {v['original_rank']}, verified rank {v['verified_rank']}"
        )
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.verify import (
        base_name,
        companion_spec,
        conclude,
        positive,
        queue_jobs,
        study_spec,
        worker_options,
    )
    from tuner.commands.worker import Worker
    from tuner.trial.progress import Reporter

    positive(args.top, "--top", "configurations")
    positive(args.seeds, "--seeds", "seeds")
    if base_name(args.study) is not None:
        raise UserError(
            f"expected the name of a study to verify, but got its companion {args.study!r}; "
            f"run `tuner verify {base_name(args.study)}`"
        )
    study, storage = _load_existing(args.study, args.storage, settings)
    spec = study_spec(study)
    queued = queue_jobs(study, storage, args.top, args.seeds, spec)
    print(
        f"verify {args.top} configurations (trials "
        f"{', '.join(str(t.number) for t in queued.configurations)}) x {args.seeds} seeds "
        f"{queued.seeds}: {queued.queued} jobs queued, {queued.already} already there, "
        f"in study {queued.companion!r}",
        flush=True,
    )
    if args.queue_only:
        print(f"run them with `tuner tune {queued.companion}` on any number of workers")
        return 0
    _threads(_thread_count(args, settings))
    cspec = companion_spec(spec)
    worker = Worker.open(
        cspec,
        settings.storage_url_for(args.storage),
        timeout=args.timeout,
        device=_device(args, settings),
        worker_index=args.worker_index,  # not $WORKER_INDEX: by a hash (see --help)
        settings=settings.storage,
        reporter=Reporter(cspec.budget.total_timesteps * cspec.budget.seeds),
        runs_dir=settings.runs_dir,
        **worker_options(),
    )
    report = worker.run()
    print(f"worker done: {len(report.finished)} verify jobs", flush=True)
    print(conclude(worker.study) or "")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.export import best_path, load_export, train_from_export

    _threads(_thread_count(args, settings))
    path = Path(args.file)
    if not path.exists() and not path.suffix:
        path = best_path(args.file, settings.studies_dir)
    doc = load_export(path)
    run, out = train_from_export(
        doc,
        device=_device(args, settings),
        total_timesteps=args.timesteps,
        out=Path(args.out) if args.out else None,
        seed=args.seed,
        runs_dir=settings.runs_dir,
    )
    print(
        f"trained {run.timesteps} timesteps on {run.device} in {run.train_seconds:.1f}s; model saved to {out}"
    )
    if run.progress.evaluations:
        last = run.progress.evaluations[-1]
        _print_results(last.results, last.rating)
    return 0


def _print_results(results, rating=None) -> None:
    """Per opponent: the score with its interval over opening pairs; the rating first."""
    if rating is not None:
        print(
            f"  rating {rating.rating:.0f}  [95% {rating.low:.0f}, {rating.high:.0f}]  (Elo on the reference ladder)"
        )
    for name, r in results.items():
        print(
            f"  vs {name:<12s} score {r.score:.3f}  [95% CI {r.ci_low:.3f}-{r.ci_high:.3f}]  "
            f"W/D/L {r.wins}/{r.draws}/{r.losses}  first {r.score_first:.3f} "
            f"second {r.score_second:.3f}  distinct openings {r.distinct_openings}"
        )


def _even_games(games: int) -> int:
    """Each opening is played from both seats: an even number of games, at least 2."""
    if games < 2 or games % 2:
        raise UserError(
            f"--games: expected an even number of at least 2 (each opening is played from "
            f"both seats), but got {games}"
        )
    return games


def _model_to_evaluate(args: argparse.Namespace, settings: Settings) -> str:
    """MODEL as given, or the model artifact of ``--study``'s ``--trial``, downloaded."""
    if args.model is not None:
        return args.model
    from tuner.storage.artifacts import download_trial_model

    if args.study is None or args.trial is None:
        raise UserError("evaluate: expected a MODEL path, or --study and --trial")
    study, _ = _load_existing(args.study, args.storage, settings)
    return str(download_trial_model(study, args.trial, settings.runs_dir))


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from env.opponents import PolicyOpponent
    from env.policy_files import PolicyFileError, load_policy
    from tuner.strength.evaluate import evaluate_policy, rate_policy

    _threads(_thread_count(args, settings))
    games = _even_games(_eval_games(args))
    opponents = [o.strip() for o in args.opponents.split(",") if o.strip()]
    if not opponents and not args.rating:
        raise UserError(
            f"--opponents: expected a comma-separated list such as random,greedy,minimax:2, "
            f"but got {args.opponents!r}"
        )
    model_path = _model_to_evaluate(args, settings)
    try:
        loaded = load_policy(model_path, device="cpu", trust_pickle=args.trust_pickle)
    except PolicyFileError as err:
        raise UserError(str(err)) from None
    policy = PolicyOpponent(loaded, seeds=args.seeds, name=f"policy:{model_path}")
    plies = _opening_plies(args)
    if args.rating:
        rated = rate_policy(
            policy, games=games, seeds=args.seeds, opening_plies=plies, seed=args.seed
        )
        print(f"{model_path}: rated on the reference ladder from {rated.games} games")
        _print_results(rated.results, rated.rating)
        return 0
    try:
        results = evaluate_policy(
            policy, opponents, games, seeds=args.seeds, opening_plies=plies, seed=args.seed
        )
    except ValueError as err:  # an unknown opponent, too many opening plies
        raise UserError(str(err)) from None
    print(f"{model_path}: {games} games per opponent, each opening from both seats")
    _print_results(results)
    return 0


def cmd_play(args: argparse.Namespace, settings: Settings) -> int:
    from env.opponents import PolicyOpponent
    from tuner.commands.play import play

    if args.seat not in (0, 1):
        raise UserError(f"--seat: expected 0 (move first) or 1 (move second), but got {args.seat}")
    try:
        agent = PolicyOpponent(args.model, seeds=args.seeds, name="AI")
    except ValueError as err:
        raise UserError(f"{args.model}: {err}") from None
    try:
        play(agent, human_seat=args.seat, seeds=args.seeds)
    except (EOFError, KeyboardInterrupt):
        print("\ngame abandoned")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.report import default_report_dir, write_report

    study, _ = _load_existing(args.study, args.storage, settings)
    out = Path(args.out) if args.out else default_report_dir(settings.runs_dir, study.study_name)
    report = write_report(study, out, top_k=args.top)
    drawn = [f.key for f in report.figures if f.png is not None]
    print(f"report written to {report.html} ({len(drawn)} figures: {', '.join(drawn) or 'none'})")
    for f in report.figures:
        if f.missing:
            print(f"  {f.title}: not drawn, {f.missing}")
    return 0


def cmd_ladder(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.strength.ladder import round_robin, write_ladder

    doc = round_robin(_even_games(args.games), seed=args.seed, opening_plies=_opening_plies(args))
    path = write_ladder(doc, Path(args.out)) if args.out else write_ladder(doc)
    for m in doc["members"]:
        print(f"  {m['name']:<10s} {m['rating']:7.1f}  [{m['low']:.1f}, {m['high']:.1f}]")
    print(f"ladder written to {path} ({doc['seconds']:.0f}s of games)")
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.dashboard import serve

    try:
        serve(
            settings.storage_url_for(args.storage),
            host=args.host,
            port=args.port,
            artifact_dir=args.artifact_dir,
            runs_dir=settings.runs_dir,
            settings=settings.storage,
        )
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    return 0


# --- the parser: one function per command ------------------------------------------------


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        default=None,
        help="SQLAlchemy URL (default: $OPTUNA_STORAGE, else the SQLite file runs/optuna.db)",
    )


def _accept_changes_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--accept-changes",
        action="store_true",
        help="go on although the study file differs from the one the study was created "
        "with (the change is recorded in the study's spec_changes)",
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    """Flags of commands that train or play: each wins over its environment variable."""
    p.add_argument(
        "--device",
        default=None,
        help="auto, cpu, cuda or cuda:N (default: $KALAHA_DEVICE, else auto)",
    )
    p.add_argument(
        "--threads",
        type=_bounded(int, 1, 1024),
        default=None,
        help="torch threads for this process (default: $KALAHA_TORCH_THREADS, else 1: one "
        "worker per core)",
    )


def _add_tune(sub: Any) -> None:
    p = sub.add_parser("tune", help="run a worker on a study until its n_trials are done")
    p.add_argument("study", help="study name (studies/NAME.yaml) or path to a study file")
    _storage_arg(p)
    _run_args(p)
    p.add_argument(
        "--n-trials",
        type=_bounded(int, 1),
        default=None,
        help="at most this many trials from this worker",
    )
    p.add_argument(
        "--timeout",
        type=_bounded(float, 0.0),
        default=None,
        help="claim no new trial after this many seconds",
    )
    p.add_argument(
        "--worker-index",
        type=_bounded(int, 0),
        default=None,
        help="seeds the sampler and picks the GPU (default: $WORKER_INDEX, else a random seed)",
    )
    _accept_changes_arg(p)
    p.set_defaults(func=cmd_tune)


def _add_study_commands(sub: Any) -> None:
    """create, status, export: a study in the storage."""
    p = sub.add_parser("create", help="create the study if it is missing")
    p.add_argument("study")
    _storage_arg(p)
    _accept_changes_arg(p)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("status", help="trial counts per state, best trial, running trials")
    p.add_argument("study")
    _storage_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("export", help="write the best trial to studies/best/STUDY.yaml")
    p.add_argument("study")
    _storage_arg(p)
    p.add_argument("--out", default=None, help="where to write (default studies/best/STUDY.yaml)")
    p.set_defaults(func=cmd_export)


def _add_verify(sub: Any) -> None:
    p = sub.add_parser(
        "verify", help="re-train the top K configurations with S fresh seeds (study STUDY:verify)"
    )
    p.add_argument("study")
    _storage_arg(p)
    _run_args(p)
    p.add_argument("--top", type=int, default=3, help="configurations to verify (default 3)")
    p.add_argument("--seeds", type=int, default=3, help="fresh seeds for each (default 3)")
    p.add_argument(
        "--queue-only",
        action="store_true",
        help="only queue the jobs; workers run them with `tuner tune STUDY:verify`",
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="claim no new job after this many seconds"
    )
    p.add_argument(
        "--worker-index",
        type=_bounded(int, 0),
        default=None,
        help="picks the GPU (default: by a hash)",
    )
    p.set_defaults(func=cmd_verify)


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train the configuration of an exported file")
    p.add_argument("file", help="an export (studies/best/STUDY.yaml) or a study name")
    _run_args(p)
    p.add_argument(
        "--timesteps", type=_bounded(int, 1), default=None, help="override the exported budget"
    )
    p.add_argument("--out", default=None, help="model path (default runs/models/STUDY.zip)")
    p.add_argument(
        "--seed", type=int, default=None, help="a fresh seed (default: the exported trial's seed)"
    )
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate", help="scores of a saved model against opponents, or its rating (--rating)"
    )
    p.add_argument("model", nargs="?", default=None, help="an SB3 .zip model file")
    p.add_argument("--study", default=None, help="load the model artifact of this study ...")
    p.add_argument("--trial", type=_bounded(int, 0), default=None, help="... and this trial number")
    _storage_arg(p)
    _run_args(p)
    p.add_argument("--opponents", default="random,greedy,minimax:2")
    p.add_argument(
        "--rating",
        action="store_true",
        help="rate it on the reference ladder (Elo) instead; --games is then the total",
    )
    p.add_argument("--games", type=_bounded(int, 2), default=None, help=GAMES_HELP)
    p.add_argument("--seeds", type=_bounded(int, 1, 12), default=4)
    p.add_argument("--opening-plies", type=_bounded(int, 0), default=None, help=OPENING_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="also load .zip files that kalaha-tuner did not save, with SB3's loader, which "
        "unpickles them: a file from an untrusted source can run code",
    )
    p.set_defaults(func=cmd_evaluate)


def _add_game_commands(sub: Any) -> None:
    """play and ladder: games, no study."""
    p = sub.add_parser("play", help="play a game against a saved agent in the terminal")
    p.add_argument("model", help="the agent's .zip file (e.g. studies/best/selfplay.zip)")
    p.add_argument("--seat", type=int, default=0, help="0: you move first (default), 1: second")
    p.add_argument("--seeds", type=int, default=4, help="seeds per pit (default 4)")
    p.set_defaults(func=cmd_play)

    p = sub.add_parser(
        "ladder", help="rate the reference ladder by a round robin; write env/ladder.yaml"
    )
    p.add_argument("--games", type=int, default=160, help="games per pairing (even)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--opening-plies", type=int, default=None, help=OPENING_HELP)
    p.add_argument("--out", default=None, help="where to write (default env/ladder.yaml)")
    p.set_defaults(func=cmd_ladder)


def _add_result_commands(sub: Any) -> None:
    """report and dashboard: a study's results."""
    p = sub.add_parser("report", help="HTML report (and PNGs) of a study's results")
    p.add_argument("study")
    _storage_arg(p)
    p.add_argument("--out", default=None, help="folder to write to (default runs/reports/STUDY)")
    p.add_argument(
        "--top", type=_bounded(int, 1), default=10, help="rows in the table of top trials"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help="optuna-dashboard over the storage, with artifacts")
    _storage_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=_bounded(int, 0, 65535),
        default=8080,
        help="port (default 8080; 0 picks a free one)",
    )
    p.add_argument(
        "--artifact-dir", default=None, help="artifact store folder (default runs/artifacts)"
    )
    p.set_defaults(func=cmd_dashboard)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuner", description="Tune MaskablePPO agents for Kalah with Optuna.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_tune(sub)
    _add_study_commands(sub)
    _add_verify(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_game_commands(sub)
    _add_result_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, read the environment once, run the command; a user's mistake is one line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        # Every variable is checked here, also those this command does not use: one
        # clear line now rather than a surprise from the next command.
        settings = Settings.from_env()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _quiet_known_warnings()
    command: Command = args.func
    try:
        return command(args, settings)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        from tuner.storage.rdb import storage_error_line
        from tuner.storage.retry import is_permanent

        if not is_permanent(err):
            raise  # a bug in the tuner: keep its traceback
        # A database that cannot be opened or written, met after the start (read-only
        # file, dropped table): retrying cannot help, so one line instead of a traceback.
        url = settings.storage_url_for(getattr(args, "storage", None))
        print(f"error: {storage_error_line(url, err)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
