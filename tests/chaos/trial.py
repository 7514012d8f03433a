"""One chaos run in this process: start the killer, run the experiment, write down what happened.

The :class:`Observation` is plain data (JSON both ways), so a run made in a fresh process
(:mod:`.cold`) is judged exactly like one made here.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ddlkit
from tests.chaos.killer import Killer
from tests.chaos.plan import Case


@dataclass
class Observation:
    """What one run did.

    - ``outcome``: the result's status (``ok``, ``stopped``), or the exception's class name.
    - ``blamed``: the rank the exception names; ``error``: its message.
    - ``lost``: the result's ``lost`` entries (rank, how, ...).
    - ``hit``: whether the signal was sent (``sent``), or why not (``missed``); when (``at_s``,
      seconds after ``run()`` was called); whether the victim had been reported joined then.
    - ``latency_s``: from the hit to the exception, or to the victim's ``RankLost`` event.
    - ``last_step_after_hit_s``: when the run reported its last step, relative to the hit.
    - ``record_status``: the status in the record on disk (None: no record).
    - ``leaks``: what the run left behind (filled in by the caller).
    """

    seed: int
    outcome: str
    blamed: int | None = None
    error: str = ""
    lost: list[dict[str, Any]] = field(default_factory=list)
    hit: dict[str, Any] = field(default_factory=dict)
    latency_s: float | None = None
    last_step_after_hit_s: float | None = None
    record_status: str | None = None
    wall_s: float = 0.0
    leaks: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Observation:
        return cls(**json.loads(text))


def observe(case: Case, record_dir: Path) -> Observation:
    """Run ``case`` here with its killer; the record goes to ``record_dir``."""
    exp = case.experiment()
    killer = Killer(case)
    obs = Observation(case.seed, outcome="")
    killer.start()
    result: Any = None
    try:
        result = ddlkit.run(exp, on_event=killer.on_event, record_dir=record_dir)
        obs.outcome = result.status
    except (ddlkit.WorkerFailed, ddlkit.RunTimeout) as exc:
        obs.outcome, obs.error, result = type(exc).__name__, str(exc), exc.result
        obs.blamed = getattr(exc, "rank", None)
    except Exception as exc:  # noqa: BLE001 - any other error is a finding, not a crash
        obs.outcome, obs.error = type(exc).__name__, str(exc)
    ended = time.monotonic()
    killer.finish()
    try:
        if killer.victim_alive():
            obs.leaks.append(f"rank {case.victim} (pid {killer.hit.pid}) still existed after "
                             f"run() returned")
    finally:
        killer.resume()
    hit = killer.hit
    obs.wall_s = ended - killer.t_call
    obs.hit = {"sent": hit.sent, "missed": hit.missed, "joined": hit.joined,
               "at_s": hit.t - killer.t_call if hit.sent else None}
    if result is not None:
        obs.lost = [{k: v for k, v in entry.items() if k in ("rank", "how", "step")}
                    for entry in result.lost]
    if hit.sent:
        detected = ended if obs.outcome not in ("ok", "stopped") else killer.lost_at
        obs.latency_s = None if detected is None else detected - hit.t
        if killer.last_step_at is not None:
            obs.last_step_after_hit_s = killer.last_step_at - hit.t
    record = record_dir / "record.json"
    if record.exists():
        obs.record_status = json.loads(record.read_text())["status"]
    return obs
