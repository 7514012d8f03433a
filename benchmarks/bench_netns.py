"""A real network against ddlkit's emulation and the α–β model (Linux, as root).

Usage: python benchmarks/bench_netns.py [--hidden 4096] [--steps 12] [--rate 100] [--delay 1]
       [--repeats 1]

Two network namespaces joined by a veth pair, each end shaped with tc (tbf at --rate
Mbit/s, netem's --delay ms where the kernel has netem), one torchrun agent in each;
the same experiment under ddlkit's sleeping emulation at the link's measured α and the
tbf rate; and the α–β prediction (Hockney 1994; Thakur, Rabenseifner & Gropp 2005) from
the real run's compute. Prints the table ``tests/test_netns.py`` prints, once per
repetition, with the machine's load (see :mod:`ddlkit.bench.netns`). Not part of
``run_all.py``: it needs root. Everything it makes is removed, even after an error.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import torch

from ddlkit import Experiment
from ddlkit.bench import netns


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=4096, help="MLP hidden units (model size)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rate", type=float, default=100.0, help="tbf rate, Mbit/s")
    ap.add_argument("--delay", type=float, default=1.0,
                    help="netem delay each way, ms (only where the kernel has netem)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    why_not = netns.unavailable()
    if why_not:
        print(f"not measured: {why_not}", file=sys.stderr)
        return 2
    exp = Experiment(mode="allreduce", workers=2, dataset="digits", model="mlp",
                     hidden=args.hidden, steps=args.steps, eval_every=args.steps,
                     timeout_s=120.0)
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
          f"{os.cpu_count()} cores, Linux {platform.release()}, python "
          f"{platform.python_version()}, torch {torch.__version__}")
    for _ in range(max(1, args.repeats)):
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        comparison = netns.validate(exp, rate_mbit=args.rate, delay_ms=args.delay)
        print(f"\nload average (1 / 5 / 15 min) at start: {load}")
        print(comparison.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
