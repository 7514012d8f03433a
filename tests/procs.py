"""Process facts for the tests, on every platform: which processes live, and whose children.

Linux answers from ``/proc``. Elsewhere (macOS and Windows in the public CI) ``psutil``
answers if it is installed; without it, liveness falls back to ``os.kill(pid, 0)`` on
POSIX, and descendants to the processes ``multiprocessing`` itself started.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from pathlib import Path

PROC = Path("/proc")
#: how a test kills a process at once (Windows has no SIGKILL; its SIGTERM is TerminateProcess)
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)

try:  # optional: the public CI installs it on macOS and Windows
    import psutil
except ImportError:  # pragma: no cover - present or not, per machine
    psutil = None


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its reaping is pending)."""
    if PROC.is_dir():
        try:
            return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    if psutil is not None:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    if sys.platform == "win32":  # os.kill(pid, 0) would end the process there
        return pid in {p.pid for p in multiprocessing.active_children()}
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def child_pids(parent: int) -> set[int]:
    """PIDs whose parent is ``parent``."""
    if PROC.is_dir():
        out = set()
        for stat in PROC.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == parent:
                out.add(int(stat.parent.name))
        return out
    if psutil is not None:
        try:
            return {c.pid for c in psutil.Process(parent).children()}
        except psutil.Error:
            return set()
    if parent == os.getpid():
        return {p.pid for p in multiprocessing.active_children() if p.pid is not None}
    return set()


def descendants(root: int) -> set[int]:
    """All descendants of ``root``."""
    seen: set[int] = set()
    frontier = [root]
    while frontier:
        kids = child_pids(frontier.pop())
        frontier.extend(kids - seen)
        seen |= kids
    return seen


def infrastructure() -> set[int]:
    """multiprocessing's own long-lived helpers (forkserver, resource tracker) in this
    process, and the panel's warm workers if its shared pool is open."""
    from multiprocessing import forkserver, resource_tracker

    from ddlkit.runtime import pool

    pids = {getattr(forkserver._forkserver, "_forkserver_pid", None),
            getattr(resource_tracker._resource_tracker, "_pid", None)}
    if pool._shared is not None and not pool._shared.closed:  # the panel's warm workers
        pids |= set(pool._shared.pids)
    return {p for p in pids if p}


def leftover_workers() -> set[int]:
    """Descendants of this process other than multiprocessing's helpers."""
    infra = infrastructure()
    return {p for p in descendants(os.getpid()) - infra if running(p)}
