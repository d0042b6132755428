"""Time for schedules and waits: the real clock, or one started at a chosen instant (rehearsals and
tests of `courier serve`). Sleeping ends early when a stop is requested (SIGTERM)."""

from __future__ import annotations

import datetime as dt
import time

from optimizely_courier.errors import Interrupted

TICK_SECONDS = 0.1  # how often a sleep looks at the stop flag


class Clock:
    """UTC now() and an interruptible sleep(); with `start`, time begins at that instant."""

    def __init__(self, start: dt.datetime | None = None):
        self._origin = start
        self._began = time.monotonic()
        # A plain flag, not a lock-based Event: a signal handler sets it, and a handler must never
        # wait for a lock the interrupted code may be holding.
        self.stop_requested = False

    def now(self) -> dt.datetime:
        if self._origin is None:
            return dt.datetime.now(dt.UTC)
        return self._origin + dt.timedelta(seconds=time.monotonic() - self._began)

    def request_stop(self) -> None:
        self.stop_requested = True

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise Interrupted as soon as a stop is requested."""
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            if self.stop_requested:
                raise Interrupted("interrupted by a stop request (SIGTERM/SIGINT) while waiting")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(TICK_SECONDS, remaining))
