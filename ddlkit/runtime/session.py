"""``ddlkit.run``: start the ranks, watch them, collect everything, leave nothing behind.

The parent owns the rendezvous store (``TCPStore`` on 127.0.0.1, port 0, so the OS picks
a free port and two runs never collide) and one pipe per rank. It waits on the pipes and
on the processes' sentinels together, so a crashed or killed rank is noticed at once.
Every exit path, success, failure, timeout, stop or KeyboardInterrupt, ends each child
it started (by PID) and closes the store.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import threading
import time
import uuid
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from ddlkit.comm.protocol import EvalRow, Failed, Left, Progress, Ready, RunRequest
from ddlkit.config import Experiment
from ddlkit.errors import ConfigError, RunTimeout, WorkerFailed, WorkerUnresponsive
from ddlkit.modes import MODES
from ddlkit.runtime import lifeline, worker
from ddlkit.runtime.collector import Collector
from ddlkit.runtime.live import OnEvent
from ddlkit.runtime.liveness import SPAWN_START_S, Liveness
from ddlkit.runtime.pool import WorkerPool
from ddlkit.runtime.processes import (
    start_method,
    stop_processes,
    warn_if_oversubscribed,
    worker_context,
)
from ddlkit.runtime.rendezvous import HOST, loopback_store
from ddlkit.runtime.result import RunResult
from ddlkit.train import checkpoint

#: after the first failure, how long to keep listening for the failure's root cause
FAILURE_GRACE_S = 0.3
#: how long a terminated child gets before SIGKILL
TERMINATE_GRACE_S = 2.0
POLL_S = 0.2



def run(experiment: Experiment, on_event: OnEvent | None = None,
        record_dir: str | os.PathLike[str] | None = None,
        stop: threading.Event | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        pool: WorkerPool | None = None) -> RunResult:
    """Run ``experiment`` on real processes over gloo and return its :class:`RunResult`.

    ``on_event`` receives :mod:`ddlkit.runtime.live` events as they happen. With ``record_dir``
    the record is saved there on every outcome, failed ones included, and checkpoints
    (``checkpoint_every``) go to its ``checkpoints/`` folder. ``resume_from`` names the
    record folder of an interrupted run to continue from its last checkpoint. Setting
    ``stop`` ends the run early; the partial result comes back with ``status="stopped"``.
    With a :class:`~ddlkit.runtime.pool.WorkerPool` the run uses its warm processes.
    Raises :class:`~ddlkit.errors.WorkerFailed` (naming the rank) or
    :class:`~ddlkit.errors.RunTimeout`; either carries the partial result as ``.result``.
    """
    if not isinstance(experiment, Experiment):
        raise TypeError(f"run() takes a ddlkit.Experiment, not {type(experiment).__name__}")
    _refuse_inside_worker("ddlkit.run()")
    start_method()  # an unknown DDLKIT_START_METHOD is refused before anything starts
    warn_if_oversubscribed(experiment.world_size)
    mode = MODES[experiment.mode]
    roles = [mode.role(r) for r in range(experiment.world_size)]
    checkpoint_dir = resume_path = None
    if experiment.checkpoint_every:
        if record_dir is None:
            raise ConfigError("checkpoint_every", experiment.checkpoint_every,
                              "0 unless run() is given a record_dir to keep checkpoints in")
        checkpoint_dir = str(Path(record_dir) / checkpoint.FOLDER)
    resumed: dict[str, Any] = {}
    if resume_from is not None:
        path = checkpoint.find(resume_from)
        state = checkpoint.load(path)
        checkpoint.check_compatible(experiment, state)
        resume_path, resumed = str(path), {"path": str(path), "step": int(state["step"])}
    job = functools.partial(worker.run_experiment, experiment.to_dict(),
                            checkpoint_dir=checkpoint_dir, resume_path=resume_path)
    tolerated = ({r for r in range(1, experiment.world_size)}
                 if mode.has_server and experiment.continues_after_worker_loss else set())
    session = _Session(job, roles, experiment.timeout_s, on_event, tolerated, pool,
                       unresponsive_s=experiment.unresponsive_s)

    def finish(**meta: Any) -> RunResult:
        result = session.result(experiment)
        result.meta.update({k: v for k, v in meta.items() if v is not None})
        if resumed:
            result.meta["resumed_from"] = resumed
        if record_dir is not None:
            result.meta["record"] = str(Path(record_dir) / "record.json")
            result.save(record_dir)
        return result

    try:
        session.start()
        session.monitor(stop)
    except (WorkerFailed, RunTimeout) as exc:
        session.end("timeout" if isinstance(exc, RunTimeout) else "failed", str(exc),
                    getattr(exc, "traceback", None) or None)
        failed_rank = getattr(exc, "rank", None)
        exc.result = finish(failed_rank=failed_rank)
        raise
    except BaseException as exc:  # KeyboardInterrupt, a failing on_event, ...
        session.end("failed", f"{type(exc).__name__}: {exc}")
        finish()
        raise
    session.end(session.status, None)
    return finish()


def run_ranks(job: Callable[..., Any], world_size: int, timeout_s: float = 60.0,
              on_event: OnEvent | None = None,
              unresponsive_s: float = Experiment.unresponsive_s) -> list[Any]:
    """Run ``job(comm, reporter)`` on ``world_size`` fresh gloo ranks; return each rank's output.

    The low-level entry point behind :func:`run`, used for checks and exercises (for
    example a hand-written collective against gloo's). ``job`` must be importable.
    Failures raise :class:`~ddlkit.errors.WorkerFailed` exactly as in :func:`run`.
    """
    _refuse_inside_worker("ddlkit.runtime.run_ranks()")
    start_method()
    check_importable(job)
    session = _Session(job, ["worker"] * world_size, timeout_s, on_event,
                       unresponsive_s=unresponsive_s)
    try:
        session.start()
        session.monitor(None)
    finally:
        session.end(session.status, None)
    return [session.outputs.get(r) for r in range(world_size)]


def check_importable(job: Callable[..., Any]) -> None:
    """Refuse, before any process starts, a job a worker process could not import.

    Workers are started by forkserver or spawn, never plain fork, so they receive the job
    by name: a lambda, a nested function, or a function typed into a notebook cell (its
    module, ``__main__``, has no file to import) cannot reach them."""
    fn: Any = job
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", repr(fn))
    module = getattr(fn, "__module__", None)
    interactive = module == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__")
    if "<lambda>" in name or "<locals>" in name or interactive:
        where = "in a notebook cell" if interactive else "inside another function"
        raise TypeError(
            f"the job {name} is defined {where}, so a worker process cannot import it. "
            f"Define it at the top level of a .py module (for example one next to the "
            f"notebook) and import it from there; functools.partial of it is fine.")


def _refuse_inside_worker(what: str) -> None:
    # While a child re-imports the script, it is "_inheriting"; later it has a parent.
    importing = getattr(multiprocessing.current_process(), "_inheriting", False)
    if importing or multiprocessing.parent_process() is not None:
        raise RuntimeError(
            f"{what} was called inside a worker process. This happens when a script calls "
            f"it at top level: each worker re-imports the script. Put the call under "
            f"`if __name__ == \"__main__\":`.")


class _Session:
    """The parent's side of one run: processes, pipes, store and what they reported."""

    def __init__(self, job: Callable[..., Any], roles: list[str], timeout_s: float,
                 on_event: OnEvent | None, tolerated: set[int] | None = None,
                 pool: WorkerPool | None = None,
                 unresponsive_s: float = Experiment.unresponsive_s) -> None:
        self.job = job
        self.pool = pool
        self.members: list[Any] = []
        self.timeout_s = timeout_s
        self.world = len(roles)
        self.roles = roles
        self.procs: list[Any] = []
        self.conns: dict[Any, int] = {}
        #: the parent's ends of the workers' lifelines, open while they may live
        self.lifelines: list[Any] = []
        self.unresponsive_s = unresponsive_s
        #: the lifelines still open, by rank; ranks ended for silence, and why
        self.beating: dict[Any, int] = {}
        self.frozen: dict[int, str] = {}
        #: what each rank last reported, and the run's latest step, for error messages
        self.doing: dict[int, str] = {}
        self.run_step = 0
        #: ranks that joined the process group. A rank lost before every rank has joined
        #: is never tolerated: the others may be waiting for it inside init_process_group
        #: (or fail there, blaming it), so the run fails at once naming it; ``early`` holds
        #: such ranks, for the error's note.
        self.ready: set[int] = set()
        self.early: set[int] = set()
        self.store: Any = None
        self.t0 = self.started = time.perf_counter()
        self.liveness = Liveness(self.t0, unresponsive_s)
        #: what the ranks reported; ranks in ``tolerated`` may be lost without failing
        self.col = Collector(roles, self.t0, on_event, tolerated)
        self.status = "ok"
        self.error: str | None = None
        self.error_detail: str | None = None
        self.wall = 0.0

    @property
    def outputs(self) -> dict[int, Any]:
        return self.col.outputs

    # -- start -----------------------------------------------------------------------
    def start(self) -> None:
        ctx = worker_context()
        self.t0 = self.col.t0 = time.perf_counter()
        self.store = loopback_store()
        prefix = f"ddlkit/{uuid.uuid4().hex}/"
        if self.pool is not None:  # warm processes: only a fresh rendezvous
            self.members = self.pool.acquire(self.world)
            for rank, m in enumerate(self.members):
                self.procs.append(m.proc)
                self.conns[m.conn] = rank
                self.lifelines.append(m.lifeline)
            for rank, m in enumerate(self.members):
                try:
                    m.conn.send(RunRequest(rank, self.world, self.job, self.store.port,
                                           prefix, HOST))
                except (OSError, ValueError):  # it died after the pool handed it out
                    m.proc.join(1.0)
                    raise WorkerFailed(rank, m.proc.exitcode, "its pooled worker process "
                                       "ended before the run could start",
                                       role=self.roles[rank]) from None
            # A pooled worker beats already, unless the pool has just started it (spawn:
            # it imports torch first); its buffered beats are read at the first check.
            self._start_clock(allowance_s=SPAWN_START_S if ctx.get_start_method() == "spawn"
                              else 0.0)
            return
        for rank in range(self.world):
            reader, writer = ctx.Pipe(duplex=False)
            keep, give = lifeline.pair(ctx)
            proc = ctx.Process(
                target=worker.main, name=f"ddlkit-rank{rank}", daemon=True,
                args=(rank, self.world, self.job, self.store.port, prefix, writer, os.getpid(),
                      give))
            self.procs.append(proc)
            self.conns[reader] = rank
            self.lifelines.append(keep)
            proc.start()
            writer.close()
            give.close()
        self._start_clock(allowance_s=SPAWN_START_S if ctx.get_start_method() == "spawn"
                          else 0.0)

    def _start_clock(self, allowance_s: float) -> None:
        self.started = time.perf_counter()
        self.liveness = Liveness(self.started, self.unresponsive_s, allowance_s)
        self.beating = {line: rank for rank, line in enumerate(self.lifelines)}

    # -- watch -----------------------------------------------------------------------
    def monitor(self, stop: threading.Event | None) -> None:
        # The clock starts once every process exists: a cold forkserver start (importing
        # torch once) does not count against the run's timeout.
        deadline = self.started + self.timeout_s
        pending = set(range(self.world))
        sentinels = {p.sentinel: r for r, p in enumerate(self.procs)}
        failures: list[tuple[float, int]] = []
        while pending or failures:
            now = time.perf_counter()
            if failures and (not pending or now - failures[0][0] > FAILURE_GRACE_S):
                raise self._failure(failures)
            if now > deadline:
                raise RunTimeout(self.timeout_s, sorted(pending))
            if stop is not None and stop.is_set():
                self.status = "stopped"
                return
            wait_s = min(POLL_S, max(0.0, deadline - now))
            beating = self.beating
            for obj in wait(list(self.conns) + list(sentinels) + list(beating), timeout=wait_s):
                if obj in beating:
                    continue  # read below, with every other lifeline
                if obj in self.conns:
                    self._read(obj, pending, failures)
                elif obj in sentinels:
                    rank = sentinels.pop(obj)
                    self._drain_all(pending, failures)  # every Ready sent so far counts
                    if rank in pending:
                        pending.discard(rank)
                        formed = self._group_formed()
                        if rank in self.col.tolerated and formed:
                            how = self.frozen.get(rank) or _exit_text(self.procs[rank].exitcode)
                            self.col.lose(rank, how=how)
                        else:
                            if not formed:
                                self.early.add(rank)
                            failures.append((time.perf_counter(), rank))
            self._check_heartbeats(pending, sentinels)

    def _check_heartbeats(self, pending: set[int], sentinels: dict[Any, int]) -> None:
        """Read every heartbeat; end a rank that has gone silent. A rank whose loss the
        run tolerates is ended, then lost as a dead one is; any other fails the run."""
        now = time.perf_counter()
        for line, rank in list(self.beating.items()):
            if not self.liveness.drain(rank, line, now):
                del self.beating[line]  # the process has ended: its sentinel says how
        running = {r for r in pending if self.procs[r].sentinel in sentinels}
        for rank, silent in self.liveness.frozen(running - set(self.frozen), now):
            limit = self.liveness.limit(rank)
            doing = self._doing(rank)
            if rank not in self.col.tolerated or not self._group_formed():
                raise WorkerUnresponsive(rank, silent, limit, doing, role=self.roles[rank])
            self.frozen[rank] = (f"unresponsive: no heartbeat for {silent:.1f} s "
                                 f"(unresponsive_s={limit:g}) while {doing}; ended by ddlkit")
            self.procs[rank].kill()  # its sentinel then reports it lost

    def _group_formed(self) -> bool:
        """Whether every rank has reported that it joined the process group."""
        return len(self.ready) == self.world

    def _drain_all(self, pending: set[int], failures: list[tuple[float, int]]) -> None:
        """Read every message already waiting in any rank's pipe."""
        for conn in list(self.conns):
            while conn in self.conns and conn.poll():
                self._read(conn, pending, failures)

    def _read(self, conn: Any, pending: set[int], failures: list[tuple[float, int]]) -> None:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            self.conns.pop(conn, None)
            conn.close()
            return
        self.col.feed(msg)
        self._note_doing(msg)
        if msg.ends_rank:
            pending.discard(msg.rank)
        if isinstance(msg, Failed) or (isinstance(msg, Left)
                                       and msg.rank not in self.col.tolerated):
            failures.append((time.perf_counter(), msg.rank))

    def _note_doing(self, msg: Any) -> None:
        if isinstance(msg, Ready):
            self.doing[msg.rank] = "joined"
            self.ready.add(msg.rank)
        elif isinstance(msg, Progress):
            self.doing[msg.rank] = f"training: its step {msg.step} of {msg.total} was done"
            self.run_step = max(self.run_step, msg.step)
        elif isinstance(msg, EvalRow):
            self.doing[msg.rank] = "training, just after an evaluation"

    def _doing(self, rank: int) -> str:
        """What ``rank`` was doing, as far as the parent knows, for an error message."""
        own = self.doing.get(rank)
        if own is None:
            return "starting up: it had not yet joined the process group"
        if own != "joined":
            return own
        if self.run_step:
            return f"training: the run had reached step {self.run_step}"
        return "past start-up, before the first step"

    def _failure(self, failures: list[tuple[float, int]]) -> WorkerFailed:
        """Blame the root cause: a killed rank first, then one that raised its own error
        rather than a lost-connection error caused by another rank's death."""
        def rank_of(item: tuple[float, int]) -> tuple[int, float]:
            t, r = item
            code = self.procs[r].exitcode
            tb = self.col.errors.get(r, "")
            if code is not None and code < 0:
                return (0, t)
            if tb and not _is_secondary(tb):
                return (1, t)
            return (2, t)

        _, rank = min(failures, key=rank_of)
        self.procs[rank].join(timeout=1.0)
        note = ""
        if rank in self.early or rank not in self.ready:
            note = ("during start-up, before it joined the process group"
                    if rank not in self.ready else
                    "during start-up, before every rank had joined the process group")
            if rank in self.col.tolerated:
                note += (": the other ranks wait for every rank there, so the group could "
                         "not form (a lost worker is survived only once training has begun)")
        return WorkerFailed(rank, self.procs[rank].exitcode, self.col.errors.get(rank, ""),
                            role=self.roles[rank], note=note)

    # -- finish ------------------------------------------------------------------------
    def end(self, status: str, error: str | None, detail: str | None = None) -> None:
        """Record the outcome, end every child (by PID) and close the store."""
        if not self.wall:
            self.wall = time.perf_counter() - self.t0
        self.status, self.error, self.error_detail = status, error, detail
        if self.pool is not None and self.members:
            # Ranks that finished cleanly go back to the pool; the rest are replaced.
            healthy = set(self.col.outputs) if status == "ok" else set()
            self.pool.release(self.members, healthy)
            self.members = []
        else:
            stop_processes(self.procs, TERMINATE_GRACE_S)
            for conn in [*self.conns, *self.lifelines]:
                conn.close()
            self.lifelines.clear()
        self.conns.clear()
        self.store = None  # the master store closes its listening socket

    def result(self, exp: Experiment) -> RunResult:
        """Everything collected so far, as a :class:`RunResult` (partial after a failure)."""
        return self.col.result(exp, self.status, self.error, self.error_detail, self.wall)


def _row_step(row: dict[str, Any]) -> str:
    step = row.get("step")
    return f"step {step}" if step is not None else "no step number"


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exited with code {code}"


_SECONDARY = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
              "Timed out", "timed out", "Socket Timeout", "ECONNRESET", "EPIPE")


def _is_secondary(tb: str) -> bool:
    """Whether a traceback looks like fallout from a peer's death, not a root cause."""
    return any(s in tb for s in _SECONDARY)
