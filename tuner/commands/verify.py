"""Verify the top trials: re-train the K best configurations with S fresh seeds each.

Why: a study ranks its trials by one training run each, and one RL run is a noisy
draw. The best trial is therefore partly the luckiest one (the winner's curse),
and exporting it as "the best configuration" promises more than was measured.

How: ``tuner verify STUDY --top K --seeds S`` queues K x S jobs as WAITING trials of
the companion study ``STUDY:verify`` in the same storage. Each job carries the
original trial's params (so the one conversion, ``space.to_config``, gives exactly
the config the trial trained) and, in its system attrs (which a retry copies), the
original trial's number and the job's seed. Any number of ``tuner tune
STUDY:verify`` workers run them with the study's own loop: the claim under the
lock, heartbeats, a killed worker's job failed and re-queued with the same seed.
They run queued jobs only and never sample new ones. A (configuration, seed) pair
already in the companion study is never queued again, so ``tuner verify`` run
twice, or from two machines at once, adds nothing twice; more seeds later add
only the new ones.

The score of a job is the trial's objective value, whatever the study's objective
is (``objective.objective`` computes it); the same seed index gives the same seed
to every configuration, so their comparison is paired.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.base.errors import UserError
from tuner.base.settings import StorageSettings
from tuner.config.spec import PrunerSpec, SamplerSpec, StudySpec
from tuner.storage.optuna_compat import storage_of, trial_id
from tuner.storage.record import StudyAttr, TrialAttr, TrialSystemAttr
from tuner.trial.objective import TrialFailed, objective

SUFFIX = ":verify"
# Seed i of a verify job is spec.seed + SEED_STRIDE * (i + 1): never the seed of a study
# trial (spec.seed + number, number < SEED_STRIDE), and below 2**32 (numpy's limit)
# for any sensible number of seeds.
SEED_STRIDE = 100_000
CONFIDENCE = 0.95


def companion_name(study_name: str) -> str:
    """``net_arch`` -> ``net_arch:verify`` (a study file's name cannot contain ':')."""
    return study_name + SUFFIX


def base_name(name: str) -> str | None:
    """``net_arch:verify`` -> ``net_arch``; ``None`` for a name that is not a companion."""
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) and len(name) > len(SUFFIX) else None


def verify_seed(spec: StudySpec, index: int) -> int:
    return spec.seed + SEED_STRIDE * (index + 1)


def config_key(trial: FrozenTrial) -> str:
    """Trials with equal params train the same configuration: one key for them."""
    return json.dumps(trial.params, sort_keys=True, default=str)


def positive(value: int, flag: str, what: str) -> int:
    if value < 1:
        raise UserError(f"{flag}: expected a positive number of {what}, but got {value}")
    return value


def study_spec(study: optuna.Study) -> StudySpec:
    """The spec a study's trials ran with: the one recorded on it, else its study file."""
    from tuner.config.spec import load_spec, parse_spec, upgrade_stored_spec

    data = upgrade_stored_spec(study.user_attrs.get(StudyAttr.SPEC))
    if data:
        return parse_spec(data, f"study {study.study_name!r}")
    return load_spec(study.study_name)


def companion_spec(spec: StudySpec) -> StudySpec:
    """The base spec, renamed, with nothing to sample and nothing to prune.

    Every job trains the full budget (a pruned job would say nothing about its
    seed), and every param is fixed by the queue, so the sampler never draws.
    """
    return spec.model_copy(
        update={
            "study_name": companion_name(spec.study_name),
            "sampler": SamplerSpec(type="random"),
            "pruner": PrunerSpec(type="none"),
        }
    )


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best first (ties: the earlier trial), as the report ranks them."""
    from tuner.commands.status import top_trials

    return top_trials(study, len(study.get_trials(deepcopy=False)))


def top_configurations(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The best trial of each of the ``k`` best distinct configurations."""
    seen: set[str] = set()
    top: list[FrozenTrial] = []
    for t in ranked(study):
        key = config_key(t)
        if key not in seen:
            seen.add(key)
            top.append(t)
    if len(top) < k:
        raise UserError(
            f"--top {k}: study {study.study_name!r} has {len(top)} completed "
            f"configuration(s), but {k} were asked for; lower --top or run more trials "
            f"(`tuner tune {study.study_name}`)"
        )
    return top[:k]


def load_companion(study: optuna.Study) -> optuna.Study | None:
    """The companion study of verify jobs in the same storage, if there is one."""
    from tuner.storage.rdb import study_names

    name = companion_name(study.study_name)
    if name not in study_names(storage_of(study)):
        return None
    return optuna.load_study(study_name=name, storage=storage_of(study))


@dataclass
class QueueResult:
    companion: str
    queued: int
    already: int
    configurations: list[FrozenTrial]
    seeds: list[int]


def queue_jobs(
    study: optuna.Study, storage: Any, k: int, n_seeds: int, spec: StudySpec | None = None
) -> QueueResult:
    """Queue a job per (top-k configuration, seed) that is not in the companion study yet.

    Under the companion's claim lock: two ``tuner verify`` at once queue each job once.
    """
    from tuner.config.study import create_study
    from tuner.trial.lifecycle import claim_lock

    spec = spec or study_spec(study)
    top = top_configurations(study, k)
    cspec = companion_spec(spec)
    seeds = [verify_seed(spec, i) for i in range(n_seeds)]
    companion = create_study(cspec, storage)
    queued = already = 0
    with claim_lock(storage, cspec.study_name):
        existing = {_job_key(t) for t in companion.get_trials(deepcopy=False)}
        for original in top:
            key = config_key(original)
            for index, seed in enumerate(seeds):
                if (key, seed) in existing:
                    already += 1
                    continue
                companion.add_trial(
                    optuna.create_trial(
                        state=TrialState.WAITING,
                        params=original.params,
                        distributions=original.distributions,
                        user_attrs={
                            TrialAttr.VERIFY_OF: original.number,
                            TrialAttr.VERIFY_SEED: seed,
                            TrialAttr.ORIGINAL_VALUE: original.value,
                        },
                        system_attrs={
                            TrialSystemAttr.VERIFY_KEY: key,
                            TrialSystemAttr.VERIFY_OF: original.number,
                            TrialSystemAttr.VERIFY_SEED: seed,
                            TrialSystemAttr.VERIFY_SEED_INDEX: index,
                        },
                    )
                )
                existing.add((key, seed))
                queued += 1
        jobs = {_job_key(t) for t in companion.get_trials(deepcopy=False)}
        companion.set_user_attr(StudyAttr.N_TRIALS, len(jobs))
        companion.set_user_attr(StudyAttr.VERIFIES, study.study_name)
    return QueueResult(cspec.study_name, queued, already, top, seeds)


def _job_key(job: optuna.trial.FrozenTrial) -> tuple[Any, Any]:
    """A verify job's identity: which configuration, with which fresh seed."""
    attrs = job.system_attrs
    return attrs.get(TrialSystemAttr.VERIFY_KEY), attrs.get(TrialSystemAttr.VERIFY_SEED)


def verify_objective(trial: optuna.Trial, spec: StudySpec, **kwargs: Any) -> float:
    """One verify job: the study's own objective, with the seed the job was queued with."""
    attrs = trial.storage.get_trial_system_attrs(trial_id(trial))
    if TrialSystemAttr.VERIFY_SEED not in attrs:
        raise TrialFailed("not a verify job (no verify_seed): queue jobs with `tuner verify`")
    # User attrs are not copied to a retry: set them again from the system attrs.
    seed = attrs[TrialSystemAttr.VERIFY_SEED]
    trial.set_user_attr(TrialAttr.VERIFY_OF, attrs[TrialSystemAttr.VERIFY_OF])
    trial.set_user_attr(TrialAttr.VERIFY_SEED, seed)
    return objective(trial, spec, seed=int(seed), **kwargs)


def worker_setup(
    name: str, url: str, settings: StorageSettings | None = None
) -> tuple[StudySpec, dict[str, Any]]:
    """``tuner tune STUDY:verify``: the companion spec and the Worker options it needs.

    ``url`` is the resolved storage URL (``Settings.storage_url_for``).
    """
    from tuner.storage.rdb import describe, make_storage, require_existing, study_names

    base = base_name(name)
    assert base is not None
    require_existing(url)
    storage = make_storage(url, settings)
    names = study_names(storage)
    if base not in names:
        raise UserError(
            f"no study named {base!r} in {describe(url)} to verify; "
            f"expected one of {[n for n in names if base_name(n) is None]}"
        )
    if name not in names:
        raise UserError(
            f"no verify jobs for study {base!r} in {describe(url)}; "
            f"queue them first with `tuner verify {base} --top K --seeds S`"
        )
    spec = study_spec(optuna.load_study(study_name=base, storage=storage))
    return companion_spec(spec), worker_options()


def worker_options() -> dict[str, Any]:
    """What makes a :class:`~tuner.commands.worker.Worker` a verify worker: queued jobs, their seeds."""
    return {"queue_only": True, "objective_fn": verify_objective}


# --- the results ---------------------------------------------------------------------


@dataclass
class VerifiedConfig:
    """One configuration's original single-seed value and its values on fresh seeds."""

    original: FrozenTrial
    original_rank: int
    seeds: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    failed: int = 0
    pending: int = 0
    verified_rank: int | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / self.n if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over the seeds (ddof 1); ``None`` below 2 seeds."""
        if self.n < 2:
            return None
        m = self.mean or 0.0
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def interval(self) -> tuple[float, float] | None:
        """Student-t interval of the mean at ``CONFIDENCE``; ``None`` below 2 seeds."""
        if self.std is None or self.mean is None:
            return None
        from scipy.stats import t as student_t

        t = float(student_t.ppf(0.5 + CONFIDENCE / 2, self.n - 1))
        half = t * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half


@dataclass
class Verification:
    """Every verified configuration of a study, ranked both ways."""

    study: str
    companion: str
    maximize: bool
    configs: list[VerifiedConfig]  # by original rank

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.configs)

    @property
    def done(self) -> bool:
        return self.pending == 0

    @property
    def verified(self) -> list[VerifiedConfig]:
        """Configurations with at least one finished seed, best verified mean first."""
        return sorted(
            (c for c in self.configs if c.mean is not None),
            key=lambda c: c.verified_rank or 0,
        )

    @property
    def rank_correlation(self) -> float | None:
        """Spearman's rho between original and verified rank (``None`` below 3 configs)."""
        done = [c for c in self.configs if c.verified_rank is not None]
        if len(done) < 3:
            return None
        from scipy.stats import spearmanr

        rho = spearmanr([c.original_rank for c in done], [c.verified_rank for c in done])[0]
        return None if math.isnan(rho) else float(rho)

    @property
    def winners_curse(self) -> float | None:
        """How far the original best's value fell on fresh seeds (original - verified mean).

        Positive when it fell, for either direction of the study.
        """
        best = self.configs[0] if self.configs else None
        if best is None or best.mean is None or best.original.value is None:
            return None
        drop = best.original.value - best.mean
        return drop if self.maximize else -drop

    @property
    def mean_drop(self) -> float | None:
        """The same fall averaged over every verified configuration."""
        drops = [
            (c.original.value - c.mean) * (1 if self.maximize else -1)
            for c in self.configs
            if c.mean is not None and c.original.value is not None
        ]
        return sum(drops) / len(drops) if drops else None


def summarize(study: optuna.Study, companion: optuna.Study | None = None) -> Verification | None:
    """The verification of ``study`` from its companion; ``None`` when there is none."""
    companion = companion or load_companion(study)
    if companion is None:
        return None
    order = {t.number: rank for rank, t in enumerate(ranked(study), 1)}
    originals = {t.number: t for t in study.get_trials(deepcopy=False)}
    by_key: dict[str, VerifiedConfig] = {}
    finished: dict[str, set[int]] = {}
    jobs = companion.get_trials(deepcopy=False)
    retried = {n for t in jobs for n in t.system_attrs.get(TrialSystemAttr.RETRY_HISTORY, [])}
    for job in jobs:
        (key, seed), number = _job_key(job), job.system_attrs.get(TrialSystemAttr.VERIFY_OF)
        if key is None or number not in originals or number not in order:
            continue
        config = by_key.setdefault(key, VerifiedConfig(originals[number], order[number]))
        done = finished.setdefault(key, set())
        if job.state == TrialState.COMPLETE and job.value is not None:
            if seed not in done:  # one value per seed, whatever happened
                done.add(seed)
                config.seeds.append(int(seed))
                config.values.append(float(job.value))
        elif job.state in (TrialState.WAITING, TrialState.RUNNING):
            config.pending += 1
        elif job.state == TrialState.PRUNED or (
            job.state == TrialState.FAIL and job.number not in retried
        ):
            config.failed += 1  # a failed job that was retried is counted by its retry
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    configs = sorted(by_key.values(), key=lambda c: c.original_rank)
    for rank, c in enumerate(
        sorted(
            (c for c in configs if c.mean is not None),
            key=lambda c: (-(c.mean or 0.0) if maximize else (c.mean or 0.0), c.original_rank),
        ),
        1,
    ):
        c.verified_rank = rank
    return Verification(study.study_name, companion.study_name, maximize, configs)


def format_table(v: Verification) -> str:
    """The verification as text: one line per configuration, then the headline numbers."""
    lines = [
        f"verification of {v.study!r} ({v.companion}): "
        f"{len(v.configs)} configurations, {v.pending} jobs pending",
        f"  {'trial':>5s} {'orig rank':>9s} {'original':>9s} {'seeds':>5s} {'mean':>8s} "
        f"{'std':>7s} {'95% interval':>17s} {'verified rank':>13s}",
    ]
    for c in v.configs:
        iv = c.interval
        lines.append(
            f"  {c.original.number:5d} {c.original_rank:9d} {_num(c.original.value):>9s} "
            f"{c.n:5d} {_num(c.mean):>8s} {_num(c.std):>7s} "
            f"{(f'[{iv[0]:.4f}, {iv[1]:.4f}]' if iv else '-'):>17s} "
            f"{(str(c.verified_rank) if c.verified_rank else '-'):>13s}"
            + (f"  ({c.failed} failed)" if c.failed else "")
            + (f"  ({c.pending} pending)" if c.pending else "")
        )
    rho = v.rank_correlation
    lines.append(
        f"rank correlation (Spearman) original vs verified: {_num(rho)}; "
        f"winner's curse (the original best's fall): {_num(v.winners_curse)}; "
        f"mean fall over the configurations: {_num(v.mean_drop)}"
    )
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


# --- the export's choice -------------------------------------------------------------


@dataclass
class Selection:
    """Which trial to export, by which rule, and what the verification found."""

    trial: FrozenTrial
    rule: str
    verification: dict[str, Any] | None = None
    note: str | None = None  # why a verification was not used

    def record(self) -> dict[str, Any]:
        return {"selection": self.rule, "verification": self.verification}


SINGLE_SEED = (
    "single seed: the completed trial with the best objective value, from one training "
    "run (one seed); `tuner verify {study} --top K --seeds S` re-trains the top K with "
    "fresh seeds"
)
VERIFIED = (
    "verified: the configuration with the best mean objective value over its fresh "
    "seeds in {companion} (the original single-seed run left out: it was picked for "
    "being high), among {k} verified configurations"
)


def select_for_export(study: optuna.Study) -> Selection:
    """The verified best when the verification of ``study`` is finished, else the best trial."""
    from tuner.commands.export import best_trial

    single = SINGLE_SEED.format(study=study.study_name)
    v = summarize(study)
    if v is None:
        return Selection(best_trial(study), single)
    if not v.done:
        return Selection(
            best_trial(study),
            single,
            note=f"the verification in {v.companion} is not finished ({v.pending} jobs waiting "
            f"or running; `tuner tune {v.companion}` runs them), so it was not used",
        )
    if not v.verified:
        return Selection(
            best_trial(study), single, note=f"no verify job in {v.companion} completed"
        )
    best = v.verified[0]
    iv = best.interval
    record = {
        "study": v.companion,
        "original_trial": best.original.number,
        "original_value": best.original.value,
        "original_rank": best.original_rank,
        "verified_rank": best.verified_rank,
        "seeds": best.seeds,
        "values": best.values,
        "failed_seeds": best.failed,
        "mean": best.mean,
        "std": best.std,
        "confidence": CONFIDENCE,
        "interval": list(iv) if iv else None,
        "configurations": len(v.verified),
        "rank_correlation": v.rank_correlation,
        "winners_curse": v.winners_curse,
    }
    rule = VERIFIED.format(companion=v.companion, k=len(v.verified))
    return Selection(best.original, rule, record)


def save_dashboard_note(companion: optuna.Study, v: Verification) -> None:
    """The verification table as the companion study's note in optuna-dashboard."""
    from optuna_dashboard import save_note

    body = (
        f"# Verification of `{v.study}`\n\n"
        "Each job re-trains one of the top configurations of the study with a fresh "
        "seed (`verify_of`: the original trial, `verify_seed`: the seed).\n\n"
        f"```\n{format_table(v)}\n```\n"
    )
    save_note(companion, body)


def conclude(companion: optuna.Study) -> str | None:
    """After a verify worker: the table, also saved as the companion's dashboard note.

    ``None`` when the base study is gone (nothing to compare with).
    """
    from tuner.storage.rdb import study_names

    base = base_name(companion.study_name)
    if base is None or base not in study_names(storage_of(companion)):
        return None
    v = summarize(optuna.load_study(study_name=base, storage=storage_of(companion)), companion)
    if v is None:
        return None
    save_dashboard_note(companion, v)
    return format_table(v)
