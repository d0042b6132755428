"""Time for schedules and waits: the real clock, or one started at a chosen instant (rehearsals and
tests of `courier serve`). Sleeping can be cut short by a stop request (SIGTERM)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Optional

from pipelines.errors import CourierError


class Interrupted(CourierError):
    """A stop was requested (SIGTERM/SIGINT) while waiting."""


class Clock:
    """UTC now() and an interruptible sleep(); with `start`, time begins at that instant."""

    def __init__(self, start: Optional[dt.datetime] = None, stop: Optional[threading.Event] = None):
        self._origin = start
        self._began = time.monotonic()
        self.stop = stop or threading.Event()

    def now(self) -> dt.datetime:
        if self._origin is None:
            return dt.datetime.now(dt.timezone.utc)
        return self._origin + dt.timedelta(seconds=time.monotonic() - self._began)

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise Interrupted as soon as a stop is requested."""
        if self.stop.wait(max(0.0, seconds)):
            raise Interrupted("interrupted by a stop request (SIGTERM/SIGINT) while waiting")
