"""6. Peak memory per worker, and for a whole run at 8 workers.

Usage: python benchmarks/bench_memory.py [--quick] [--repeats 3]

An 8-worker ``allreduce`` run on the digits MLP, while a sampler reads each worker's
/proc every 10 ms (see :mod:`ddlkit.bench.memory`): the peak RSS of each worker (pages
shared with the forkserver count in full for every worker), and, for the whole run, the
peak PSS of the workers plus the forkserver (shared pages split among their sharers: what
the machine really spends). The baseline is the peak RSS of ``python -c "import torch"``,
once for a worker and eight times for the run (what eight freshly spawned workers would
need at the least). There is no goal: these rows are information.
"""
from __future__ import annotations

import subprocess
import sys
from multiprocessing import forkserver

from report import Row, median, paired_ratio, script_main, skipped

import ddlkit
from ddlkit.bench.memory import PeakSampler, pss_bytes, unavailable
from ddlkit.runtime.live import RankReady

WORKERS = 8
MB = 1e6


def import_torch_rss() -> int:
    """Peak RSS in bytes of a fresh ``python -c "import torch"``."""
    code = "import resource, torch; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) * 1024


def run_sampled(steps: int) -> tuple[list[int], int]:
    """(peak RSS of each worker, peak PSS of workers + forkserver) for one 8-worker run."""
    sampler = PeakSampler()
    pids: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, RankReady):
            pids.append(event.pid)
            sampler.watch(event.pid)

    try:
        ddlkit.run(ddlkit.Experiment(mode="allreduce", workers=WORKERS, steps=steps,
                                     eval_every=steps), on_event=on_event)
    finally:
        sampler.stop()
    server = forkserver._forkserver._forkserver_pid
    server_pss = (pss_bytes(server) or 0) if server else 0
    rss = [sampler.peak_rss[p] for p in pids if p in sampler.peak_rss]
    return rss, sum(sampler.peak_pss.get(p, 0) for p in pids) + server_pss


def measure(quick: bool = False, repeats: int = 3) -> list[Row]:
    setting = f"allreduce, {WORKERS} workers, MLP 64-64-10"
    reason = unavailable()
    if reason is not None:  # macOS, Windows: no /proc
        return [skipped("6", "peak memory", setting, reason)]
    base: list[int] = []
    per_worker: list[float] = []
    whole: list[float] = []
    for _ in range(repeats):
        base.append(import_torch_rss())
        rss, pss = run_sampled(steps=20 if quick else 200)
        per_worker.append(median(rss))
        whole.append(pss)
    b = median(base)
    return [
        Row("6", "peak RSS per worker", setting, value=f"{median(per_worker) / MB:.0f} MB",
            baseline=f"import torch {b / MB:.0f} MB", ratio=paired_ratio(per_worker, base)),
        Row("6", "peak memory of the whole run (Σ PSS: workers + forkserver)", setting,
            value=f"{median(whole) / MB:.0f} MB",
            baseline=f"{WORKERS} × import torch {WORKERS * b / MB:.0f} MB",
            ratio=paired_ratio(whole, [WORKERS * x for x in base])),
    ]


if __name__ == "__main__":
    script_main(__doc__, measure)
