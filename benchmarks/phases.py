"""Where training's time goes: functions timed by phase, in CPU seconds by default.

Why CPU seconds: the benchmarks run on cores shared with other work, where the
wall clock also counts the time other processes hold the core, and that share
changes from one row to the next; the CPU time this process spends does not
(with one torch thread, and on a free core, the two agree). ``make bench``'s
ratios and the trial profile's split are therefore measured in CPU time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

PHASES = ("collect", "update", "evaluation", "storage")
# What a phase's own time is: what runs in it outside the functions timed within it.
PHASE_REST = {
    "collect": "SB3's loop",
    "update": "losses and SB3's loop",
    "evaluation": "the games' loop",
    "storage": "Optuna storage, artifact",
}


class Split:
    """Seconds per (phase, part): each timed call's own time, nested timed calls excluded.

    A call counts under the innermost phase it runs in (an evaluation that a
    callback starts during collection counts as evaluation); ``clock`` is
    ``time.process_time`` (CPU seconds) unless given.
    """

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self.clock = clock
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [label, start, seconds in timed callees]

    def phase(self) -> str:
        for label, _, _ in reversed(self._stack):
            if label in PHASES:
                return label
        return "other"

    def total(self, phase: str) -> float:
        """Seconds spent in ``phase``, all its parts."""
        return sum(s for (ph, _), s in self.seconds.items() if ph == phase)

    @contextmanager
    def timing(self, label: str) -> Iterator[None]:
        self._stack.append([label, self.clock(), 0.0])
        try:
            yield
        finally:
            _, start, inner = self._stack[-1]
            spent = self.clock() - start
            phase = label if label in PHASES else self.phase()
            self._stack.pop()
            part = PHASE_REST.get(label, label)
            self.seconds[(phase, part)] += spent - inner
            if self._stack:
                self._stack[-1][2] += spent

    def wrap(self, owner: Any, name: str, label: str, stack: ExitStack) -> None:
        """Time ``owner.name`` under ``label`` until ``stack`` closes."""
        own = owner.__dict__ if isinstance(owner, type) else {name: getattr(owner, name)}
        if isinstance(own.get(name), staticmethod | classmethod):
            return
        original = getattr(owner, name)
        split = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            with split.timing(label):
                return original(*args, **kwargs)

        setattr(owner, name, timed)
        if name in own:
            stack.callback(setattr, owner, name, own[name])
        else:  # inherited: the base class's comes back
            stack.callback(delattr, owner, name)


@contextmanager
def training_phases() -> Iterator[Split]:
    """MaskablePPO's collection and update, and the trial's evaluations, timed while the
    block runs (the phases only: what ``make bench`` prints)."""
    from sb3_contrib import MaskablePPO

    from tuner.trial.callbacks import EvaluationCallback

    split = Split()
    with ExitStack() as stack:
        split.wrap(MaskablePPO, "collect_rollouts", "collect", stack)
        split.wrap(MaskablePPO, "train", "update", stack)
        split.wrap(EvaluationCallback, "evaluate_now", "evaluation", stack)
        yield split
