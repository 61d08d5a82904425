"""The companion's jobs -> the :class:`Verification` of a study, and its table as text.

One value per (configuration, seed), whatever happened: a job retried after a
killed worker counts once, by its retry.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from tuner.commands.verify.companion import job_key, load_companion, ranked
from tuner.commands.verify.statistics import Verification, VerifiedConfig, rank_verified
from tuner.storage.record import TrialSystemAttr


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
        (key, seed), number = job_key(job), job.system_attrs.get(TrialSystemAttr.VERIFY_OF)
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
    rank_verified(configs, maximize)
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
