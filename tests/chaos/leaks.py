"""What a run may not leave behind in the process that made it: child processes, open file
descriptors, temporary files.

Take a :class:`Snapshot` before a run and call :func:`leaks_since` after it. The chaos
campaign runs in a temp folder of its own (``make chaos`` sets ``TMPDIR``), so another
program's temp files cannot be taken for a leak; torch's compile cache
(``torchinductor_<user>``) is allowed, as ``make test-portable`` allows it.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

from tests.procs import leftover_workers

FD_DIR = "/proc/self/fd"
#: how long what a run leaves may take to go away before it counts as a leak
SETTLE_S = 3.0
ALLOWED_TEMP_PREFIXES = ("torchinductor_",)


def open_fds() -> dict[int, str]:
    """This process's open file descriptors and what each points to."""
    out = {}
    for name in os.listdir(FD_DIR):
        try:
            out[int(name)] = os.readlink(f"{FD_DIR}/{name}")
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
    return out


def temp_entries() -> set[str]:
    """What the temp folder holds, except torch's compile cache."""
    return {e for e in os.listdir(tempfile.gettempdir())
            if not e.startswith(ALLOWED_TEMP_PREFIXES)}


@dataclass(frozen=True)
class Snapshot:
    """Open file descriptors and temp entries at one moment."""

    fds: dict[int, str]
    temp: set[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(open_fds(), temp_entries())


def leaks_since(before: Snapshot, settle_s: float = SETTLE_S) -> list[str]:
    """What is there now and was not at ``before``: child processes, more file descriptors,
    new temp entries. Each is given ``settle_s`` to go away first."""
    deadline = time.monotonic() + settle_s
    while True:
        found = _differences(before)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _differences(before: Snapshot) -> list[str]:
    found = []
    workers = leftover_workers()
    if workers:
        found.append(f"child processes left running: {sorted(workers)}")
    fds = open_fds()
    if len(fds) > len(before.fds):
        new = sorted(f"{fd}->{target}" for fd, target in fds.items()
                     if before.fds.get(fd) != target)
        found.append(f"{len(fds) - len(before.fds)} more open file descriptors: {new}")
    temp = temp_entries() - before.temp
    if temp:
        found.append(f"left in {tempfile.gettempdir()}: {sorted(temp)}")
    return found
