"""Shared fixtures: every test must leave no child process behind."""
from __future__ import annotations

import os
import time

import pytest
from procs import child_pids, leftover_workers


@pytest.fixture(scope="session", autouse=True)
def shared_pool_closes_cleanly():
    """At the end of the session the panel's shared pool closes and leaves nothing."""
    yield
    from ddlkit.runtime import pool

    if pool._shared is not None:
        pool._shared.close()
    deadline = time.monotonic() + 5.0
    while leftover_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftover_workers(), f"left after the session: {sorted(leftover_workers())}"


@pytest.fixture
def no_process_started():
    """Fail if the test started a child process (validation must come before any start)."""
    before = child_pids(os.getpid())
    yield
    assert child_pids(os.getpid()) <= before, "a process was started"


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """Fail any test that leaves a worker (or any other child) running."""
    yield
    deadline = time.monotonic() + 3.0
    left = leftover_workers()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leftover_workers()
    assert not left, f"processes left behind: {sorted(left)}"
