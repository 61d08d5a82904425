"""A trial's heartbeat, in a thread that outlives a lost connection.

Optuna sends heartbeats only inside ``study.optimize``; the worker asks and tells
itself, so it runs the heartbeat around each trial, as ``study.optimize`` does.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from tuner.storage.retry import first_line

log = logging.getLogger("tuner.trial.heartbeat")


class HeartbeatStorage(Protocol):
    """What a heartbeat writes to: Optuna's ``BaseHeartbeat.record_heartbeat``."""

    def record_heartbeat(self, trial_id: int) -> None: ...


class Heartbeat:
    """Optuna's heartbeat for one trial, in a thread that outlives a lost connection.

    Optuna's own thread dies at the first failed write, and its trial is then
    failed as stale while it still runs; this one logs and tries again at the
    next beat (which is also why its writes are not retried).
    """

    def __init__(self, storage: HeartbeatStorage, trial_id: int, interval: float) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.failures = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
                if self.failures:
                    log.warning("heartbeat of trial id %d is back", self.trial_id)
                self.failures = 0
            except Exception as err:
                if self.failures == 0:
                    log.warning("heartbeat failed (%s); trying again", first_line(err))
                self.failures += 1

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
