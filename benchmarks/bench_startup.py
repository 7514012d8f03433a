"""4. Time from ``run()`` to the first event, cold and warm, against ``import torch``.

Usage: python benchmarks/bench_startup.py [--quick] [--repeats 3]

Each repetition times ``python -c "import torch"`` (the baseline) and, right after it,
:mod:`ddlkit.bench.coldstart` in fresh processes: each imports ddlkit, then calls
``run()`` on the panel's default experiment (sync, 4 workers) once cold (no worker
process, no forkserver yet) and three times warm, timing each call to its first live
event. It does so three times: with fresh worker processes from ddlkit's forkserver (warm:
the forkserver, torch preloaded, is running), with fresh processes started by ``spawn``
(``DDLKIT_START_METHOD=spawn``: what macOS and Windows use; every run imports torch in
every worker, so warm is no faster than cold), and with the warm worker pool the panel
uses (warm: the pool's processes are running), where ddlkit has one, under the platform's
default start method and under spawn.
"""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time

from report import Row, median, paired_ratio, script_main

COLD_GOAL = ("≤", 1.5)
WARM_GOAL = ("≤", 0.05)
WORKERS = 4
#: what profiling found when the cold goal is not met (see benchmarks/RESULTS.md)
WHY_COLD = ("a cold start waits for the forkserver to preload torch and ddlkit.runtime.warm; "
            "ddlkit.runtime.warm builds every dataset and so imports scikit-learn, which takes "
            "about as long as importing torch")


WHY_SPAWN = ("spawn starts a fresh interpreter per worker, and each imports torch itself; "
             "the warm pool (the panel's default) pays this once per kernel")


def import_torch_s() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def coldstart(warm_runs: int, pool: bool, start_method: str | None = None) -> dict:
    """Run :mod:`ddlkit.bench.coldstart` in a fresh Python process; its JSON report."""
    from ddlkit.bench.coldstart import COMMAND

    cmd = [sys.executable, "-c", COMMAND, "--workers", str(WORKERS), "--warm", str(warm_runs)]
    env = dict(os.environ)
    env.pop("DDLKIT_START_METHOD", None)
    if start_method is not None:
        env["DDLKIT_START_METHOD"] = start_method
    out = subprocess.run(cmd + (["--pool"] if pool else []), check=True, capture_output=True,
                         text=True, timeout=300, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_pool() -> bool:
    """Whether this ddlkit has the warm worker pool (``run(..., pool=...)``)."""
    try:
        import ddlkit
        import ddlkit.runtime.pool  # noqa: F401
    except ImportError:
        return False
    return "pool" in inspect.signature(ddlkit.run).parameters


def measure(quick: bool = False, repeats: int = 3) -> list[Row]:
    variants = {"forkserver": (False, "forkserver"), "spawn": (False, "spawn")}
    if has_pool():
        variants["pool"] = (True, None)
        variants["spawn pool"] = (True, "spawn")
    torch_s: list[float] = []
    cold: dict[str, list[float]] = {v: [] for v in variants}
    warm: dict[str, list[float]] = {v: [] for v in variants}
    imports: list[float] = []
    for _ in range(repeats):
        torch_s.append(import_torch_s())
        for name, (pool, method) in variants.items():
            got = coldstart(warm_runs=1 if quick else 3, pool=pool, start_method=method)
            cold[name].append(got["cold"]["run_to_first_event_s"])
            warm[name].append(median(w["run_to_first_event_s"] for w in got["warm"]))
            imports.append(got["import_ddlkit_s"])
    base = f"import torch {median(torch_s):.2f} s"
    setting = f"sync, {WORKERS} workers + 1 server (the panel's default)"
    how = {"forkserver": ("fresh worker processes from the forkserver",
                          "the forkserver, torch preloaded, already running"),
           "spawn": ("fresh worker processes started by spawn (macOS, Windows)",
                     "fresh worker processes started by spawn, after one run"),
           "pool": ("ddlkit.runtime.pool.shared_pool(), started by this first run",
                    "ddlkit.runtime.pool.shared_pool(): its workers already running"),
           "spawn pool": ("the shared pool, its workers started by spawn",
                          "the shared pool under spawn: its workers already running")}
    rows = []
    for name in variants:
        row = Row("4", f"run() to first event, cold: {how[name][0]}", setting,
                  value=f"{median(cold[name]):.3f} s", baseline=base,
                  ratio=paired_ratio(cold[name], torch_s), goal=COLD_GOAL)
        row.notes.append(f"cold means a fresh Python process that has imported ddlkit; "
                         f"`import ddlkit` itself took {median(imports):.2f} s more "
                         f"(it imports torch), not counted in the ratio")
        if row.met is False:
            row.notes.append(WHY_SPAWN if name == "spawn" else WHY_COLD)
        rows.append(row)
    for name in variants:
        row = Row("4", f"run() to first event, warm: {how[name][1]}", setting,
                  value=f"{median(warm[name]):.3f} s", baseline=base,
                  ratio=paired_ratio(warm[name], torch_s), goal=WARM_GOAL)
        if name == "spawn":
            row.notes.append(f"spawn ÷ forkserver, warm: "
                             f"{paired_ratio(warm['spawn'], warm['forkserver']):.0f}×; "
                             f"cold: {paired_ratio(cold['spawn'], cold['forkserver']):.1f}×")
            if row.met is False:
                row.notes.append(WHY_SPAWN)
        rows.append(row)
    return rows


if __name__ == "__main__":
    script_main(__doc__, measure)
