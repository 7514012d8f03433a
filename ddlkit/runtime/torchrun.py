"""One rank of an experiment, started by torchrun (``python -m ddlkit.launch``).

The same experiment that :func:`ddlkit.run` starts on one machine can run across
machines with PyTorch's own launcher, ``torchrun`` (no home-made cluster code)::

    torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:PORT -m ddlkit.launch --mode sync --workers 3 --out runs/x

It takes the flags of ``python -m ddlkit run``. Every rank runs the same strategy code
with the same instrumented communicator; at the end each rank leaves what it recorded in
torchrun's store (as JSON, never a pickle), and rank 0 writes the one ``record.json``, as
``ddlkit.run`` would.
torchrun must start exactly as many processes as the experiment has ranks (workers,
plus one server in parameter-server modes). gloo listens on the interface holding the
address that reaches rank 0's store, unless ``GLOO_SOCKET_IFNAME`` is set
(:mod:`ddlkit.runtime.interfaces`; the record's ``meta["gloo_interface"]`` says which).
gloo traffic is unauthenticated: use this on a trusted network only.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ddlkit.comm import Communicator, Recorder
from ddlkit.comm.protocol import Message, Reporter, from_json, to_json
from ddlkit.config import Experiment
from ddlkit.faults import LeaveRun
from ddlkit.modes import MODES
from ddlkit.runtime.collector import Collector
from ddlkit.runtime.interfaces import ENV, InterfaceChoice, gloo_interface
from ddlkit.runtime.live import OnEvent
from ddlkit.runtime.rendezvous import GLOO_TIMEOUT_S
from ddlkit.runtime.worker import run_experiment

#: how long rank 0 waits for the other ranks' reports after its own part is done
GATHER_TIMEOUT_S = 30.0


class _Outbox:
    """Keeps a rank's messages; on rank 0 also feeds them live to the collector."""

    def __init__(self, collector: Collector | None) -> None:
        self.messages: list[Message] = []
        self.collector = collector

    def send(self, msg: Message) -> None:
        self.messages.append(msg)
        if self.collector is not None:
            self.collector.feed(msg)


def run_rank(exp: Experiment, out: Path, resume_path: str | None = None,
             on_event: OnEvent | None = None) -> int:
    """Run this process's rank of ``exp`` (torchrun set RANK, WORLD_SIZE and the
    rendezvous); rank 0 also writes the record to ``out`` and feeds ``on_event``.
    Returns the exit code. :mod:`ddlkit.launch` parses the flags and calls this."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    mode = MODES[exp.mode]
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    timeout = timedelta(seconds=GLOO_TIMEOUT_S)
    # gloo listens on the interface holding the address that reaches rank 0's store
    # (unless GLOO_SOCKET_IFNAME is set): not on whatever the host name resolves to
    interface = gloo_interface(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
    if interface.ifname is not None:
        os.environ[ENV] = interface.ifname
    dist.init_process_group("gloo", timeout=timeout)
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          is_master=False, timeout=timeout)
    prefix = (f"ddlkit/{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}/"
              f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/")
    roles = [mode.role(r) for r in range(world)]
    survives = mode.has_server and exp.continues_after_worker_loss
    tolerated = set(range(1, world)) if survives else set()
    collector = (Collector(roles, t0, on_event, tolerated, align_clocks=True)
                 if rank == 0 else None)
    outbox = _Outbox(collector)
    recorder = Recorder(rank)
    reporter = Reporter(rank, outbox, recorder)
    reporter.ready()
    code = 0
    try:
        result = run_experiment(exp.to_dict(), Communicator(rank, world, recorder), reporter,
                                checkpoint_dir=str(out / "checkpoints")
                                if exp.checkpoint_every else None, resume_path=resume_path)
        reporter.done(result)
    except LeaveRun as leave:
        reporter.left(str(leave))
    except Exception:  # noqa: BLE001 - reported in the record, then the exit code says it
        import traceback

        reporter.failed(traceback.format_exc())
        code = 1
    # JSON, not a pickle: anyone who reaches the store could write one (docs/multi-node.md)
    store.set(f"{prefix}rank{rank}", to_json(outbox.messages))  # type: ignore[arg-type]
    if collector is not None:  # rank 0
        _write_record(exp, store, prefix, collector, world, t0, out, interface)
    dist.destroy_process_group()
    return code


def _write_record(exp: Experiment, store: Any, prefix: str, collector: Collector,
                  world: int, t0: float, out: Path, interface: InterfaceChoice) -> None:
    """Gather every rank's messages from the store and save the record (rank 0), with
    rank 0's gloo interface in ``meta``."""
    missing = set(range(1, world))
    deadline = time.monotonic() + GATHER_TIMEOUT_S
    while missing and time.monotonic() < deadline:
        for r in sorted(missing):
            if r in collector.lost:
                missing.discard(r)
            elif store.check([f"{prefix}rank{r}"]):
                try:
                    for msg in from_json(store.get(f"{prefix}rank{r}")):
                        collector.feed(msg)
                except ValueError as err:
                    collector.errors[r] = f"rank {r}'s report in the store is {err}"
                missing.discard(r)
        time.sleep(0.05)
    failed = sorted(collector.errors) + sorted(missing)
    status = "failed" if failed else "ok"
    error = f"ranks {failed} failed or did not report" if failed else None
    detail = "\n".join(collector.errors.values()) or None
    result = collector.result(exp, status, error, detail, time.perf_counter() - t0)
    result.meta.update(launcher="torchrun", record=str(out / "record.json"),
                       gloo_interface=asdict(interface))
    result.save(out)
    print(result.summary())
    print(f"record: {out / 'record.json'}")

