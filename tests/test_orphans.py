"""A crashed parent (a dead kernel) leaves no worker behind: each worker's watchdog ends it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from procs import KILL, running

SCRIPT = """
import sys, ddlkit
from ddlkit.runtime.live import RankReady, Progress
pids = []
def hook(e):
    if isinstance(e, RankReady):
        pids.append(e.pid)
    if isinstance(e, Progress) and len(pids) == 3:
        print(" ".join(map(str, pids)), flush=True)
        pids.append(-1)
if __name__ == "__main__":
    ddlkit.run(ddlkit.Experiment(mode="sync", workers=2, dataset="digits", steps=10**6,
                                 worker_delays=[0.01, 0.01]), on_event=hook)
"""


@pytest.mark.portable
def test_workers_exit_when_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(SCRIPT)
    # The killed "kernel" cannot remove its multiprocessing temp folder: keep it in tmp_path.
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        line = parent.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 3, line
        assert all(map(running, pids))
        os.kill(parent.pid, KILL)  # the "kernel" dies without cleaning up
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(running, pids)):
            time.sleep(0.05)
        left = [p for p in pids if running(p)]
        assert not left, f"workers outlived their parent: {left}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
