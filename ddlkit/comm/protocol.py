"""What a rank tells its parent, and the :class:`Reporter` that sends it.

A rank reports through one channel to the process that started it (a pipe locally, a
buffer under torchrun). Each report is one small frozen message naming the rank it is
from: :class:`Ready`, then :class:`Progress`, :class:`EvalRow` and :class:`Events` while
it trains, and last one of the three that end a rank (``ends_rank``): :class:`Done`,
:class:`Failed` or :class:`Left`. A server may also report a :class:`WorkerLost` about
another rank. The parent's :class:`~ddlkit.runtime.collector.Collector` reads them by
type and turns them into the live events of :mod:`ddlkit.runtime.live`.

One message goes the other way, from a warm pool's parent to its worker:
:class:`RunRequest`, asking it to run one rank.
"""
from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar, Union, get_args

import numpy as np

from ddlkit.comm.events import Recorder

#: how often buffered events are flushed to the parent, at most (seconds)
FLUSH_EVERY_S = 0.25
#: how often progress is reported to the parent, at most (seconds)
PROGRESS_EVERY_S = 0.05


@dataclass(frozen=True)
class _FromRank:
    """What every message from a rank carries: the rank it is from."""

    rank: int
    #: whether this is the last message its rank sends
    ends_rank: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or self.rank < 0:
            raise ValueError(f"rank={self.rank!r} is not allowed: a rank is an int >= 0")


@dataclass(frozen=True)
class Ready(_FromRank):
    """The rank has joined its process group. Its two clocks, read at the same moment,
    let the parent align ranks on different machines."""

    pid: int
    perf_time: float
    wall_time: float


@dataclass(frozen=True)
class Progress(_FromRank):
    """``step`` of ``total`` steps done, ``samples`` trained on so far, at ``t``
    (the rank's ``perf_counter``)."""

    step: int
    total: int
    samples: int
    t: float


@dataclass(frozen=True)
class EvalRow(_FromRank):
    """One history row: step, samples, losses, accuracy and ``t`` (rank's clock)."""

    row: dict[str, Any]


@dataclass(frozen=True)
class Events(_FromRank):
    """A batch of recorded communication events, as plain tuples of ``Event``'s fields."""

    events: list[tuple[Any, ...]]


@dataclass(frozen=True)
class Done(_FromRank):
    """The rank finished; ``output`` is what its job returned."""

    output: Any
    ends_rank: ClassVar[bool] = True


@dataclass(frozen=True)
class Failed(_FromRank):
    """The rank raised; ``traceback`` is the formatted traceback."""

    traceback: str
    ends_rank: ClassVar[bool] = True


@dataclass(frozen=True)
class Left(_FromRank):
    """The rank left the run as planned (a ``leave`` fault); ``reason`` says why."""

    reason: str
    ends_rank: ClassVar[bool] = True


@dataclass(frozen=True)
class WorkerLost(_FromRank):
    """A server (``rank``) lost worker ``lost_rank`` at ``step`` and carries on."""

    lost_rank: int
    step: int
    reason: str


#: every message a rank sends its parent
Message = Union[Ready, Progress, EvalRow, Events, Done, Failed, Left, WorkerLost]
#: the message types, for ``isinstance``
MESSAGE_TYPES: tuple[type, ...] = get_args(Message)
#: how a NumPy array (a rank's final parameters) is marked in JSON
ARRAY = "__ndarray__"


def to_json(messages: list[Message]) -> bytes:
    """``messages`` as JSON, for a channel that other machines can reach (torchrun's
    store): unlike a pickle, reading it back cannot run code. Arrays keep every bit."""
    return json.dumps([{"type": type(m).__name__, **{f.name: getattr(m, f.name)
                                                   for f in fields(m)}} for m in messages],
                      default=_encode).encode("utf-8")


def from_json(data: bytes) -> list[Message]:
    """The messages :func:`to_json` wrote; anything else raises ``ValueError``."""
    kinds = {t.__name__: t for t in MESSAGE_TYPES}
    try:
        items = json.loads(data, object_hook=_decode)
        if not isinstance(items, list):
            raise ValueError(f"a list of messages, not {type(items).__name__}")
        out = []
        for item in items:
            kind = kinds[item.pop("type")]
            if kind is Events:
                item["events"] = [tuple(e) for e in item["events"]]
            out.append(kind(**item))
        return out
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise ValueError(f"not ddlkit messages ({type(err).__name__}: {err})"[:300]) from None


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return {ARRAY: base64.b64encode(np.ascontiguousarray(value).tobytes()).decode(),
                "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"a rank's report cannot hold {type(value).__name__} in JSON")


def _decode(obj: dict[str, Any]) -> Any:
    if ARRAY not in obj:
        return obj
    dtype = np.dtype(obj["dtype"])
    if dtype.hasobject:
        raise ValueError("an array of Python objects")
    raw = base64.b64decode(obj[ARRAY], validate=True)
    return np.frombuffer(raw, dtype=dtype).reshape(obj["shape"]).copy()


@dataclass(frozen=True)
class RunRequest:
    """From a warm pool's parent to one of its workers (the other direction): run
    ``job`` as ``rank`` of ``world_size``, meeting the others in the store at
    ``host:store_port`` under ``prefix``."""

    rank: int
    world_size: int
    job: Callable[..., Any]
    store_port: int
    prefix: str
    host: str


class Reporter:
    """Streams a rank's messages to the parent.

    ``conn`` is the write end of a pipe (anything with ``send``). Sends are throttled so
    that reporting never slows training noticeably. A message that ends the rank first
    flushes the events still buffered, so nothing recorded is lost.
    """

    def __init__(self, rank: int, conn: Any, recorder: Recorder) -> None:
        self.rank = rank
        self.conn = conn
        self.recorder = recorder
        self._last_flush = time.perf_counter()
        self._last_progress = 0.0

    def send(self, msg: Message) -> None:
        self.conn.send(msg)

    def ready(self) -> None:
        """Report that this rank has joined its process group."""
        self.send(Ready(self.rank, os.getpid(), time.perf_counter(), time.time()))

    def progress(self, step: int, total: int, samples: int, force: bool = False) -> None:
        """Report that ``step`` of ``total`` is done (throttled unless ``force``)."""
        now = time.perf_counter()
        if force or step >= total or now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.send(Progress(self.rank, step, total, samples, now))
        if now - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def maybe_flush(self) -> None:
        """Send buffered events if the last flush is ``FLUSH_EVERY_S`` old (so a killed
        rank loses at most that much of its timeline)."""
        if time.perf_counter() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def eval_row(self, row: dict[str, Any]) -> None:
        """Send one history row (step, samples, losses, accuracy, time) and flush events."""
        self.send(EvalRow(self.rank, row))
        self.flush()

    def flush(self) -> None:
        """Send the events recorded since the last flush, if any."""
        events = self.recorder.drain()
        self._last_flush = time.perf_counter()
        if events:
            self.send(Events(self.rank, [tuple(e) for e in events]))

    def lost(self, lost_rank: int, step: int, reason: str) -> None:
        """Report, as a server, that worker ``lost_rank`` was lost at ``step``."""
        self.send(WorkerLost(self.rank, lost_rank, step, reason))

    def done(self, output: Any) -> None:
        """Flush, then report that this rank finished with ``output``."""
        self.flush()
        self.send(Done(self.rank, output))

    def failed(self, traceback: str) -> None:
        """Flush, then report that this rank raised."""
        self.flush()
        self.send(Failed(self.rank, traceback))

    def left(self, reason: str) -> None:
        """Flush, then report that this rank left the run as planned."""
        self.flush()
        self.send(Left(self.rank, reason))
