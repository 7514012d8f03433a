"""``python -m ddlkit.launch``: one rank of an experiment, started by torchrun.

The same experiment that :func:`ddlkit.run` starts on one machine can run across
machines with PyTorch's own launcher, ``torchrun`` (no home-made cluster code)::

    torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:PORT -m ddlkit.launch --mode sync --workers 3 --out runs/x

It takes the flags of ``python -m ddlkit run`` and checks them before the rank joins;
:func:`ddlkit.runtime.torchrun.run_rank` then runs it. torchrun must start exactly as
many processes as the experiment has ranks (workers, plus one server in parameter-server
modes). gloo traffic is unauthenticated: use this on a trusted network only.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ddlkit import cli
from ddlkit.errors import CheckpointError, ConfigError
from ddlkit.modes import MODES
from ddlkit.runtime import torchrun
from ddlkit.train import checkpoint


def main(argv: list[str] | None = None) -> int:
    """Check the flags, run this process's rank; rank 0 also writes the record."""
    parser = cli.build_parser()
    args = parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    exp = cli.experiment_from_args(args, args.parser)
    world = int(os.environ["WORLD_SIZE"])
    if world != exp.world_size:
        server = " + 1 server" if MODES[exp.mode].has_server else ""
        args.parser.error(f"torchrun started {world} processes, but {exp.label()} needs "
                          f"{exp.world_size} (workers{server}); set --nproc-per-node × "
                          f"--nnodes to {exp.world_size}")
    out = Path(args.out) if args.out else cli.default_out(exp)
    resume_path = None
    if args.resume_from:  # every rank reads the checkpoint: it must be on each machine
        try:
            path = checkpoint.find(args.resume_from)
            checkpoint.check_compatible(exp, checkpoint.load(path))
        except (ConfigError, CheckpointError, FileNotFoundError) as err:
            args.parser.error(str(err))
        resume_path = str(path)
    bar = cli.ProgressBar(exp.steps, quiet=args.quiet or int(os.environ["RANK"]) != 0)
    try:
        return torchrun.run_rank(exp, out, resume_path, on_event=bar)
    finally:
        bar.close()


if __name__ == "__main__":
    raise SystemExit(main())
