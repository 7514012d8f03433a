"""``RunResult``: everything a run produced, and its ``record.json`` on disk."""
from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddlkit.comm.accounting import RankTotals
from ddlkit.comm.events import EVENT_FIELDS, Event
from ddlkit.config import Experiment
from ddlkit.errors import RecordError
from ddlkit.files import atomic_write
from ddlkit.runtime import records
from ddlkit.units import format_bytes

RECORD = "record.json"
PARAMS = "final_params.npy"
FORMAT_VERSION = 1


@dataclass(repr=False)
class RunResult:
    """The outcome of :func:`ddlkit.run`, complete or partial.

    ``status`` is ``ok``, ``failed``, ``timeout`` or ``stopped``; after a failure
    ``error`` is one readable line and ``error_detail`` the failed rank's traceback.
    Times in ``history`` and ``events`` are seconds since the run started. ``history``
    rows hold step, samples, t, train_loss, test_loss, accuracy and cumulative bytes
    (sent by all ranks). In mode ``sync``, ``applied[i]`` lists the worker ranks whose
    gradients the server averaged in the i-th step of the run, and ``dropped[i]`` those
    whose gradient for that step came too late and was dropped (backup workers).
    """

    config: Experiment
    status: str = "ok"
    error: str | None = None
    error_detail: str | None = None
    wall_time_s: float = 0.0
    first_event_s: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    ranks: list[RankTotals] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    staleness: list[int] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)
    applied: list[list[int]] = field(default_factory=list)
    dropped: list[list[int]] = field(default_factory=list)
    final_params: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        f = self.final
        acc = f.get("accuracy")
        tail = "" if acc is None else f", accuracy={acc:.3f}"
        loss = f.get("test_loss")
        loss_s = "" if loss is None else f", test_loss={loss:.4f}"
        return (f"RunResult({self.config.label()}, status={self.status}, "
                f"step={f.get('step')}, wall={self.wall_time_s:.2f} s{loss_s}{tail}, "
                f"{len(self.events)} events)")

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"

    # -- derived numbers ---------------------------------------------------------
    @property
    def final(self) -> dict[str, Any]:
        """The last history row (empty if none)."""
        return self.history[-1] if self.history else {}

    @property
    def training_s(self) -> float:
        """Seconds between the first and the last evaluation (start-up excluded)."""
        if len(self.history) < 2:
            return 0.0
        return self.history[-1]["t"] - self.history[0]["t"]

    @property
    def training_samples_per_s(self) -> float:
        """Samples per second while training, between the first and last evaluation."""
        if self.training_s <= 0:
            return 0.0
        done = self.history[-1]["samples"] - self.history[0]["samples"]
        return done / self.training_s

    @property
    def total_bytes(self) -> int:
        """Bytes sent by all ranks together."""
        return sum(r.bytes_sent for r in self.ranks)

    def summary(self) -> str:
        """A plain-text table: one line per rank, then the final loss and accuracy."""
        lines = [f"{self.config.label()}  [{self.status}]  {self.wall_time_s:.2f} s in all, "
                 f"{self.training_s:.2f} s training at "
                 f"{self.training_samples_per_s:,.0f} samples/s"]
        if self.error:
            lines.append(f"error: {self.error}")
        lines.append(f"{'rank':>4} {'role':<7} {'sent':>10} {'received':>10} {'msgs':>6} "
                     f"{'compute s':>9} {'comm s':>7} {'wait s':>7}")
        for r in self.ranks:
            lines.append(f"{r.rank:>4} {r.role:<7} {format_bytes(r.bytes_sent):>10} "
                         f"{format_bytes(r.bytes_received):>10} {r.messages_sent:>6} "
                         f"{r.compute_s:>9.3f} {r.comm_s:>7.3f} {r.wait_s:>7.3f}")
        f = self.final
        if f:
            acc = f.get("accuracy")
            acc_s = "" if acc is None else f", accuracy {acc:.3f}"
            loss = f.get("test_loss")  # None in a record: it was NaN or infinite
            loss_s = "n/a" if loss is None else f"{loss:.4f}"
            lines.append(f"step {f.get('step')}: test loss {loss_s}{acc_s}")
        for lost in self.lost:
            how = lost.get("how", "lost")
            step = f" at step {lost['step']}" if "step" in lost else ""
            lines.append(f"lost: rank {lost['rank']}{step}, {how}; the run carried on")
        late = sum(map(len, self.dropped))
        if late:
            lines.append(f"backup workers: {late} late gradients dropped, "
                         f"{sum(map(len, self.applied))} applied")
        if self.staleness:
            s = np.asarray(self.staleness)
            lines.append(f"staleness: mean {s.mean():.2f}, max {s.max()}")
        return "\n".join(lines)

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "status": self.status,
            "error": self.error,
            "error_detail": self.error_detail,
            "wall_time_s": self.wall_time_s,
            "first_event_s": self.first_event_s,
            "history": [_clean(row) for row in self.history],
            "ranks": [r.to_dict() for r in self.ranks],
            "events": {"fields": list(EVENT_FIELDS), "rows": [list(e) for e in self.events]},
            "staleness": list(self.staleness),
            "lost": self.lost,
            "applied": self.applied,
            "dropped": self.dropped,
            "meta": self.meta,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``record.json`` (and ``final_params.npy``) atomically; returns the record path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1)  # first: a field JSON cannot hold
        params = self.final_params                  # stops the save before any write
        if params is not None:
            atomic_write(d / PARAMS, lambda f: np.save(f, params))
        return atomic_write(d / RECORD, text.encode("utf-8"))


def load_result(directory: str | os.PathLike[str]) -> RunResult:
    """Read a run back from the directory :meth:`RunResult.save` wrote (or its record.json).

    A folder without a record raises ``FileNotFoundError``; a record that is cut off,
    damaged, from a newer ddlkit or not a record at all raises
    :class:`~ddlkit.errors.RecordError` (a ``ValueError``) naming the file and what to do.
    """
    d = Path(directory)
    if d.name == RECORD and d.is_file():
        d = d.parent
    path = d / RECORD
    if not path.is_file():
        where = f"no folder {d}" if not d.is_dir() else f"no {RECORD} in {d}"
        raise FileNotFoundError(f"{where}: {records.NOT_A_RECORD}")
    data = records.read_fields(path, FORMAT_VERSION)
    try:
        config = Experiment.from_dict(data["config"])
    except (ValueError, TypeError) as err:
        raise RecordError(path, f'"config" is not an experiment this ddlkit can run ({err})',
                          records.EDITED) from None
    ev = data["events"]
    events = [Event(**dict(zip(ev["fields"], row))) for row in ev["rows"]]
    params = records.read_params(d / PARAMS) if (d / PARAMS).exists() else None
    return RunResult(
        config=config, status=data["status"], error=data["error"],
        error_detail=data.get("error_detail"), wall_time_s=data["wall_time_s"],
        first_event_s=data.get("first_event_s"), history=data["history"],
        ranks=[RankTotals(**r) for r in data["ranks"]], events=events,
        staleness=data["staleness"], lost=data.get("lost", []),
        applied=data.get("applied", []), dropped=data.get("dropped", []),
        final_params=params, meta=data.get("meta", {}))


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}

