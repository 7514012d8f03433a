"""2. ddlkit's all-reduce (instrumented gloo call, hand-written ring) against raw gloo.

Usage: python benchmarks/bench_allreduce.py [--quick] [--repeats 7]

At 2 and 4 ranks, for 1e3, 1e5, 1e6 and 1e7 float32s: seconds per sum all-reduce with
``dist.all_reduce`` (the baseline), ddlkit's :meth:`Communicator.all_reduce` and ddlkit's
``ring_all_reduce``, taking turns operation by operation within one set of ranks (see
``ddlkit.bench.jobs.allreduce_timings``). The ratio is raw time ÷ ddlkit time (ddlkit's
speed relative to gloo's; ≥ 1 means ddlkit is as fast or faster): the median over all
pairs of operations timed one right after the other; the times shown are medians.
"""
from __future__ import annotations

import functools

from report import Row, median, paired_ratio, script_main

from ddlkit.bench.jobs import allreduce_timings
from ddlkit.runtime import run_ranks

SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
GOAL_FROM = 100_000
GOAL = ("≥", 0.95)
NAMES = {"comm": "Communicator.all_reduce", "ring": "ring_all_reduce"}
#: what profiling found when a goal is not met (see benchmarks/RESULTS.md)
WHY = {
    "comm": "Communicator.all_reduce is dist.all_reduce plus two clock reads and one "
            "event record (about a microsecond): a shortfall is the machine's noise",
    "ring": "the ring's 2(N-1) exchange rounds run one after another and each waits for "
            "a gloo point-to-point round trip; for large tensors its additions do not "
            "overlap the transfers, as gloo's pipelined all_reduce does",
}


def _ms(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 0.01 else f"{s * 1e3:.1f} ms"


def measure(quick: bool = False, repeats: int = 7) -> list[Row]:
    rows: list[Row] = []
    for world in (2, 4):
        job = functools.partial(allreduce_timings, sizes=list(SIZES), repeats=repeats,
                                warmup=0 if quick else 1, max_burst=3 if quick else 50)
        times = run_ranks(job, world, timeout_s=600.0)[0]
        for way in ("comm", "ring"):
            for n in SIZES:
                t = times[n]
                row = Row(
                    "2", f"{NAMES[way]} vs dist.all_reduce",
                    f"{n:.0e} floats ({4 * n:,} B), {world} ranks",
                    value=_ms(median(t[way])), baseline=f"raw {_ms(median(t['raw']))}",
                    # speed ratio = raw time / ddlkit time, paired operation by operation
                    ratio=paired_ratio(t["raw"], t[way]),
                    goal=GOAL if n >= GOAL_FROM else None)
                if row.met is False:
                    row.notes.append(WHY[way])
                rows.append(row)
    return rows


if __name__ == "__main__":
    script_main(__doc__, measure, default_repeats=7)
