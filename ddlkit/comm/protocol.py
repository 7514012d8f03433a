"""What a rank tells its parent, and the :class:`Reporter` that sends it.

A rank reports through one channel to the process that started it (a pipe locally, a
buffer under torchrun): that it is ready, its progress, evaluation rows, its recorded
communication events, and how it ended.
"""
from __future__ import annotations

import time
from typing import Any

from ddlkit.comm.events import Recorder

#: how often buffered events are flushed to the parent, at most (seconds)
FLUSH_EVERY_S = 0.25
#: how often progress is reported to the parent, at most (seconds)
PROGRESS_EVERY_S = 0.05


class Reporter:
    """Streams progress, evaluation rows and events from a rank to the parent.

    ``conn`` is the write end of a pipe (anything with ``send``). Sends are throttled so
    that reporting never slows training noticeably.
    """

    def __init__(self, rank: int, conn: Any, recorder: Recorder) -> None:
        self.rank = rank
        self.conn = conn
        self.recorder = recorder
        self._last_flush = time.perf_counter()
        self._last_progress = 0.0

    def send(self, *msg: Any) -> None:
        self.conn.send(msg)

    def progress(self, step: int, total: int, samples: int, force: bool = False) -> None:
        """Report that ``step`` of ``total`` is done (throttled unless ``force``)."""
        now = time.perf_counter()
        if force or step >= total or now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.send("progress", self.rank, step, total, samples, now)
        if now - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def maybe_flush(self) -> None:
        """Send buffered events if the last flush is ``FLUSH_EVERY_S`` old (so a killed
        rank loses at most that much of its timeline)."""
        if time.perf_counter() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def eval_row(self, row: dict[str, Any]) -> None:
        """Send one history row (step, samples, losses, accuracy, time) and flush events."""
        self.send("eval", self.rank, row)
        self.flush()

    def flush(self) -> None:
        events = self.recorder.drain()
        self._last_flush = time.perf_counter()
        if events:
            self.send("events", self.rank, [tuple(e) for e in events])
