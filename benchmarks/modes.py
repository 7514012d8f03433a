"""Throughput of each mode at 2 and 4 workers, against one process, measured in one run.

Usage: python benchmarks/modes.py [--steps 300] [--repeats 3]

Prints, per mode and worker count, the median of ``--repeats`` runs of:
- steady samples/s (between the first and the last evaluation, so start-up is excluded);
- the ratio to a single process training the same model on batches of the same size;
- the time from ``run()`` to the first event (cold for the very first run, then warm).
On a 2-core laptop every distributed set-up is slower than one process: the point is
the ratios and the breakdowns, not a speed-up.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import ddlkit
from ddlkit.data import load_dataset
from ddlkit.train.models import build_model, loss_fn


def single_process(steps: int, batch: int) -> float:
    """Samples/s of a plain loop: same MLP, same batch size, one process, one thread."""
    torch.set_num_threads(1)
    data = load_dataset("digits")
    model = build_model("mlp", data.info, 64, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, data.info.n_train, (batch,), generator=g)
        opt.zero_grad()
        loss_fn(data.info, model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def steady_rate(result: ddlkit.RunResult) -> float:
    first, last = result.history[0], result.history[-1]
    return (last["samples"] - first["samples"]) / (last["t"] - first["t"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    t = time.perf_counter()
    cold = ddlkit.run(ddlkit.Experiment(mode="sync", workers=2, steps=5))
    print(f"cold start: run() to first event {cold.first_event_s:.2f} s "
          f"(whole call {time.perf_counter() - t:.2f} s)")
    base = statistics.median(single_process(args.steps, 32) for _ in range(args.repeats))
    print(f"one process, batch 32: {base:,.0f} samples/s")
    print(f"{'mode':<16}{'W':>3}{'samples/s':>12}{'× one proc':>12}{'first event s':>15}")
    for mode, impl in [("sync", "ring"), ("async", "ring"), ("allreduce", "ring"),
                       ("allreduce", "gloo")]:
        for workers in (2, 4):
            exp = ddlkit.Experiment(mode=mode, workers=workers, steps=args.steps,
                                    eval_every=args.steps, allreduce_impl=impl)
            runs = [ddlkit.run(exp) for _ in range(args.repeats)]
            rate = statistics.median(steady_rate(r) for r in runs)
            first = statistics.median(r.first_event_s for r in runs)
            name = f"{mode}({impl})" if mode == "allreduce" else mode
            print(f"{name:<16}{workers:>3}{rate:>12,.0f}{rate / base:>12.2f}{first:>15.3f}")


if __name__ == "__main__":
    main()
