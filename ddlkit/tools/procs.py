"""Which processes this one started, and whether they still run, on every platform.

Linux answers from ``/proc``. Where there is none (macOS, Windows), ``psutil`` answers if
it is installed (it is optional, not a dependency of ddlkit). Without it the answers are
narrower: the children ``multiprocessing`` started, and ``os.kill(pid, 0)`` for liveness
on macOS. On Windows ``os.kill`` ends the process whatever the signal, so there a process
counts as running only while ``multiprocessing`` still lists it.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

#: where Linux lists processes; a test points it at a missing folder to try the fallbacks
PROC = Path("/proc")
#: on Windows ``os.kill(pid, 0)`` is no liveness probe: it ends the process
WINDOWS = sys.platform == "win32"


def _psutil() -> Any:
    """The psutil module, or None where it is not installed."""
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


psutil: Any = _psutil()


def source() -> str:
    """Where the answers come from here: ``/proc``, ``psutil`` or ``multiprocessing``."""
    if PROC.is_dir():
        return "/proc"
    return "psutil" if psutil is not None else "multiprocessing"


def _mp_children() -> dict[int, str]:
    """PID → name of the live children ``multiprocessing`` started (it reaps ended ones)."""
    return {p.pid: p.name for p in multiprocessing.active_children() if p.pid is not None}


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its reaping is pending)."""
    if PROC.is_dir():
        try:
            return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    if psutil is not None:
        try:
            return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False
    if WINDOWS:  # os.kill(pid, 0) would end the process there
        return pid in _mp_children()
    try:
        os.kill(pid, 0)
    except OSError:  # ProcessLookupError: gone; PermissionError: not ours, so not our child
        return False
    return True


def child_pids(parent: int) -> set[int]:
    """PIDs whose parent is ``parent`` (without /proc or psutil: only this process's
    multiprocessing children)."""
    if PROC.is_dir():
        out = set()
        for stat in PROC.glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    out.add(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue
        return out
    if psutil is not None:
        try:
            return {c.pid for c in psutil.Process(parent).children()}
        except psutil.Error:
            return set()
    return set(_mp_children()) if parent == os.getpid() else set()


def descendants(root: int) -> set[int]:
    """All descendants of ``root``: children, their children, and so on."""
    seen: set[int] = set()
    frontier = [root]
    while frontier:
        kids = child_pids(frontier.pop()) - seen
        frontier.extend(kids)
        seen |= kids
    return seen


def command(pid: int, width: int = 60) -> str:
    """The command line of ``pid``, cut to ``width`` characters (``?`` if unknown)."""
    text = ""
    if PROC.is_dir():
        try:
            raw = (PROC / str(pid) / "cmdline").read_bytes()
            text = raw.replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            pass
    elif psutil is not None:
        try:
            text = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            pass
    else:
        text = _mp_children().get(pid, "")
    return text.strip()[:width] or "?"
