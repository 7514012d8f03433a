"""``python -m ddlkit.launch``: one rank of an experiment, started by torchrun.

The same experiment that :func:`ddlkit.run` starts on one machine can run across
machines with PyTorch's own launcher, ``torchrun`` (no home-made cluster code)::

    torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:PORT -m ddlkit.launch --mode sync --workers 3 --out runs/x

It takes the flags of ``python -m ddlkit run``. Every rank runs the same strategy code
with the same instrumented communicator; at the end each rank leaves what it recorded in
torchrun's store, and rank 0 writes the one ``record.json``, as ``ddlkit.run`` would.
torchrun must start exactly as many processes as the experiment has ranks (workers,
plus one server in parameter-server modes). gloo traffic is unauthenticated: use this on
a trusted network only.
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ddlkit import checkpoint, cli
from ddlkit.collector import Collector
from ddlkit.comm import Communicator, Recorder
from ddlkit.config import Experiment
from ddlkit.context import Reporter
from ddlkit.errors import ConfigError
from ddlkit.faults import LeaveRun
from ddlkit.modes import MODES
from ddlkit.worker import GLOO_TIMEOUT_S, run_experiment

#: how long rank 0 waits for the other ranks' reports after its own part is done
GATHER_TIMEOUT_S = 30.0


class _Outbox:
    """Keeps a rank's messages; on rank 0 also feeds them live to the collector."""

    def __init__(self, collector: Collector | None) -> None:
        self.messages: list[tuple[Any, ...]] = []
        self.collector = collector

    def send(self, msg: tuple[Any, ...]) -> None:
        self.messages.append(msg)
        if self.collector is not None:
            self.collector.feed(msg)


def main(argv: list[str] | None = None) -> int:
    """Run this process's rank; rank 0 also writes the record. Returns the exit code."""
    parser = cli.build_parser()
    args = parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    exp = cli.experiment_from_args(args, args.parser)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    mode = MODES[exp.mode]
    if world != exp.world_size:
        server = " + 1 server" if mode.has_server else ""
        args.parser.error(f"torchrun started {world} processes, but {exp.label()} needs "
                          f"{exp.world_size} (workers{server}); set --nproc-per-node × "
                          f"--nnodes to {exp.world_size}")
    out = Path(args.out) if args.out else cli.default_out(exp)
    resume_path = None
    if args.resume_from:  # every rank reads the checkpoint: it must be on each machine
        try:
            path = checkpoint.find(args.resume_from)
            checkpoint.check_compatible(exp, checkpoint.load(path))
        except (ConfigError, FileNotFoundError) as err:
            args.parser.error(str(err))
        resume_path = str(path)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    timeout = timedelta(seconds=GLOO_TIMEOUT_S)
    dist.init_process_group("gloo", timeout=timeout)
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          is_master=False, timeout=timeout)
    prefix = (f"ddlkit/{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}/"
              f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/")
    roles = [mode.role(r) for r in range(world)]
    survives = mode.has_server and exp.continues_after_worker_loss
    tolerated = set(range(1, world)) if survives else set()
    bar = cli.ProgressBar(exp.steps, quiet=args.quiet or rank != 0)
    collector = Collector(roles, t0, bar, tolerated, align_clocks=True) if rank == 0 else None
    outbox = _Outbox(collector)
    recorder = Recorder(rank)
    reporter = Reporter(rank, outbox, recorder)
    reporter.send("ready", rank, os.getpid(), time.perf_counter(), time.time())
    code = 0
    try:
        result = run_experiment(exp.to_dict(), Communicator(rank, world, recorder), reporter,
                                checkpoint_dir=str(out / "checkpoints")
                                if exp.checkpoint_every else None, resume_path=resume_path)
        reporter.flush()
        reporter.send("done", rank, result)
    except LeaveRun as leave:
        reporter.flush()
        reporter.send("left", rank, str(leave))
    except Exception:  # noqa: BLE001 - reported in the record, then the exit code says it
        import traceback

        reporter.flush()
        reporter.send("error", rank, traceback.format_exc())
        code = 1
    store.set(f"{prefix}rank{rank}", pickle.dumps(outbox.messages))
    if rank == 0:
        _write_record(exp, store, prefix, collector, world, t0, out)
    bar.close()
    dist.destroy_process_group()
    return code


def _write_record(exp: Experiment, store: Any, prefix: str, collector: Collector,
                  world: int, t0: float, out: Path) -> None:
    """Gather every rank's messages from the store and save the record (rank 0)."""
    missing = set(range(1, world))
    deadline = time.monotonic() + GATHER_TIMEOUT_S
    while missing and time.monotonic() < deadline:
        for r in sorted(missing):
            if r in collector.lost:
                missing.discard(r)
            elif store.check([f"{prefix}rank{r}"]):
                for msg in pickle.loads(store.get(f"{prefix}rank{r}")):
                    collector.feed(msg)
                missing.discard(r)
        time.sleep(0.05)
    failed = sorted(collector.errors) + sorted(missing)
    status = "failed" if failed else "ok"
    error = f"ranks {failed} failed or did not report" if failed else None
    detail = "\n".join(collector.errors.values()) or None
    result = collector.result(exp, status, error, detail, time.perf_counter() - t0)
    result.meta.update(launcher="torchrun", record=str(out / "record.json"))
    result.save(out)
    print(result.summary())
    print(f"record: {out / 'record.json'}")


if __name__ == "__main__":
    raise SystemExit(main())
