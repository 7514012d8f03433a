"""The entry point of every worker process (it must live in an importable module).

A worker joins the run's rendezvous store, creates its gloo process group, runs its
strategy and streams events to the parent through a pipe. It protects the machine
from itself: one compute thread, default SIGINT, short gloo timeouts, and a watchdog
that ends the process as soon as the parent is gone.
"""
from __future__ import annotations

import os
import signal
import traceback
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any, Callable

import torch
import torch.distributed as dist

from ddlkit.comm import Communicator, Recorder
from ddlkit.comm.network import Network
from ddlkit.comm.protocol import Failed, Reporter, RunRequest
from ddlkit.config import Experiment
from ddlkit.faults import FaultPlan, LeaveRun
from ddlkit.modes import MODES
from ddlkit.runtime.lifeline import watch_parent
from ddlkit.runtime.rendezvous import GLOO_TIMEOUT_S, client_store, loopback_ifname
from ddlkit.strategies.context import Context
from ddlkit.train import checkpoint

__all__ = ["GLOO_TIMEOUT_S", "main", "prepare_process", "run_experiment", "run_rank", "serve"]


def run_experiment(config: dict[str, Any], comm: Communicator, reporter: Reporter,
                   checkpoint_dir: str | None = None,
                   resume_path: str | None = None) -> dict[str, Any]:
    """The job of every rank of an experiment: build its context, run its strategy.

    The communicator emulates the experiment's network, if it asks for one."""
    exp = Experiment.from_dict(config)
    mode = MODES[exp.mode]
    comm = comm.with_network(Network.of(exp))  # net_latency_ms, net_bandwidth_mbps
    ctx = Context(exp=exp, rank=comm.rank, world_size=comm.world_size,
                  role=mode.role(comm.rank), worker_index=mode.worker_index(comm.rank),
                  comm=comm, recorder=comm.recorder, reporter=reporter,
                  faults=FaultPlan(exp.fault_list, comm.rank),
                  checkpoint_dir=checkpoint_dir,
                  resume=checkpoint.load(resume_path) if resume_path else None)
    return mode.strategy()(ctx)


def prepare_process(parent_pid: int, lifeline: Connection) -> None:
    """Once per worker process: default SIGINT, a parent watchdog, one compute thread."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    watch_parent(parent_pid, lifeline)
    torch.set_num_threads(1)


def run_rank(rank: int, world_size: int, job: Callable[[Communicator, Reporter], Any],
             store_port: int, prefix: str, conn: Any, host: str = "127.0.0.1") -> str:
    """Join the run's gloo group, run ``job``, report through ``conn``, leave the group.

    Returns how the rank ended: ``done``, ``left`` (a planned departure) or ``error``.
    """
    try:
        # gloo listens on the address the host name resolves to unless told an interface:
        # keep a local run's traffic on the loopback interface (where it has a fixed name).
        ifname = loopback_ifname()
        if ifname is not None:
            os.environ["GLOO_SOCKET_IFNAME"] = ifname
        store = client_store(host, store_port, prefix)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=GLOO_TIMEOUT_S))
        recorder = Recorder(rank)
        reporter = Reporter(rank, conn, recorder)
        reporter.ready()
        try:
            out = job(Communicator(rank, world_size, recorder), reporter)
        except LeaveRun as leave:  # a planned, clean departure: peers see the link close
            reporter.left(str(leave))
            return "left"
        reporter.done(out)
        dist.destroy_process_group()
        return "done"
    except BaseException:  # noqa: BLE001 - report anything, including SystemExit
        try:
            conn.send(Failed(rank, traceback.format_exc()))
        except Exception:  # noqa: BLE001 - the parent may be gone already
            pass
        return "error"


def main(rank: int, world_size: int, job: Callable[[Communicator, Reporter], Any],
         store_port: int, prefix: str, conn: Any, parent_pid: int, lifeline: Connection,
         host: str = "127.0.0.1") -> None:
    """Run ``job`` as one rank of a gloo group, then end the process with ``os._exit``.

    ``job`` must be importable (a module-level function, or a ``functools.partial`` of
    one); a function defined in a notebook cannot be sent to a worker. Arguments are
    plain values: a forkserver child keeps the forkserver's environment, so nothing may
    be passed through ``os.environ``. ``lifeline`` is this worker's end of its
    :mod:`parent channel <ddlkit.runtime.lifeline>`.
    """
    prepare_process(parent_pid, lifeline)
    ended = run_rank(rank, world_size, job, store_port, prefix, conn, host)
    try:
        conn.close()
    finally:
        os._exit(1 if ended == "error" else 0)


def serve(conn: Any, parent_pid: int, lifeline: Connection) -> None:
    """A pooled worker: run one rank after another, as the pool's parent asks.

    Each request is a :class:`~ddlkit.comm.protocol.RunRequest` and gets a fresh
    rendezvous and process group; ``None`` asks the worker to end. After an error or a
    planned departure the process ends (its gloo state cannot be trusted), and the pool
    replaces it.
    """
    prepare_process(parent_pid, lifeline)
    code = 0
    try:
        while True:
            try:
                request: RunRequest | None = conn.recv()
            except (EOFError, OSError):  # the pool is gone
                break
            if request is None:  # a clean close
                break
            ended = run_rank(request.rank, request.world_size, request.job,
                             request.store_port, request.prefix, conn, request.host)
            if ended != "done":
                code = 1 if ended == "error" else 0
                break
    finally:
        try:
            conn.close()
        finally:
            os._exit(code)
