"""The set-up check: can this machine run the course?

``ddlkit.tools.doctor.check()`` runs every check a learner needs on a fresh laptop, each on its
own, and returns a :class:`Report` with one row per check: the platform, Python, torch,
gloo, the worker start method, a free port on 127.0.0.1, workers that start and talk, a
tiny real training run, and that nothing is left running afterwards. A check that fails is
reported with what went wrong and a hint of what to do, fitted to the platform
(:mod:`ddlkit.tools.machine`); it never raises. ``ddlkit doctor`` prints the same report.
"""
from __future__ import annotations

import html
import importlib
import math
import os
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

from ddlkit.errors import ConfigError, OversubscribedWarning
from ddlkit.runtime import processes
from ddlkit.tools import machine, procs
from ddlkit.tools.machine import Platform

#: the oldest Python ddlkit supports (pyproject's requires-python)
MIN_PYTHON = (3, 10)
#: torch versions ddlkit accepts, [low, high)
TORCH_RANGE = ((2, 2), (3, 0))
#: how long the last check waits for ended processes to disappear (seconds)
SETTLE_S = 3.0


@dataclass(frozen=True)
class SetupCheck:
    """One row of the report: what was checked, whether it passed, what was seen, how long."""

    name: str
    ok: bool
    detail: str
    seconds: float
    hint: str = ""


@dataclass(frozen=True)
class Report:
    """All the set-up checks of one :func:`check` call."""

    rows: tuple[SetupCheck, ...]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[SetupCheck]:
        """The checks that did not pass."""
        return [r for r in self.rows if not r.ok]

    def headline(self) -> str:
        n = len(self.rows)
        if self.ok:
            return f"All {n} set-up checks passed: this machine is ready for the course."
        return (f"{len(self.failed)} of {n} set-up checks failed; "
                "the hints below say what to do.")

    def __str__(self) -> str:
        width = max(len(r.name) for r in self.rows)
        lines = [self.headline(), f"{'':4} {'check':<{width}}  {'time':>6}  detail"]
        for r in self.rows:
            mark = "ok" if r.ok else "FAIL"
            lines.append(f"{mark:<4} {r.name:<{width}}  {r.seconds:>5.2f}s  {r.detail}")
            if not r.ok and r.hint:
                lines.append(f"{'':4} {'':<{width}}  {'':>6}  what to do: {r.hint}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for r in self.rows:
            mark = ('<span style="color:#009E73">✓</span>' if r.ok
                    else '<span style="color:#b00020">✗</span>')
            detail = html.escape(r.detail)
            if not r.ok and r.hint:
                detail += f"<br><b>What to do:</b> {html.escape(r.hint)}"
            rows.append(f"<tr><td style='font-size:1.2em'>{mark}</td>"
                        f"<td style='text-align:left'>{html.escape(r.name)}</td>"
                        f"<td>{r.seconds:.2f} s</td>"
                        f"<td style='text-align:left'>{detail}</td></tr>")
        head = "<tr><th></th><th>check</th><th>time</th><th>detail</th></tr>"
        return (f"<p><b>{html.escape(self.headline())}</b></p>"
                f"<table>{head}{''.join(rows)}</table>")


class CheckFailed(RuntimeError):
    """A check's failure that brings its own hint, replacing the row's usual one."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.hint = hint


def run_check(name: str, check: Callable[[], str], hint: str) -> SetupCheck:
    """Run one check: ``check()`` returns a detail line on success and raises on failure.

    Any exception becomes a failed row that names it (a KeyboardInterrupt still stops
    everything), so one broken check cannot hide the others. A :class:`CheckFailed`
    gives the row its detail and hint as they are.
    """
    t0 = time.perf_counter()
    try:
        detail = check()
        ok = True
    except CheckFailed as exc:
        detail, ok, hint = str(exc), False, exc.hint
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable row
        detail, ok = _describe(exc), False
    return SetupCheck(name, ok, detail, time.perf_counter() - t0, "" if ok else hint)


def _describe(exc: BaseException) -> str:
    """One readable line: the exception's type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}"


def check(workers: int = 2) -> Report:
    """Run every set-up check with ``workers`` worker processes; returns the report."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 16:
        raise ValueError(f"workers: {workers!r} is not allowed; use a whole number from 1 to 16")
    facts = machine.detect(cores=processes.usable_cores())
    restart = "restart the kernel (Kernel → Restart Kernel) and run the check again"
    rows = [
        run_check("platform", facts.describe, ""),
        run_check("Python version", _python,
                  f"ddlkit needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer: "
                  "make distclean, then make lab PYTHON=python3.11"),
        run_check("torch build", _torch, machine.torch_hint(facts)),
        run_check("gloo backend", _gloo, machine.gloo_hint(facts)),
        run_check("worker start method", lambda: _start_method(facts.system), ""),
        run_check("free port on 127.0.0.1", _free_port,
                  "a firewall or sandbox forbids listening on 127.0.0.1; allow local "
                  "connections (ddlkit's processes talk over 127.0.0.1 only)"),
        run_check(f"{workers} workers start and talk" if workers > 1
                  else "1 worker starts and talks",
                  _advised(lambda: _workers_talk(workers), facts),
                  f"{restart}; if it fails again, the detail names the worker and its error"),
        run_check("a tiny training run", _advised(lambda: _tiny_run(workers), facts),
                  f"{restart}; if it fails again, run `python -m pytest tests` in a terminal "
                  "and report the first failure"),
        run_check("nothing left running", _nothing_left,
                  f"{restart}: that ends every process it started"),
    ]
    return Report(tuple(rows))


def _advised(check: Callable[[], str], facts: Platform) -> Callable[[], str]:
    """``check``, with a failure that says the platform cannot run gloo given the advice
    for this platform instead of the row's usual hint."""
    def advised() -> str:
        try:
            return check()
        except ConfigError as exc:
            if exc.field != processes.START_METHOD_ENV:
                raise
            raise CheckFailed(_describe(exc), "fix the worker start method first (its row "
                              "says how)") from exc
        except Exception as exc:
            hint = machine.error_hint(f"{exc}\n{getattr(exc, 'traceback', '')}", facts)
            if hint is None:
                raise
            raise CheckFailed(_describe(exc), hint) from exc
    return advised


# -- the checks: each returns a detail line, or raises with a readable message --------
def _python() -> str:
    v = sys.version_info
    found = f"Python {v.major}.{v.minor}.{v.micro}"
    if (v.major, v.minor) < MIN_PYTHON:
        raise RuntimeError(f"{found} is too old")
    return found


def _torch() -> str:
    import torch

    release = torch.__version__.split("+")[0]
    major_minor = tuple(int(p) for p in release.split(".")[:2])
    if not TORCH_RANGE[0] <= major_minor < TORCH_RANGE[1]:
        raise RuntimeError(f"torch {torch.__version__} is outside the supported range "
                           f">=2.2, <3")
    cuda = torch.version.cuda
    build = "CPU build" if cuda is None else f"CUDA {cuda} build (the course uses the CPU only)"
    return f"torch {torch.__version__}, {build}"


def _gloo() -> str:
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    if not dist.is_gloo_available():
        raise RuntimeError("torch.distributed has no gloo backend")
    return "torch.distributed with the gloo backend"


def _start_method(system: str) -> str:
    try:
        method = processes.start_method()
    except ConfigError as err:
        raise CheckFailed(_describe(err), machine.start_method_hint(system)) from err
    return machine.start_method_reason(
        method, os.environ.get(processes.START_METHOD_ENV, ""), system)


def _free_port() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
    return f"port {port} was bound and released"


def _workers_talk(workers: int) -> str:
    from ddlkit.runtime import run_ranks
    from ddlkit.tools.checks import hello

    outputs = run_ranks(hello, workers, timeout_s=60.0)
    expected = workers * (workers - 1) / 2
    sums = [o["sum"] if o else None for o in outputs]
    if any(s != expected for s in sums):
        raise RuntimeError(f"all-reduce sums {sums}, expected {expected:g} on every worker")
    threads = [o["threads"] for o in outputs]
    if any(t != 1 for t in threads):
        raise RuntimeError(f"compute threads per worker {threads}, expected 1 each")
    return (f"all-reduce: each worker added its rank, all {workers} got {expected:g}; "
            "1 compute thread each")


def _tiny_run(workers: int) -> str:
    from ddlkit.config import Experiment
    from ddlkit.runtime import run

    exp = Experiment(mode="sync", workers=workers, dataset="digits", model="linear",
                     batch_size=8, steps=3, eval_every=3, timeout_s=60.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OversubscribedWarning)
        result = run(exp)
    shared = next((w.message for w in caught if isinstance(w.message, OversubscribedWarning)),
                  None)
    if result.status != "ok":
        raise RuntimeError(f"status {result.status}: {result.error}")
    params = result.final_params
    if params is None or not all(math.isfinite(float(p)) for p in params):
        raise RuntimeError("the run returned no finite parameters")
    loss = result.final.get("test_loss")
    note = f"; {str(shared).split(':')[0]}: it works, timings are shared" if shared else ""
    return (f"{exp.label()}, {exp.steps} steps in {result.wall_time_s:.2f} s, "
            f"test loss {loss:.3f}{note}")


def _nothing_left() -> str:
    deadline = time.monotonic() + SETTLE_S
    left = _leftover_processes()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _leftover_processes()
    if left:
        described = ", ".join(f"{pid} ({procs.command(pid)})" for pid in sorted(left))
        raise RuntimeError(f"still running: {described}")
    return f"no worker or other child process is left running (as {procs.source()} tells)"


def _leftover_processes() -> set[int]:
    """Live descendants of this process, except multiprocessing's forkserver and tracker
    (see :mod:`ddlkit.tools.procs` for what each platform can tell)."""
    from multiprocessing import active_children

    from ddlkit.runtime import pool

    helpers = _multiprocessing_helpers()
    if pool._shared is not None and not pool._shared.closed:  # warm workers, kept on purpose
        helpers |= set(pool._shared.pids)
    left = {p.pid for p in active_children() if p.pid is not None}
    left |= procs.descendants(os.getpid())
    return {p for p in left - helpers if procs.running(p)}


def _multiprocessing_helpers() -> set[int]:
    """The PIDs of multiprocessing's forkserver and resource tracker, where they run."""
    found: set[int] = set()
    for module, holder, attr in (("forkserver", "_forkserver", "_forkserver_pid"),
                                 ("resource_tracker", "_resource_tracker", "_pid")):
        try:
            loaded = importlib.import_module(f"multiprocessing.{module}")
        except ImportError:  # a platform without it
            continue
        pid = getattr(getattr(loaded, holder, None), attr, None)
        if isinstance(pid, int):
            found.add(pid)
    return found
