"""The live event stream a run sends to ``on_event`` while it goes (for bars and plots)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ddlkit.comm.events import Event


@dataclass(frozen=True)
class RankReady:
    """A rank has joined the process group (``t``: seconds since the run started)."""

    rank: int
    t: float
    pid: int


@dataclass(frozen=True)
class RankLost:
    """A worker was lost and the run carries on without it (``info``: how, step, ...)."""

    rank: int
    t: float
    info: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    """``step`` of ``total`` steps done, ``samples`` training samples processed so far."""

    step: int
    total: int
    samples: int
    t: float


@dataclass(frozen=True)
class EvalPoint:
    """One history row, as it will appear in ``RunResult.history``."""

    row: dict[str, Any]


@dataclass(frozen=True)
class CommEvents:
    """A batch of raw events from one rank (times relative to the run start)."""

    rank: int
    events: list[Event]


#: what receives the live events (``ddlkit.run(on_event=…)``, a bar, the panel)
OnEvent = Callable[[Any], None]
