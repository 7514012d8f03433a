"""Starting worker processes safely from a notebook kernel, on every platform.

Plain ``fork`` is never used: children of a parent that has run multi-threaded torch
can hang, and forking while the parent holds a store deadlocks. Two start methods are:

- ``forkserver`` (Linux's default here): a server process with torch and ddlkit
  preloaded forks each worker, in tens of milliseconds once it runs. One forkserver
  serves the whole process, by design of ``multiprocessing``, so it is started once.
- ``spawn`` (the default on macOS and Windows): a fresh interpreter per worker, which
  imports torch itself (about a second). Windows has no forkserver; on macOS, forking
  a process that has loaded Apple's system frameworks is unsafe, which is why Python
  itself defaults to spawn there.

The environment variable ``DDLKIT_START_METHOD=forkserver|spawn`` overrides the
choice; :func:`start_method` says which one is in use and why.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

from ddlkit.errors import ConfigError, OversubscribedWarning
from ddlkit.modes import MODES

if TYPE_CHECKING:  # typing only: ForkServerContext does not exist on Windows
    from multiprocessing.context import ForkServerContext, SpawnContext

PRELOAD = ["torch", "torch.distributed", "ddlkit.runtime.worker", "ddlkit.runtime.warm",
           *(mode.module for mode in MODES.values())]  # every strategy


#: the environment variable that overrides the start method
START_METHOD_ENV = "DDLKIT_START_METHOD"
START_METHODS = ("forkserver", "spawn")


def default_start_method(platform: str = sys.platform) -> str:
    """The start method ddlkit uses on ``platform`` unless told otherwise."""
    if platform.startswith("linux") and "forkserver" in mp.get_all_start_methods():
        return "forkserver"
    return "spawn"


def start_method() -> str:
    """The start method for workers: ``$DDLKIT_START_METHOD`` if set, else the default.

    An unknown value, or ``forkserver`` where the platform has none, is a ConfigError
    naming the variable, raised before any process starts."""
    chosen = os.environ.get(START_METHOD_ENV, "").strip()
    if not chosen:
        return default_start_method()
    if chosen not in START_METHODS:
        raise ConfigError(START_METHOD_ENV, chosen,
                          f"one of {', '.join(START_METHODS)}, or unset for this "
                          f"platform's default ({default_start_method()})")
    if chosen not in mp.get_all_start_methods():
        raise ConfigError(START_METHOD_ENV, chosen,
                          f"{sys.platform} has no {chosen} start method; use spawn")
    return chosen


def worker_context() -> ForkServerContext | SpawnContext:
    """The multiprocessing context for workers (see :func:`start_method`)."""
    if start_method() == "spawn":
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    from multiprocessing import forkserver

    # Only the first call starts the server; later calls find it running and return.
    ctx.set_forkserver_preload(PRELOAD)
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # children inherit the forkserver's environment
    # Start it with SIGINT ignored, so a Ctrl-C while it imports torch cannot kill it
    # (it ignores SIGINT itself only after preloading); workers restore the default.
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        forkserver.ensure_running()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, old)
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    return ctx


def stop_processes(procs: list[Any], grace_s: float = 2.0) -> None:
    """End processes we started, by PID: SIGTERM, wait, SIGKILL if needed, then reap.

    A stopped process (SIGSTOP, Ctrl-Z) holds a SIGTERM until it runs again, so each one
    is also sent SIGCONT: it then ends at once instead of after the grace period."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.terminate()
            if hasattr(signal, "SIGCONT"):  # POSIX only; Windows has no stopped processes
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except OSError:  # it ended meanwhile
                    pass
    for p in procs:
        if p.pid is None:
            continue
        p.join(grace_s)
        if p.is_alive():
            p.kill()
            p.join(grace_s)
    for p in procs:
        if p.pid is not None and not p.is_alive():
            p.close()


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def warn_if_oversubscribed(processes: int, cores: int | None = None) -> None:
    """Warn, in one line, when ``processes`` exceed the cores: the run still works, but the
    processes take turns on the cores, so its timings are not a parallel machine's."""
    cores = usable_cores() if cores is None else cores
    if processes > cores:
        warnings.warn(
            f"{processes} processes share {cores} CPU core{'s' if cores != 1 else ''}: the "
            f"run works, but they take turns, so its times and samples/s are slower and "
            f"noisier than with a core each (bytes, messages and losses are unaffected).",
            OversubscribedWarning, stacklevel=3)
