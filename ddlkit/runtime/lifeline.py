"""The parent channel: how a worker process learns, on any platform, that its parent is gone.

A worker must not outlive the kernel that started it: a worker blocked inside gloo would
otherwise run on until gloo's timeout, holding a core and a port. Each worker therefore
gets the read end of a pipe (its *lifeline*) whose write end only the parent holds. The
operating system closes that end when the parent dies, however it dies, and the worker's
watchdog thread, blocked reading the pipe, sees end-of-file and ends the process. This
works with every start method, on Linux, macOS and Windows (where ``Pipe`` is a named pipe).

Where Linux offers ``os.pidfd_open`` (kernel 5.3 and later) the watchdog also waits on a
pidfd of the parent. A pipe's end survives in any process that inherited it, for example
a child the kernel forked for some other reason; a pidfd fires when the parent itself
exits, whatever became of its file descriptors. Either signal ends the worker.

The same channel carries the worker's **heartbeat** the other way: a thread sends one
byte every :data:`HEARTBEAT_S` seconds for as long as the process can run at all. A busy
process still beats (the thread needs the GIL for microseconds, and gloo and torch release
it); a stopped one (SIGSTOP, Ctrl-Z) or one starved by swapping does not. The parent reads
the beats (:mod:`ddlkit.runtime.liveness`) to tell a frozen rank from a slow one.
"""
from __future__ import annotations

import os
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

#: the exit code of a worker ended by its watchdog
ORPHAN_EXIT_CODE = 70
#: seconds between two heartbeats of a worker
HEARTBEAT_S = 0.5
BEAT = b"\x01"


def pair(ctx: Any) -> tuple[Connection, Connection]:
    """A new lifeline: ``(parent_end, worker_end)``, a two-way pipe. The parent keeps
    ``parent_end`` open for as long as the worker may live and reads the heartbeats from it,
    passes ``worker_end`` to the worker process, and closes its own copy of ``worker_end``
    once the process has started."""
    parent_end, worker_end = ctx.Pipe(duplex=True)
    return parent_end, worker_end


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where this system has no ``os.pidfd_open``.

    Raises ProcessLookupError if ``pid`` has already exited."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except ProcessLookupError:
        raise
    except OSError:  # e.g. a sandbox that forbids the call: the pipe still works
        return None


def watch_parent(parent_pid: int, lifeline: Connection) -> None:
    """Start the watchdog, which ends this process (``os._exit``) as soon as the parent is
    gone, and the heartbeat. Called once, early, in every worker process."""
    try:
        pidfd = open_pidfd(parent_pid)
    except ProcessLookupError:
        os._exit(ORPHAN_EXIT_CODE)

    def watch() -> None:
        wait_until_gone(lifeline, pidfd)
        os._exit(ORPHAN_EXIT_CODE)

    def beat() -> None:
        while True:
            try:
                lifeline.send_bytes(BEAT)
            except (OSError, ValueError):  # the parent is gone: the watchdog ends us
                return
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=watch, name="ddlkit-parent-watchdog", daemon=True).start()
    threading.Thread(target=beat, name="ddlkit-heartbeat", daemon=True).start()


def wait_until_gone(lifeline: Connection, pidfd: int | None = None) -> None:
    """Block until the lifeline reaches end-of-file or the pidfd fires."""
    watched: list[Any] = [lifeline] if pidfd is None else [lifeline, pidfd]
    while True:
        for ready in wait(watched):
            if isinstance(ready, int):  # the pidfd: the parent has exited
                return
            try:
                lifeline.recv()  # a message: not an ending
            except (EOFError, OSError):
                return
