"""A crashed parent (a dead kernel) leaves no worker behind: each worker's watchdog ends it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its reaping is pending)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_workers_exit_when_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 3, line
        assert all(map(running, pids))
        os.kill(parent.pid, signal.SIGKILL)  # the "kernel" dies without cleaning up
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
