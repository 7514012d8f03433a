"""The campaign's numbers: one line per run as it ends, then a table and a JSON summary.

The table gives, per mode, the runs, how they ended and the detection latency (p50 and p99,
killed and stopped ranks apart); then the count of each problem (hangs, wrong blame, leaks,
...), which must all be 0. The JSON file holds the same numbers and every failing run in full.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.chaos.plan import Case
from tests.chaos.trial import Observation
from tests.chaos.verdict import PROBLEMS, Verdict

OUTCOMES = ("survived", "failed", "unresponsive", "late", "missed", "hang", "error")


@dataclass
class Row:
    """One run: what was planned, what happened, the verdict, its wall time (s)."""

    case: Case
    obs: Observation
    verdict: Verdict
    wall_s: float

    def line(self) -> str:
        """How the run ended, for the end of its line."""
        v, obs, victim = self.verdict, self.obs, self.case.victim
        text = {"survived": f"survived, rank {victim} lost",
                "failed": f"WorkerFailed rank {obs.blamed}",
                "unresponsive": f"WorkerUnresponsive rank {obs.blamed}",
                "late": "ok: hit after its last report",
                "missed": f"missed: {obs.hit.get('missed')}",
                "hang": "HANG"}.get(v.outcome, f"{obs.outcome}: {obs.error[:200]}")
        if obs.latency_s is not None and v.outcome in ("survived", "failed", "unresponsive"):
            text += f" in {obs.latency_s:.2f} s"
        if obs.hit.get("sent"):
            joined = "it had joined" if obs.hit.get("joined") else "before its RankReady"
            text += f" (hit {obs.hit['at_s']:.2f} s after run(), {joined})"
        problems = "; ".join(f"{kind}: {detail}" for kind, detail in v.problems)
        return f"-> {text} [{self.wall_s:.1f} s] " + (f"FAIL {problems}" if problems else "ok")


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q ≤ 1), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_stats(rows: list[Row], signal: str) -> dict[str, Any]:
    """p50 and p99 detection latency of ``rows`` hit with ``signal`` (s)."""
    values = [r.obs.latency_s for r in rows if r.case.signal == signal
              and r.obs.latency_s is not None
              and r.verdict.outcome in ("survived", "failed", "unresponsive")]
    return {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}


def summarise(rows: list[Row], total_s: float) -> dict[str, Any]:
    """The campaign's numbers, JSON-ready."""
    per_mode: dict[str, Any] = {}
    for mode in dict.fromkeys(r.case.mode for r in rows):
        mine = [r for r in rows if r.case.mode == mode]
        per_mode[mode] = {"runs": len(mine), "cold": sum(r.case.cold for r in mine),
                          "hit_before_ready": sum(_before_ready(r) for r in mine),
                          "outcomes": dict(Counter(r.verdict.outcome for r in mine)),
                          "kill_latency_s": latency_stats(mine, "KILL"),
                          "stop_latency_s": latency_stats(mine, "STOP")}
    problems = Counter(kind for r in rows for kind, _ in r.verdict.problems)
    return {
        "runs": len(rows), "cold_runs": sum(r.case.cold for r in rows),
        "total_s": round(total_s, 1), "mean_s_per_run": round(total_s / max(1, len(rows)), 2),
        "per_mode": per_mode,
        "problems": {kind: problems.get(kind, 0) for kind in PROBLEMS},
        "failures": [{"seed": r.case.seed, "run": r.case.describe(),
                      "problems": r.verdict.problems, "observation": asdict(r.obs)}
                     for r in rows if not r.verdict.ok],
        "seeds": [{"seed": r.case.seed, "mode": r.case.mode, "cold": r.case.cold,
                   "signal": r.case.signal, "victim": r.case.victim, "moment": r.case.moment,
                   "hit_at_s": r.obs.hit.get("at_s"), "joined": r.obs.hit.get("joined"),
                   "outcome": r.verdict.outcome, "latency_s": r.obs.latency_s,
                   "wall_s": round(r.wall_s, 2), "ok": r.verdict.ok} for r in rows],
    }


def _before_ready(row: Row) -> bool:
    """Whether the victim was hit before the parent had reported it joined."""
    return bool(row.obs.hit.get("sent")) and not row.obs.hit.get("joined")


def table(summary: dict[str, Any]) -> str:
    """The summary as text: a row per mode, then the problems."""
    def ms(stats: dict[str, Any]) -> str:
        if not stats["n"]:
            return "-"
        return f"{stats['p50']:.2f}/{stats['p99']:.2f}"

    lines = [f"chaos: {summary['runs']} runs ({summary['cold_runs']} cold) in "
             f"{summary['total_s']:.0f} s, {summary['mean_s_per_run']:.2f} s a run",
             f"{'mode':<10} {'runs':>4} {'cold':>4} {'early':>5} "
             + " ".join(f"{o:>12}" for o in OUTCOMES)
             + f" {'kill p50/p99 s':>15} {'stop p50/p99 s':>15}"]
    for mode, m in summary["per_mode"].items():
        counts = " ".join(f"{m['outcomes'].get(o, 0):>12}" for o in OUTCOMES)
        lines.append(f"{mode:<10} {m['runs']:>4} {m['cold']:>4} {m['hit_before_ready']:>5} "
                     f"{counts} {ms(m['kill_latency_s']):>15} {ms(m['stop_latency_s']):>15}")
    lines.append("(cold: in a fresh Python; early: hit before the parent reported it joined)")
    lines.append("problems: " + " · ".join(f"{kind} {n}"
                                           for kind, n in summary["problems"].items()))
    for failure in summary["failures"]:
        lines.append(f"  FAILED {failure['run']}: {failure['problems']}")
    return "\n".join(lines)


def write(summary: dict[str, Any], path: Path) -> None:
    """Save the summary as JSON at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")
