"""3. ddlkit ``async`` parameter server against an actor-based one written with Ray.

Usage: python benchmarks/bench_async.py [--quick] [--repeats 3]

Server updates per second, steady (start-up excluded), at 2 and 4 workers on the digits
MLP (64-64-10, batch 32, SGD lr 0.1). ddlkit's rate is taken between its first and
last evaluation rows (each row carries the server's update count; the evaluation's own
time is taken out, see :func:`ddlkit.bench.rates.steady_rate`); Ray's between the
server actor's update after the warm-up and its last. Ray is optional
(``pip install -e '.[bench]'``); without it, or with --quick (Ray alone takes 30 s or
more to start on a busy 2-core machine), the Ray rows say "not measured".
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Any

from report import Row, median, paired_ratio, script_main

import ddlkit
from ddlkit.bench import ray_ps
from ddlkit.bench.rates import steady_rate

GOAL = ("≥", 2.0)
RAY_WARMUP = 10
#: what profiling found when the goal is not met (see benchmarks/RESULTS.md)
WHY = ("each update is a latency-bound round trip: the worker's gloo send, the server's "
       "inbox thread handing it to the main thread, the reply's gloo send; a gloo "
       "send/recv round trip of this 19 KB message costs several times a "
       "multiprocessing Pipe's, and 3-5 processes share 2 cores")


def ddlkit_updates_per_s(workers: int, steps: int) -> float:
    """Steady server updates/s of one ddlkit async run (``steps`` × ``workers`` updates)."""
    result = ddlkit.run(ddlkit.Experiment(mode="async", workers=workers, steps=steps,
                                          eval_every=steps))
    return steady_rate(result, "updates")


def measure(quick: bool = False, repeats: int = 3) -> list[Row]:
    reason = "--quick: Ray takes 30 s or more to start" if quick else ray_ps.available()
    ray: Any = None
    ray_dir = None
    if reason is None:
        import ray

        # Ray's session files (logs, sockets) go to a folder of our own, removed at the end.
        ray_dir = tempfile.mkdtemp(prefix="ddlkit-ray-")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _temp_dir=ray_dir)
    rows: list[Row] = []
    try:
        for workers in (2, 4):
            steps = 20 if quick else (300 if workers == 2 else 150)
            ours: list[float] = []
            theirs: list[float] = []
            setting = f"MLP 64-64-10, {workers} workers + 1 server, batch 32"
            if reason is not None:
                ours = [ddlkit_updates_per_s(workers, steps) for _ in range(repeats)]
                rows.append(Row("3", "async PS updates/s vs Ray actor PS", setting,
                                value=f"{median(ours):,.0f}/s", goal=GOAL,
                                not_measured=reason))
                continue
            with ray_ps.RayParameterServer(workers) as ps:
                for _ in range(repeats):
                    ours.append(ddlkit_updates_per_s(workers, steps))
                    theirs.append(ps.updates_per_s(steps, RAY_WARMUP))
            row = Row("3", "async PS updates/s vs Ray actor PS", setting,
                      value=f"{median(ours):,.0f}/s", baseline=f"Ray {median(theirs):,.0f}/s",
                      ratio=paired_ratio(ours, theirs), goal=GOAL)
            if row.met is False:
                row.notes.append(WHY)
            rows.append(row)
    finally:
        if ray is not None:
            ray.shutdown()
        if ray_dir is not None:
            shutil.rmtree(ray_dir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    script_main(__doc__, measure)
