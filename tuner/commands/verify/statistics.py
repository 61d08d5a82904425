"""A verification's numbers: each configuration over its fresh seeds, the rankings compared.

Pure: built from values already read (:mod:`tuner.commands.verify.summary` reads
them from the companion study), so the arithmetic is tested on numbers alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial

CONFIDENCE = 0.95


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


def rank_verified(configs: list[VerifiedConfig], maximize: bool) -> None:
    """Set ``verified_rank`` of every configuration with a mean: best mean first.

    Ties go to the better original rank.
    """
    done = [c for c in configs if c.mean is not None]
    done.sort(key=lambda c: (-(c.mean or 0.0) if maximize else (c.mean or 0.0), c.original_rank))
    for rank, c in enumerate(done, 1):
        c.verified_rank = rank


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
