"""5. Wall time of the nbval notebook suite, and of each notebook.

Usage: python benchmarks/bench_notebooks.py

Runs ``pytest --nbval-lax --nbval-current-env -p no:randomly notebooks/*.ipynb
--durations=0`` once, times the whole command, and adds up pytest's per-cell durations
(set-up, call and tear-down, so a kernel's start counts) for each notebook. These goals
are absolute times, so the ratio is the time ÷ its limit (≤ 1 meets the goal).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from report import Row, script_main

ROOT = Path(__file__).resolve().parents[1]
SUITE_LIMIT_S = 360.0
NOTEBOOK_LIMIT_S = 60.0
GOAL = ("≤", 1.0)
DURATION = re.compile(r"^\s*([0-9.]+)s\s+(setup|call|teardown)\s+(\S+?\.ipynb)::")
SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+\.ipynb::[^-]+?)(?: - |$)", re.MULTILINE)


def parse_durations(output: str) -> dict[str, float]:
    """Seconds per notebook, summed over the cells pytest's ``--durations`` lists."""
    per: dict[str, float] = defaultdict(float)
    for line in output.splitlines():
        m = DURATION.match(line)
        if m:
            per[m.group(3)] += float(m.group(1))
    return dict(per)


def run_suite() -> tuple[float, dict[str, float], dict[str, int], list[str]]:
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
           "-p", "no:randomly", "-p", "no:cacheprovider", "-q", "--durations=0", *notebooks]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {kind: int(n) for n, kind in SUMMARY.findall(tail)}
    per = parse_durations(proc.stdout)
    for nb in notebooks:
        per.setdefault(nb, 0.0)
    return wall, per, counts, [f.strip() for f in FAILED.findall(proc.stdout)]


def measure(quick: bool = False, repeats: int = 1) -> list[Row]:
    setting = "notebooks/*.ipynb under nbval"
    if quick:
        return [Row("5", "nbval notebook suite wall time", setting, goal=GOAL,
                    not_measured="--quick"),
                Row("5", "notebook wall time under nbval", "each notebook", goal=GOAL,
                    not_measured="--quick")]
    wall, per, counts, failed = run_suite()
    cells = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no summary line"
    suite = Row("5", "nbval notebook suite wall time", f"{len(per)} notebooks ({cells})",
                value=f"{wall:.0f} s", baseline=f"limit {SUITE_LIMIT_S:.0f} s",
                ratio=wall / SUITE_LIMIT_S, goal=GOAL)
    if counts.get("failed") or counts.get("error") or counts.get("errors"):
        which = ", ".join(failed) or "see pytest's output"
        suite.notes.append(f"notebook cells failed under nbval ({which}); their time "
                           f"still counts")
    rows = [suite]
    for nb, s in sorted(per.items()):
        rows.append(Row("5", "notebook wall time under nbval", nb, value=f"{s:.1f} s",
                        baseline=f"limit {NOTEBOOK_LIMIT_S:.0f} s",
                        ratio=s / NOTEBOOK_LIMIT_S, goal=GOAL))
    return rows


if __name__ == "__main__":
    script_main(__doc__, measure, default_repeats=1)
