"""The command line, thin: parse, call the module that does the work, print.

A user's mistake (a bad study file, a bad environment variable, an unreachable
database, an unknown study) is one line on stderr and exit code 2; no traceback.
:func:`main` reads the environment once (:class:`~tuner.base.settings.Settings`) and
hands each command its settings; a flag wins over the variable it overrides.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tuner.base.errors import EXIT_BAD_INPUT, UserError
from tuner.base.settings import Settings

# The game's defaults (env.options), written out so that --help starts without env; a
# test checks them against env.options.
DEFAULT_EVAL_GAMES = 200
DEFAULT_OPENING_PLIES = 4
DEFAULT_STONES = 4
MAX_OPENING_PLIES = 20
MIN_STONES, MAX_STONES = 1, 12
# Bounds of what comes in on the command line, one per kind of number (see _bounded):
# enough for any real use, small enough that no value queues, allocates or runs forever.
MAX_GAMES = 100_000  # games per opponent (evaluate) or per pairing (ladder)
MAX_SEED = 2**32 - 1  # numpy's and SB3's seeds: a seed past it cannot train
MAX_TOP, MAX_FRESH_SEEDS = 50, 20  # verify: at most 1000 training runs queued
MAX_JOBS = 256  # solver processes
MIN_LADDER_GAMES = 100  # games per pairing of the committed ladder, which rates every trial
OPENING_HELP = (
    f"random plies of each opening, 0..{MAX_OPENING_PLIES} (default {DEFAULT_OPENING_PLIES})"
)
SEARCH_HELP = (
    "'ab:D' (alpha-beta on the value head, D plies, an extra turn counts as one), "
    "'abx:D' (extra turns are free) or 'mcts:S' (PUCT, S simulations)"
)
GAMES_HELP = (
    f"games per opponent, even: each opening from both seats (default {DEFAULT_EVAL_GAMES}, "
    "as a study's evaluation.games)"
)
STONES_HELP = f"stones per pit (default {DEFAULT_STONES})"
STUDY_HELP = "study name (studies/NAME.yaml) or path to a study file"
Command = Callable[[argparse.Namespace, Settings], int]


def _opening_plies(args: argparse.Namespace) -> int:
    """The game's one default unless given (imported late: the CLI starts without env)."""
    from env.options import DEFAULT_OPENING_PLIES

    return DEFAULT_OPENING_PLIES if args.opening_plies is None else args.opening_plies


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error style (one line, exit code 2), and epilogs of
    examples kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _stones(args: argparse.Namespace) -> int:
    """``--stones``, else the game's one default (imported late, as above)."""
    from env.options import DEFAULT_STONES

    return DEFAULT_STONES if args.stones is None else args.stones


def _eval_games(args: argparse.Namespace) -> int:
    """The one default of evaluation games unless given (imported late, as above)."""
    from env.options import DEFAULT_EVAL_GAMES

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
    from tuner.commands.tune import study_to_run
    from tuner.commands.worker import Worker
    from tuner.storage.rdb import describe
    from tuner.trial.progress import ProgressDisplay

    url = settings.storage_url_for(args.storage)
    spec, role = study_to_run(args.study, url, settings)
    _threads(_thread_count(args, settings))
    worker = Worker.open(
        spec,
        url,
        max_trials=args.n_trials,
        timeout=args.timeout,
        device=_device(args, settings),
        worker_index=args.worker_index if args.worker_index is not None else settings.worker_index,
        settings=settings.storage,
        # A population-based study's units train one interval each.
        progress=ProgressDisplay(
            spec.pbt.interval if spec.pbt else spec.budget.total_timesteps * spec.budget.runs
        ),
        runs_dir=settings.runs_dir,
        accept_changes=args.accept_changes,
        role=role,
    )
    print(
        f"worker on study {spec.study_name!r} ({describe(url)}), "
        f"device {worker.device}, budget {role.budget(spec)}",
        flush=True,
    )
    summary = worker.run()
    if summary.config_error:
        raise UserError(
            f"{summary.config_error}. The worker stopped: {summary.config_errors} of its trials "
            "failed on a configuration error (such trials do not count against n_trials); fix "
            "the study file and run again"
        )
    counts = ", ".join(f"{s}={summary.count(s)}" for s in ("COMPLETE", "PRUNED", "FAIL"))
    stop = f" (stopped by {summary.stopped_by})" if summary.stopped_by else ""
    print(f"worker done: {len(summary.finished)} trials, {counts}{stop}", flush=True)
    if summary.budget_spent and not role.queue_only:
        print(_budget_spent_line(spec, worker.study, args.study), flush=True)
    conclusion = worker.conclude()  # a verify worker: where the verification stands now
    if conclusion is not None:
        print(conclusion, flush=True)
    return 0


def _budget_spent_line(spec: Any, study: Any, given: str) -> str:
    """The study has no trial left to run: say so, and how to run more."""
    from tuner.commands.status import state_counts

    counts = ", ".join(
        f"{n} {s}" for s, n in state_counts(study.get_trials(deepcopy=False)).items()
    )
    where = given if given.endswith((".yaml", ".yml")) else f"studies/{spec.study_name}.yaml"
    return (
        f"study {spec.study_name!r} has used up its budget of {spec.n_trials} trials "
        f"({counts}): raise n_trials in {where} and run `tuner tune {given}` again to "
        "run more (the change is recorded in the study)"
    )


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.config.loading import load_spec
    from tuner.config.study import create_study
    from tuner.storage.rdb import make_storage

    spec = load_spec(args.study, settings.studies_dir)
    storage = make_storage(settings.storage_url_for(args.storage), settings.storage)
    create_study(spec, storage, accept_changes=args.accept_changes)
    print(f"study {spec.study_name!r} is ready ({spec.n_trials} trials)")
    return 0


def _load_existing(study_name_or_file: str, storage_url: str | None, settings: Settings):
    import optuna

    from tuner.config.loading import resolve_study_path, study_name_in
    from tuner.storage.rdb import describe, make_storage, require_existing, study_names

    url = settings.storage_url_for(storage_url)
    require_existing(url)
    storage = make_storage(url, settings.storage)
    path = resolve_study_path(study_name_or_file, settings.studies_dir)
    name = study_name_in(path) if path.exists() else study_name_or_file
    stored = study_names(storage)
    if name not in stored:
        raise UserError(_missing_study(name, stored, describe(url), path.exists(), settings))
    return optuna.load_study(study_name=name, storage=storage), storage


def _missing_study(
    name: str, stored: list[str], where: str, has_file: bool, settings: Settings
) -> str:
    """Why ``name`` names no study here, and the likeliest fix: a near miss among the
    stored studies and the study files, running its file, or the names there are."""
    from tuner.base.errors import did_you_mean

    folder = settings.studies_dir
    files = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    line = f"no study named {name!r} in {where};"
    hint = did_you_mean(name, stored) or did_you_mean(name, files)
    if hint:
        return f"{line}{hint} (stored studies: {stored})"
    if has_file or name in files:
        return f"{line} expected one of {stored}. Run `tuner tune {name}` first"
    return (
        f"{line} expected one of {stored}, and there is no study file {name!r} in {folder}/ either"
    )


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.status import format_status
    from tuner.storage.rdb import worker_connections

    study, storage = _load_existing(args.study, args.storage, settings)
    print(format_status(study, storage, worker_connections(storage.url)))
    return 0


def cmd_save(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.base.runs import artifacts_dir
    from tuner.storage.transfer import save_study

    study, storage = _load_existing(args.study, args.storage, settings)
    out = Path(args.to)
    copied = save_study(study.study_name, storage, storage.url, out, force=args.force)
    print(f"saved {', '.join(map(repr, copied.studies))} ({copied.trials} trials) to {out}")
    for note in copied.notes(artifacts_dir(settings.runs_dir)):
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.storage.rdb import describe, make_storage
    from tuner.storage.transfer import load_saved

    url = settings.storage_url_for(args.storage)
    storage = make_storage(url, settings.storage)
    copied = load_saved(Path(args.file), args.study, storage, url, as_name=args.as_name)
    print(
        f"loaded {', '.join(map(repr, copied.studies))} ({copied.trials} trials) into "
        f"{describe(url)}; go on with: tuner tune {copied.studies[0]}"
    )
    for note in copied.notes():
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_trials(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.trials import format_table, write_csv

    study, _ = _load_existing(args.study, args.storage, settings)
    if not args.csv:
        print(format_table(study))
        return 0
    if args.out is None:
        write_csv(study, sys.stdout)
        return 0
    from tuner.base.files import check_writable, write_atomic

    out = check_writable(Path(args.out))
    buffer = io.StringIO()
    n = write_csv(study, buffer)
    write_atomic(out, buffer.getvalue())  # never a half-written file
    print(f"{n} trials of study {study.study_name!r} written to {out}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.export import best_path, export_document, replacing, write_export
    from tuner.commands.verify.export_choice import select_for_export
    from tuner.config.loading import load_spec, stored_spec

    study, _ = _load_existing(args.study, args.storage, settings)
    chosen = select_for_export(study)
    trial = chosen.trial
    spec = stored_spec(study) or load_spec(args.study, settings.studies_dir)
    doc = {**export_document(spec, trial), **chosen.record()}
    out = Path(args.out) if args.out else best_path(spec.study_name, settings.studies_dir)
    replaced = replacing(doc, out, args.force)
    path = write_export(doc, out)
    print(f"trial {trial.number} (value {trial.value:.4f}) exported to {path}")
    if replaced:
        print(f"replaced: {replaced}")
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
    from tuner.commands.verify.companion import base_name, companion_spec, study_spec
    from tuner.commands.verify.jobs import VERIFYING
    from tuner.commands.verify.queue import queue_jobs
    from tuner.commands.worker import Worker
    from tuner.trial.progress import ProgressDisplay

    if base_name(args.study) is not None:
        raise UserError(
            f"expected the name of a study to verify, but got its companion {args.study!r}; "
            f"run `tuner verify {base_name(args.study)}`"
        )
    study, storage = _load_existing(args.study, args.storage, settings)
    spec = study_spec(study)
    queued = queue_jobs(study, storage, args.top, args.fresh_seeds, spec)
    print(
        f"verify {args.top} configurations (trials "
        f"{', '.join(str(t.number) for t in queued.configurations)}) x {args.fresh_seeds} "
        "fresh seeds "
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
        progress=ProgressDisplay(cspec.budget.total_timesteps * cspec.budget.runs),
        runs_dir=settings.runs_dir,
        role=VERIFYING,
    )
    summary = worker.run()
    print(f"worker done: {len(summary.finished)} verify jobs", flush=True)
    print(worker.conclude() or "")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from tuner.commands.export import best_path, checked_export, load_export, retrain

    _threads(_thread_count(args, settings))
    path = Path(args.file)
    if not path.exists() and not path.suffix:
        path = best_path(args.file, settings.studies_dir)
    export = checked_export(load_export(path))
    total = args.timesteps or export.budget.total_timesteps
    print(
        f"training the export of study {export.study!r} (trial {export.trial}): {total} "
        f"timesteps, {export.budget.n_evaluations} evaluations"
        + (f", a checkpoint every {args.save_every}" if args.save_every else ""),
        flush=True,
    )
    if export.pbt is not None:  # a population's winner: its schedule is replayed
        steps = ", ".join(f"{e.timestep:,}" for e in export.pbt.schedule)
        print(f"replaying the schedule of member {export.pbt.member}: settings from {steps}")
    done = retrain(
        export,
        save_every=args.save_every,
        device=_device(args, settings),
        total_timesteps=args.timesteps,
        out=Path(args.out) if args.out else None,
        seed=args.seed,
        runs_dir=settings.runs_dir,
    )
    run = done.run
    if done.stopped_by:
        print(
            f"{done.stopped_by} received: stopped at step {run.timesteps} of {total}; "
            f"model saved to {done.out}"
        )
        return 128 + signal.Signals[done.stopped_by].value
    print(
        f"trained {run.timesteps} timesteps on {run.device} in {run.train_seconds:.1f}s; "
        f"model saved to {done.out}"
    )
    if run.state.evaluations:
        last = run.state.evaluations[-1]
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
    games = _eval_games(args)
    opponents = [o.strip() for o in args.opponents.split(",") if o.strip()]
    if not opponents and not args.rating:
        raise UserError(
            f"--opponents: expected a comma-separated list such as random,greedy,minimax:2, "
            f"but got {args.opponents!r}"
        )
    if args.search is not None:
        _searching(None, args.search, _stones(args))  # a bad spec fails before any download
    if args.rating:
        _ladder_game(_stones(args))  # before any download or load
    model_path = _model_to_evaluate(args, settings)
    try:
        loaded = load_policy(model_path, device="cpu", trust_pickle=args.trust_pickle)
    except PolicyFileError as err:
        raise UserError(str(err)) from None
    policy = PolicyOpponent(loaded, stones=_stones(args), name=f"policy:{model_path}")
    if args.perfect:
        if _stones(args) != 4:
            raise UserError(
                f"--perfect: the solved set is Kalah(6,4), so expected --stones 4, but got {_stones(args)}"
            )
        if args.search is not None:
            raise UserError(
                f"--perfect scores the network's own moves: expected no --search, but got {args.search!r}"
            )
        _print_perfect(model_path, policy)
        return 0
    if args.search is not None:
        policy = _searching(loaded, args.search, _stones(args))
    plies = _opening_plies(args)
    if args.rating:
        rated = rate_policy(
            policy, games=games, stones=_stones(args), opening_plies=plies, seed=args.seed
        )
        print(
            f"{model_path}{_with(args.search)}: rated on the reference ladder from {rated.games} games"
        )
        _print_results(rated.results, rated.rating)
        return 0
    try:
        results = evaluate_policy(
            policy, opponents, games, stones=_stones(args), opening_plies=plies, seed=args.seed
        )
    except ValueError as err:  # an unknown opponent, too many opening plies
        raise UserError(str(err)) from None
    print(
        f"{model_path}{_with(args.search)}: {games} games per opponent, each opening from both seats"
    )
    _print_results(results)
    return 0


def _ladder_game(stones: int) -> None:
    """A rating is only meaningful on the game the reference ladder was measured on."""
    from tuner.strength.ladder import load_ladder

    ladder = load_ladder()
    if stones != ladder.stones:
        raise UserError(
            f"--rating: the reference ladder was measured with {ladder.stones} stones per "
            f"pit, so expected --stones {ladder.stones}, but got {stones}; drop --rating for "
            "scores against opponents on this game"
        )


def cmd_solve(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.commands.solve import read_positions, solve_lines

    if args.input == "-":
        rows = read_positions(sys.stdin, "stdin")
    else:
        try:
            with open(args.input, encoding="utf-8") as handle:
                rows = read_positions(handle, args.input)
        except OSError as err:
            raise UserError(
                f"expected a readable JSON-lines file, but {args.input}: {err.strerror}"
            ) from None
    solve_lines(rows, sys.stdout, jobs=args.jobs, empty_capture=args.empty_capture)
    return 0


def _print_perfect(model_path: str, policy: Any) -> None:
    """The --perfect table: the policy's choices on the committed solved set."""
    from tuner.strength.perfect import format_scores, load_solved_set, score_opponent

    solved = load_solved_set()
    scores = score_opponent(policy, solved)
    print(f"{model_path}: against perfect play on {solved.size} solved positions")
    for line in format_scores(scores):
        print(f"  {line}")


def _searching(network: Any, spec: str, seeds: int) -> Any:
    """The network under the search ``spec`` (--search), or one line and exit 2.

    With ``network`` None it only checks the spec.
    """
    from env.search import parse_search
    from tuner.strength.evaluate import as_agent

    try:
        return parse_search(spec) if network is None else as_agent(network, seeds, search=spec)
    except ValueError as err:
        raise UserError(f"--search: {err}") from None


def _warm_up(agent: Any, seeds: int) -> None:
    """One search before the game, so that compiling the kernels is not the first move's time."""
    import numpy as np

    from env.rules import initial_board

    agent.act(np.asarray([initial_board(seeds)], dtype=np.int32), np.zeros(1, dtype=np.int64))


def _with(search: str | None) -> str:
    return f" with search {search}" if search else ""


def cmd_play(args: argparse.Namespace, settings: Settings) -> int:
    from env.opponents import PolicyOpponent
    from env.search import DEFAULT_SEARCH
    from tuner.commands.play import play

    if args.seat not in (0, 1):
        raise UserError(f"--seat: expected 0 (move first) or 1 (move second), but got {args.seat}")
    search = None if args.search is None else args.search or DEFAULT_SEARCH
    if search is not None:
        _searching(None, search, _stones(args))
    try:
        agent = PolicyOpponent(args.model, stones=_stones(args), name="AI")
    except ValueError as err:
        raise UserError(f"{args.model}: {err}") from None
    if search is not None:
        _threads(1)  # the move times in README's table are one core's
        agent = _searching(agent.model, search, _stones(args))
        _warm_up(agent, _stones(args))
        print(f"The agent searches with {search} at each move.")
    try:
        play(agent, human_seat=args.seat, stones=_stones(args))
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
    if report.effects is not None:
        print(f"{report.effects.path.name}: {report.effects.summary}")
    for f in report.figures:
        if f.missing:
            print(f"  {f.title}: not drawn, {f.missing}")
    return 0


def cmd_ladder(args: argparse.Namespace, settings: Settings) -> int:
    from tuner.base.files import check_writable
    from tuner.strength.ladder import LADDER_FILE, round_robin, write_ladder

    # Checked before the first game: a round robin takes minutes.
    if args.out is None and not args.force:
        raise UserError(
            f"expected --out PATH (or --force to replace the committed {LADDER_FILE.name}, "
            "against which every trial is rated), but got neither; nothing was played"
        )
    if args.out is None and args.games < MIN_LADDER_GAMES:
        raise UserError(
            f"--games: expected at least {MIN_LADDER_GAMES} games per pairing for the "
            f"committed ladder, but got {args.games}; use --out PATH for a trial run"
        )
    out = check_writable(Path(args.out) if args.out else LADDER_FILE)
    doc = round_robin(args.games, seed=args.seed, opening_plies=_opening_plies(args))
    path = write_ladder(doc, out)
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


def _examples(*lines: str) -> str:
    """An epilog: ``examples:`` and one command per line."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("kalaha-tuner")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


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


class _RenamedFlag(argparse.Action):
    """A flag that was renamed: its old name is one line that names the new one, exit 2."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        self.new, self.meaning = kwargs.pop("new"), kwargs.pop("meaning")
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(f"{self.option_strings[0]} is now {self.new} ({self.meaning})")


def _renamed_flag(p: argparse.ArgumentParser, old: str, new: str, meaning: str) -> None:
    dest = f"renamed_{old.strip('-')}"
    p.add_argument(old, action=_RenamedFlag, dest=dest, new=new, meaning=meaning)


def _even_games(text: str) -> int:
    """An argparse type: games, even (each opening from both seats), 2..MAX_GAMES."""
    games = _bounded(int, 2, MAX_GAMES)(text)
    if games % 2:
        raise argparse.ArgumentTypeError(
            f"expected an even number of games (each opening is played from both seats) "
            f"between 2 and {MAX_GAMES}, but got {text!r}"
        )
    return games


def _game_args(p: argparse.ArgumentParser, games_default: int | None, games_help: str) -> None:
    """``--games``, ``--seed`` and ``--opening-plies`` of the commands that play games."""
    p.add_argument("--games", type=_even_games, default=games_default, help=games_help)
    p.add_argument(
        "--seed",
        type=_bounded(int, 0, MAX_SEED),
        default=0,
        help="seed of the random openings (default 0)",
    )
    p.add_argument(
        "--opening-plies",
        type=_bounded(int, 0, MAX_OPENING_PLIES),
        default=None,
        help=OPENING_HELP,
    )


def _stones_arg(p: argparse.ArgumentParser) -> None:
    """``--stones``: stones per pit, the game's one default unless given."""
    p.add_argument(
        "--stones", type=_bounded(int, MIN_STONES, MAX_STONES), default=None, help=STONES_HELP
    )
    _renamed_flag(p, "--seeds", "--stones", "stones per pit")


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
    p = sub.add_parser(
        "tune",
        help="run a worker on a study until its n_trials are done",
        epilog=_examples(
            "tuner tune smoke                       # one worker, SQLite in runs/optuna.db",
            "tuner tune net_arch --worker-index 1   # a second worker, another sampler seed",
            "tuner tune net_arch --storage postgresql+psycopg2://tuner:PW@db:5432/optuna",
            "tuner tune net_arch:verify             # run the jobs `tuner verify` queued",
        ),
    )
    p.add_argument("study", help=STUDY_HELP)
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
    p = sub.add_parser(
        "create",
        help="create the study if it is missing (an existing one is only loaded)",
        epilog=_examples("tuner create net_arch --storage $OPTUNA_STORAGE"),
    )
    p.add_argument("study", help=STUDY_HELP)
    _storage_arg(p)
    _accept_changes_arg(p)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser(
        "status",
        help="trial counts per state, best trial, running trials",
        epilog=_examples(
            "tuner status net_arch",
            "tuner status net_arch --storage postgresql+psycopg2://tuner:PW@db:5432/optuna",
        ),
    )
    p.add_argument("study", help=STUDY_HELP)
    _storage_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "export",
        help="write the best trial to studies/best/STUDY.yaml",
        epilog=_examples(
            "tuner export net_arch                    # studies/best/net_arch.yaml",
            "tuner export net_arch --out mine.yaml    # anywhere else",
            "tuner export net_arch --force            # replace another trial's export",
        ),
    )
    p.add_argument("study", help=STUDY_HELP)
    _storage_arg(p)
    p.add_argument("--out", default=None, help="where to write (default studies/best/STUDY.yaml)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing export of another trial (without it, export refuses and "
        "writes nothing)",
    )
    p.set_defaults(func=cmd_export)


def _add_save_load(sub: Any) -> None:
    """save, load: a study moved between storages (machines) through a SQLite file."""
    p = sub.add_parser(
        "save",
        help="copy a study (trials, attrs, intermediate values) into a SQLite file",
        epilog=_examples(
            "tuner save selfplay --to docs/results/selfplay/study.sqlite3",
            "tuner save selfplay --to study.sqlite3 --force   # replace an older save",
            "tuner save selfplay --to study.sqlite3 --storage postgresql+psycopg2://tuner:PW@db:5432/optuna",
        ),
    )
    p.add_argument("study", help=STUDY_HELP)
    p.add_argument("--to", required=True, help="the SQLite file to write (it may hold others)")
    _storage_arg(p)
    p.add_argument(
        "--force", action="store_true", help="replace the study if the file already holds it"
    )
    p.set_defaults(func=cmd_save)

    p = sub.add_parser(
        "load",
        help="copy a study saved by `tuner save` into the storage, to go on with it",
        epilog=_examples(
            "tuner load docs/results/selfplay/study.sqlite3              # its one study",
            "tuner load study.sqlite3 selfplay --storage $OPTUNA_STORAGE",
            "tuner load study.sqlite3 selfplay --as selfplay_b       # beside an existing one",
        ),
    )
    p.add_argument("file", help="a SQLite file written by `tuner save`")
    p.add_argument(
        "study", nargs="?", default=None, help="which study (default: the file's only one)"
    )
    _storage_arg(p)
    p.add_argument(
        "--as",
        dest="as_name",
        default=None,
        help="load it under this name (a study of the same name is never replaced)",
    )
    p.set_defaults(func=cmd_load)


def _add_trials(sub: Any) -> None:
    """trials: every trial of a study, as a table or CSV."""
    p = sub.add_parser(
        "trials",
        help="every trial of a study: a table, or CSV (--csv) to load into pandas",
        epilog=_examples(
            "tuner trials net_arch",
            "tuner trials net_arch --csv > trials.csv   # pandas.read_csv('trials.csv')",
            "tuner trials net_arch --csv --out trials.csv",
        ),
    )
    p.add_argument("study", help=STUDY_HELP)
    _storage_arg(p)
    p.add_argument(
        "--csv",
        action="store_true",
        help="CSV with a column per param, the rating and each opponent's score, interval "
        "and games",
    )
    p.add_argument("--out", default=None, help="with --csv: write to this file, not stdout")
    p.set_defaults(func=cmd_trials)


def _add_verify(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="re-train the top K configurations with S fresh seeds (study STUDY:verify)",
        epilog=_examples(
            "tuner verify net_arch --top 5 --fresh-seeds 3",
            "tuner verify net_arch --queue-only   # then workers: tuner tune net_arch:verify",
        ),
    )
    p.add_argument("study", help=STUDY_HELP)
    _storage_arg(p)
    _run_args(p)
    p.add_argument(
        "--top",
        type=_bounded(int, 1, MAX_TOP),
        default=3,
        help=f"configurations to verify, 1..{MAX_TOP} (default 3)",
    )
    p.add_argument(
        "--fresh-seeds",
        type=_bounded(int, 1, MAX_FRESH_SEEDS),
        default=3,
        metavar="S",
        help=f"re-train each S times, each time with a fresh seed, 1..{MAX_FRESH_SEEDS} "
        "(default 3)",
    )
    _renamed_flag(p, "--seeds", "--fresh-seeds S", "the fresh seeds of each configuration")
    p.add_argument(
        "--queue-only",
        action="store_true",
        help="only queue the jobs; workers run them with `tuner tune STUDY:verify`",
    )
    p.add_argument(
        "--timeout",
        type=_bounded(float, 0.0),
        default=None,
        help="claim no new job after this many seconds",
    )
    p.add_argument(
        "--worker-index",
        type=_bounded(int, 0),
        default=None,
        help="picks the GPU (default: by a hash)",
    )
    p.set_defaults(func=cmd_verify)


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train the configuration of an exported file",
        epilog=_examples(
            "tuner train studies/best/net_arch.yaml",
            "tuner train net_arch --save-every 100000 --out agent.zip",
            "tuner train net_arch --seed 7   # a fresh seed: was the trial a lucky draw?",
        ),
    )
    p.add_argument("file", help="an export (studies/best/STUDY.yaml) or a study name")
    _run_args(p)
    p.add_argument(
        "--timesteps", type=_bounded(int, 1), default=None, help="override the exported budget"
    )
    p.add_argument("--out", default=None, help="model path (default runs/models/STUDY.zip)")
    p.add_argument(
        "--seed",
        type=_bounded(int, 0, MAX_SEED),
        default=None,
        help="a fresh seed (default: the exported trial's seed)",
    )
    p.add_argument(
        "--save-every",
        type=_bounded(int, 1),
        default=None,
        metavar="STEPS",
        help="also save a checkpoint every STEPS timesteps, beside the model as "
        "NAME_<steps>_steps.zip (default: none; Ctrl-C or SIGTERM saves the model anyway)",
    )
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="scores of a saved model against opponents, or its rating (--rating)",
        epilog=_examples(
            "tuner evaluate agent.zip --opponents greedy,minimax:4 --games 400",
            "tuner evaluate agent.zip --rating",
            "tuner evaluate agent.zip --perfect",
            "tuner evaluate --study net_arch --trial 4",
        ),
    )
    p.add_argument("model", nargs="?", default=None, help="an SB3 .zip model file")
    p.add_argument("--study", default=None, help="load the model artifact of this study ...")
    p.add_argument("--trial", type=_bounded(int, 0), default=None, help="... and this trial number")
    _storage_arg(p)
    _run_args(p)
    p.add_argument(
        "--opponents",
        default="random,greedy,minimax:2",
        help="comma-separated: random, greedy, minimax:N, policy:PATH.zip "
        "(default random,greedy,minimax:2)",
    )
    p.add_argument(
        "--rating",
        action="store_true",
        help="rate it on the reference ladder (Elo) instead; --games is then the total",
    )
    p.add_argument(
        "--perfect",
        action="store_true",
        help="score its moves against perfect play on the committed solved set instead: "
        "optimal share, regret in seeds, blunders, by phase (no games, under 2 s)",
    )
    _game_args(p, None, GAMES_HELP)
    _stones_arg(p)
    p.add_argument(
        "--search",
        default=None,
        metavar="SPEC",
        help=f"the network searches at each move: {SEARCH_HELP}",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="also load .zip files that kalaha-tuner did not save, with SB3's loader, which "
        "unpickles them: a file from an untrusted source can run code",
    )
    p.set_defaults(func=cmd_evaluate)


def _add_game_commands(sub: Any) -> None:
    """play and ladder: games, no study."""
    p = sub.add_parser(
        "play",
        help="play a game against a saved agent in the terminal",
        epilog=_examples("tuner play studies/best/selfplay.zip --seat 1"),
    )
    p.add_argument("model", help="the agent's .zip file (e.g. studies/best/selfplay.zip)")
    p.add_argument("--seat", type=int, default=0, help="0: you move first (default), 1: second")
    _stones_arg(p)
    p.add_argument(
        "--search",
        nargs="?",
        const="",
        default=None,
        metavar="SPEC",
        help=f"the agent searches at each move: {SEARCH_HELP}; --search alone: "
        "ab:5 (at most 6^5 leaves: well under a second a move)",
    )
    p.set_defaults(func=cmd_play)

    p = sub.add_parser(
        "ladder",
        help="rate the reference ladder by a round robin; write env/ladder.yaml",
        epilog=_examples(
            "tuner ladder --games 160 --out ladder.yaml",
            "tuner ladder --games 160 --force   # replace the committed env/ladder.yaml",
        ),
    )
    _game_args(p, 160, "games per pairing (even; default 160)")
    p.add_argument("--out", default=None, help="where to write (default env/ladder.yaml)")
    p.add_argument(
        "--force",
        action="store_true",
        help=f"without --out: replace the committed env/ladder.yaml, against which every "
        f"trial is rated (at least {MIN_LADDER_GAMES} games per pairing)",
    )
    p.set_defaults(func=cmd_ladder)


def _add_solve(sub: Any) -> None:
    p = sub.add_parser(
        "solve",
        help="exact values of positions (JSON lines in, JSON lines out)",
        epilog=_examples(
            "tuner solve positions.jsonl > solved.jsonl   # or JSON lines on stdin: tuner solve -",
            "tuner solve positions.jsonl --jobs 2 > solved.jsonl",
        ),
    )
    p.add_argument(
        "input",
        nargs="?",
        default="-",
        help="a file of JSON lines with 'board' (14 ints) and 'to_move' (0/1); - or none: stdin",
    )
    p.add_argument(
        "--jobs",
        type=_bounded(int, 1, MAX_JOBS),
        default=1,
        help=f"solver processes, 1..{MAX_JOBS} (default 1)",
    )
    p.add_argument(
        "--empty-capture",
        action="store_true",
        help="the variant where a last seed in an own empty pit is captured even opposite "
        "an empty pit",
    )
    p.set_defaults(func=cmd_solve)


def _add_result_commands(sub: Any) -> None:
    """report and dashboard: a study's results."""
    p = sub.add_parser(
        "report",
        help="HTML report (and PNGs) of a study's results",
        epilog=_examples("tuner report net_arch --top 20"),
    )
    p.add_argument("study", help=STUDY_HELP)
    _storage_arg(p)
    p.add_argument("--out", default=None, help="folder to write to (default runs/reports/STUDY)")
    p.add_argument(
        "--top", type=_bounded(int, 1), default=10, help="rows in the table of top trials"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "dashboard",
        help="optuna-dashboard over the storage, with artifacts",
        epilog=_examples(
            "tuner dashboard                 # http://127.0.0.1:8080/",
            "tuner dashboard --port 0        # a free port, printed",
        ),
    )
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
    parser = _Parser(
        prog="tuner",
        description="Tune MaskablePPO agents for Kalah with Optuna.",
        epilog=_examples(
            "tuner tune smoke                        # a one-minute study, start to end",
            "tuner status smoke",
            "tuner export smoke && tuner train smoke # best trial -> YAML -> a trained agent",
            "tuner play runs/models/smoke.zip",
            "tuner COMMAND --help                    # each command's options and examples",
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_tune(sub)
    _add_study_commands(sub)
    _add_trials(sub)
    _add_save_load(sub)
    _add_verify(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_game_commands(sub)
    _add_solve(sub)
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
