"""Chaos soak (issue 15): seeded runs in every mode, each with one rank killed or stopped from
outside at a random moment, start-up included. Run it with ``make chaos`` (CI runs it after
``make soak``); repeat one run with ``make chaos SEED=<seed>``.

Every run prints one line: its seed, how it started (warm, or cold in a fresh process), the
mode and settings, the signal, the victim and the moment, then how it ended, how soon the
hit was detected and the verdict (:mod:`.verdict`). At the end a table per mode, and the
summary as JSON (``$CHAOS_OUT``). Any hang, wrong blame, wrong outcome, slow detection,
missing record or leak fails the test.

Environment: ``CHAOS_RUNS`` (200) seeds from ``CHAOS_SEED0`` (0), or exactly the seeds in
``CHAOS_ONLY`` (``12,40``); ``CHAOS_OUT``, where the JSON summary goes.
"""
from __future__ import annotations

import faulthandler
import os
import shutil
import time
from pathlib import Path

import pytest

import ddlkit
from tests.chaos import summary
from tests.chaos.cold import run_cold
from tests.chaos.leaks import Snapshot, leaks_since
from tests.chaos.plan import TIMEOUT_S, plan
from tests.chaos.trial import observe
from tests.chaos.verdict import judge

pytestmark = pytest.mark.chaos
#: how long one run in this process may take before the stacks of every thread are printed
DUMP_AFTER_S = TIMEOUT_S + 60.0


def chosen_seeds() -> list[int]:
    """``CHAOS_ONLY``'s seeds, or ``CHAOS_RUNS`` seeds from ``CHAOS_SEED0``."""
    only = os.environ.get("CHAOS_ONLY", "").replace(",", " ").split()
    if only:
        return [int(s) for s in only]
    first = int(os.environ.get("CHAOS_SEED0", "0"))
    return list(range(first, first + int(os.environ.get("CHAOS_RUNS", "200"))))


def one_run(seed: int, workdir: Path) -> summary.Row:
    """Plan, make and judge the run for ``seed``; print its line."""
    case = plan(seed)
    print(case.describe(), end=" ", flush=True)
    record_dir = workdir / f"seed{seed}"
    before = Snapshot.take()
    started = time.perf_counter()
    faulthandler.dump_traceback_later(DUMP_AFTER_S)
    try:
        obs = run_cold(case, record_dir) if case.cold else observe(case, record_dir)
    finally:
        faulthandler.cancel_dump_traceback_later()
    wall = time.perf_counter() - started
    obs.leaks += leaks_since(before)
    row = summary.Row(case, obs, judge(case, obs), wall)
    print(row.line(), flush=True)
    shutil.rmtree(record_dir, ignore_errors=True)
    return row


@pytest.mark.timeout(3600)
def test_chaos(tmp_path: Path) -> None:
    seeds = chosen_seeds()
    out = Path(os.environ.get("CHAOS_OUT") or tmp_path / "chaos-summary.json")
    # warm-up: the forkserver (and its socket) exist from here on, as in a notebook
    ddlkit.run(ddlkit.Experiment(dataset="iris", model="linear", steps=2, batch_size=8))
    print(f"\nchaos: {len(seeds)} runs", flush=True)
    started = time.perf_counter()
    rows = [one_run(seed, tmp_path) for seed in seeds]
    numbers = summary.summarise(rows, time.perf_counter() - started)
    summary.write(numbers, out)
    print(summary.table(numbers))
    print(f"chaos: summary written to {out}", flush=True)
    failed = [r.case.seed for r in rows if not r.verdict.ok]
    assert not failed, f"chaos: {len(failed)} runs failed, seeds {failed} (see above)"
