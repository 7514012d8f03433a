"""Run every ddlkit benchmark, print one table and write benchmarks/RESULTS.md.

Usage: python benchmarks/run_all.py [--quick] [--repeats N] [--out benchmarks/RESULTS.md]
       (or: make bench, make bench QUICK=1)

Each figure is a ratio against a baseline measured in this same run, on the same model,
batch and world size, the median of ``--repeats`` repetitions (default 3, 7 for the
all-reduce timings). ``--quick``
runs one repetition of tiny sizes and skips the notebook suite and Ray: a smoke test of
the suite (under a minute), not a measurement. The measurements, one script each:

1. bench_training.py   ddlkit allreduce vs torch DDP, training samples/s
2. bench_allreduce.py  ddlkit's all-reduce vs raw dist.all_reduce
3. bench_async.py      ddlkit async parameter server vs a Ray actor parameter server
4. bench_startup.py    run() to the first event, cold and warm, vs import torch
5. bench_notebooks.py  the nbval notebook suite's wall time
6. bench_memory.py     peak memory per worker and for an 8-worker run
7. bench_cost_model.py measured step time vs the α–β prediction (sync PS, ring; N = 2..4)
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_allreduce  # noqa: E402
import bench_cost_model  # noqa: E402
import bench_memory  # noqa: E402
import bench_notebooks  # noqa: E402
import bench_startup  # noqa: E402
from report import (  # noqa: E402
    Row,
    machine_facts,
    measure_in_subprocess,
    results_markdown,
    skipped,
    text_table,
)

Measure = Callable[[bool, int], "list[Row]"]


def in_subprocess(script: str) -> Measure:
    """Run ``script`` in a fresh Python process: its own forkserver and environment.

    bench_training.py gives its forkserver an extra preload for DDP, and Ray changes the
    environment of the process that starts it; neither may leak into other measurements.
    """
    return lambda quick, repeats: measure_in_subprocess(HERE / script, quick, repeats)


#: number, name, script, how to measure, default repetitions
SUITE: list[tuple[str, str, str, Measure, int]] = [
    ("1", "ddlkit allreduce vs torch DDP", "bench_training.py",
     in_subprocess("bench_training.py"), 3),
    ("2", "ddlkit all-reduce vs dist.all_reduce", "bench_allreduce.py",
     bench_allreduce.measure, 7),
    ("3", "async PS vs Ray actor PS", "bench_async.py", in_subprocess("bench_async.py"), 3),
    ("4", "run() to first event vs import torch", "bench_startup.py", bench_startup.measure, 3),
    ("5", "nbval notebook suite", "bench_notebooks.py", bench_notebooks.measure, 1),
    ("6", "peak memory", "bench_memory.py", bench_memory.measure, 3),
    ("7", "step time vs the α–β prediction", "bench_cost_model.py",
     bench_cost_model.measure, 3),
]


def how_measured(number: str, script: str) -> str:
    """One Markdown paragraph from the script's docstring: what it measures, and how."""
    doc = ast.get_docstring(ast.parse((HERE / script).read_text(encoding="utf-8"))) or ""
    paragraphs = [p for p in doc.split("\n\n") if p.strip()]
    body = [p for p in paragraphs[1:] if not p.startswith("Usage:")][:1]
    text = " ".join([paragraphs[0].strip(), *body]).replace("\n", " ") if paragraphs else ""
    text = re.sub(r"^\d+\.\s*", "", text)  # the number is in the bold prefix
    text = re.sub(r":(?:func|mod|meth|class|data):`([^`]+)`", r"`\1`", text).replace("``", "`")
    return f"- **{number}** (`benchmarks/{script}`): {text}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 repetition, tiny sizes, no notebooks or Ray (< 1 min)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="repetitions per figure, for the median (default: 3; 7 for the "
                         "cheap all-reduce timings; the notebook suite runs once)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--only", default="", help="comma-separated measurement numbers, e.g. 1,2")
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    load_start, t0 = os.getloadavg(), time.perf_counter()
    rows: list[Row] = []
    used: dict[str, int] = {}
    failed = False
    how: list[str] = []
    for number, name, script, measure, default_repeats in SUITE:
        if only and number not in only:
            continue
        repeats = used[number] = 1 if args.quick else max(1, args.repeats or default_repeats)
        print(f"[{time.perf_counter() - t0:6.1f} s] {number}. {name} ...", flush=True)
        how.append(how_measured(number, script))
        try:
            rows += measure(args.quick, repeats)
        except Exception as err:  # noqa: BLE001 - one broken benchmark must not hide the rest
            failed = True
            traceback.print_exc()
            rows.append(skipped(number, name, "—", f"failed: {type(err).__name__}: {err}"[:200]))
    elapsed = time.perf_counter() - t0
    facts = machine_facts(load_start, os.getloadavg(), elapsed, args.quick, used)
    print()
    print(text_table(rows))
    print()
    print("\n".join(f.removeprefix("- ") for f in facts))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(results_markdown(rows, facts, how), encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
