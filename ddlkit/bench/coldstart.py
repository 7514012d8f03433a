"""Time from ``ddlkit.run()`` to its first event, in a fresh process and then warm.

Usage: ``python -m ddlkit.bench.coldstart [--workers 4] [--warm 3] [--pool]``. Prints
one JSON object: the seconds to ``import ddlkit`` (only when started as
``python -c COMMAND``: ``-m`` imports ddlkit before this module starts), then for the
first run in this process (cold: nothing started yet) and for ``--warm`` later runs the
time from calling ``run()`` to the first live event (a rank has joined), measured here
around the call, and the run's own ``first_event_s``. With ``--pool`` the runs use the
kernel's shared warm worker pool, as the panel does (the cold run includes starting
it); without, each run starts fresh worker processes from the forkserver.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

import ddlkit

#: ``python -c COMMAND [options]`` also times ``import ddlkit`` in the fresh process
COMMAND = ("import sys, time; t = time.perf_counter(); import ddlkit; "
           "t = time.perf_counter() - t; from ddlkit.bench import coldstart; "
           "coldstart.main(sys.argv[1:], import_s=t)")


def run_to_first_event(exp: ddlkit.Experiment, use_pool: bool) -> dict[str, float]:
    """Seconds from calling ``run(exp)`` to its first ``on_event`` call (with ``use_pool``,
    from getting the shared pool, which the first call starts)."""
    first: list[float] = []

    def on_event(_event: Any) -> None:
        if not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    if use_pool:
        from ddlkit.runtime.pool import shared_pool

        result = ddlkit.run(exp, on_event=on_event, pool=shared_pool())
    else:
        result = ddlkit.run(exp, on_event=on_event)
    return {"run_to_first_event_s": first[0] - t0,
            "first_event_s": float(result.first_event_s or 0.0),
            "wall_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None, import_s: float | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--mode", default="sync")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--pool", action="store_true", help="use ddlkit's shared warm pool")
    args = ap.parse_args(argv)
    exp = ddlkit.Experiment(mode=args.mode, workers=args.workers, steps=args.steps,
                            eval_every=args.steps)
    out: dict[str, Any] = {"import_ddlkit_s": import_s}
    out["cold"] = run_to_first_event(exp, args.pool)
    out["warm"] = [run_to_first_event(exp, args.pool) for _ in range(args.warm)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
