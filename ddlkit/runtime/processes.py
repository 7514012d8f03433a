"""Starting worker processes safely from a notebook kernel.

Plain ``fork`` is never used: children of a parent that has run multi-threaded torch
can hang, and forking while the parent holds a store deadlocks. A forkserver with torch
and ddlkit preloaded starts workers in tens of milliseconds; ``spawn`` is the fallback
where forkserver does not exist. One forkserver serves the whole process, by design of
``multiprocessing``, so it is started once and reused.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from ddlkit.modes import MODES

if TYPE_CHECKING:  # typing only: ForkServerContext does not exist on Windows
    from multiprocessing.context import ForkServerContext, SpawnContext

PRELOAD = ["torch", "torch.distributed", "ddlkit.runtime.worker", "ddlkit.runtime.warm",
           *(mode.module for mode in MODES.values())]  # every strategy


def worker_context() -> ForkServerContext | SpawnContext:
    """The multiprocessing context for workers: a preloaded forkserver, else spawn."""
    if "forkserver" not in mp.get_all_start_methods():
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
    """End processes we started, by PID: SIGTERM, wait, SIGKILL if needed, then reap."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.terminate()
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
