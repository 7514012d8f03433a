"""Soak: 100 back-to-back short runs in one process leave nothing behind.

No process, no open file descriptor and no temporary file may accumulate. Run it with
``make soak`` (CI runs it after ``make test``); it prints its numbers.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import pytest

import ddlkit
from tests.procs import leftover_workers

pytestmark = pytest.mark.soak
RUNS = 100
MODES = ("sync", "async", "allreduce")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def temp_entries() -> set[str]:
    return set(os.listdir(tempfile.gettempdir()))


def test_hundred_runs_leave_nothing(tmp_path: Path) -> None:
    exp = ddlkit.Experiment(workers=3, dataset="iris", model="linear", steps=10, batch_size=8,
                            eval_every=10)
    ddlkit.run(exp)  # warm-up: the forkserver (and its socket) exist from here on
    fds, temps = open_fds(), temp_entries()
    times = []
    for i in range(RUNS):
        t = time.perf_counter()
        result = ddlkit.run(exp.replace(mode=MODES[i % 3], seed=i),
                            record_dir=tmp_path / f"r{i}" if i % 10 == 0 else None)
        times.append(time.perf_counter() - t)
        assert result.status == "ok", (i, result.error)
    time.sleep(0.2)
    assert not leftover_workers()
    assert open_fds() == fds, f"file descriptors: {fds} before, {open_fds()} after"
    assert temp_entries() <= temps, f"left in {tempfile.gettempdir()}: {temp_entries() - temps}"
    print(f"\nsoak: {RUNS} runs, median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s, total {sum(times):.1f} s, fds steady at {fds}")
