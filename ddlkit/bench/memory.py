"""Peak memory of processes, read from Linux's /proc while they run.

``VmHWM`` in ``/proc/<pid>/status`` is a process's peak resident set (RSS) so far. A
forkserver child shares the pages it inherited (torch, the datasets) with the server
and its siblings, so RSS counts those pages once per worker; ``Pss`` in
``/proc/<pid>/smaps_rollup`` splits each shared page among the processes sharing it, so
the PSS of all processes adds up to what the machine really spends.

macOS and Windows have no /proc: there :func:`unavailable` says so, the readings are None
and :class:`PeakSampler` refuses to start with :class:`MemoryUnavailable`.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

KB = 1024
#: where Linux lists processes; a test points it at a missing folder
PROC = Path("/proc")


class MemoryUnavailable(RuntimeError):
    """This platform has no /proc, so per-process peak memory cannot be measured here."""


def unavailable() -> str | None:
    """Why memory cannot be measured on this platform, or None where it can."""
    if PROC.is_dir():
        return None
    return (f"peak memory is read from Linux's /proc, which this platform ({sys.platform}) "
            "does not have: the measurement is unavailable here")


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_bytes(pid: int) -> int | None:
    """Peak RSS of a live process so far (None if it is gone, or there is no /proc)."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb * KB


def pss_bytes(pid: int) -> int | None:
    """Current proportional set size of a live process (None if it is gone, or there is
    no /proc)."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * KB
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakSampler:
    """Samples the peak RSS and the largest PSS of a growing set of processes.

    :meth:`watch` adds a PID (for example from a run's ``RankReady`` event); a
    background thread reads /proc every ``interval_s`` until :meth:`stop`. The last
    reading before a process exits is kept, so sample often for short-lived processes.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        reason = unavailable()
        if reason is not None:
            raise MemoryUnavailable(reason)
        self.interval_s = interval_s
        self.peak_rss: dict[int, int] = {}
        self.peak_pss: dict[int, int] = {}
        self._pids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ddlkit-bench-memory",
                                        daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)
        self._sample(pid)

    def _sample(self, pid: int) -> None:
        rss, pss = peak_rss_bytes(pid), pss_bytes(pid)
        with self._lock:
            if rss is not None:
                self.peak_rss[pid] = max(rss, self.peak_rss.get(pid, 0))
            if pss is not None:
                self.peak_pss[pid] = max(pss, self.peak_pss.get(pid, 0))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                pids = list(self._pids)
            for pid in pids:
                self._sample(pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
