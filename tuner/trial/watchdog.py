"""A watchdog on a training run's step counter: a run that makes no progress is stopped.

A trial can hang where no callback runs: ``batch_size: 0`` spins forever in the PPO
update (SB3's minibatch loop never advances), at full CPU, while the heartbeat thread
beats on, so no other worker fails it; the worker's stop flag is polled at steps, so
a first SIGTERM is never honoured either. :class:`StallWatchdog` is an SB3 callback that
notes the time of each step and a thread that, once no step has come for ``seconds``
(evaluations excepted: they are bounded by their games, and may be long), raises
:class:`TrainingStalled` in the training thread. ``train`` records the reason and the
trial fails with it (not re-queued: the next worker would hang too).

The exception is raised asynchronously (``PyThreadState_SetAsyncExc``): it lands at the
training thread's next Python bytecode, which a loop in Python (SB3's) reaches at once
and a long torch call reaches when it returns.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from stable_baselines3.common.callbacks import BaseCallback

T = TypeVar("T")

# No env step for this long outside an evaluation: the run is stuck. A PPO update of the
# shipped studies takes seconds; the largest ppo_core draws (65k samples, batches of 64,
# 20 epochs) about a minute on one CPU core.
STALL_SECONDS = 600.0


class TrainingStalled(BaseException):
    """Raised in the training thread by the watchdog; a ``BaseException``, so that no
    ``except Exception`` on the way swallows it."""


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule ``exc`` in thread ``thread_id`` (``None``: cancel one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


class StallWatchdog(BaseCallback):
    """Stops a run with no env step for ``seconds`` (evaluations excepted).

    Use: in ``learn()``'s callbacks, and ``with watchdog:`` around ``learn()`` in the
    training thread; ``except TrainingStalled`` outside that block reads :attr:`reason`.
    """

    def __init__(self, seconds: float = STALL_SECONDS) -> None:
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"seconds: expected a positive number, but got {seconds}")
        self.seconds = seconds
        self.reason: str | None = None
        self._last = time.monotonic()
        self._evaluating = 0
        self._lock = threading.Lock()
        self._armed = False
        self._fired = False
        self._stop = threading.Event()
        self._target = threading.get_ident()
        self._thread: threading.Thread | None = None

    def _on_step(self) -> bool:
        self._last = time.monotonic()
        return True

    def pausing(self, evaluate: Callable[[Any], T]) -> Callable[[Any], T]:
        """``evaluate``, with the watchdog paused while it runs."""

        def paused(model: Any) -> T:
            with self._paused():
                return evaluate(model)

        return paused

    @contextmanager
    def _paused(self) -> Iterator[None]:
        self._evaluating += 1
        try:
            yield
        finally:
            self._evaluating -= 1
            self._last = time.monotonic()

    def __enter__(self) -> StallWatchdog:
        self._target = threading.get_ident()
        self._last = time.monotonic()
        self._armed = True
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        poll = min(1.0, self.seconds / 4)
        while not self._stop.wait(poll):
            idle = time.monotonic() - self._last
            if self._evaluating or idle < self.seconds:
                continue
            with self._lock:
                if not self._armed:
                    return
                self._fired = True
                self.reason = (
                    f"no training progress: no env step for {idle:.0f} s (limit "
                    f"{self.seconds:.0f} s) after {self.num_timesteps} steps; stuck in the "
                    "PPO update?"
                )
                _raise_in(self._target, TrainingStalled)
            return

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._stop.set()
        with self._lock:
            self._armed = False
            if self._fired and exc_type is not TrainingStalled:
                _raise_in(self._target, None)  # fired as learn() returned: cancel it
        if self._thread is not None:
            self._thread.join(timeout=5)
