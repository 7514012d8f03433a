"""Checkpoints: the model's holder saves its state every k steps, atomically.

A checkpoint is written to a temporary file in the same folder and then renamed over
``checkpoint.pt``, so a crash mid-write never leaves a broken checkpoint behind: the
folder holds either the previous one or the new one. ``ddlkit.run(exp,
resume_from=dir)`` continues from it; for ``sync`` and ``allreduce`` the resumed run
ends with exactly the parameters an uninterrupted run would have.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ddlkit.config import Experiment
from ddlkit.errors import ConfigError
from ddlkit.files import atomic_write

FILENAME = "checkpoint.pt"
FOLDER = "checkpoints"
#: fields that may differ between the interrupted run and its resumption
MAY_CHANGE = frozenset({"steps", "eval_every", "timeout_s", "faults", "checkpoint_every",
                        "on_worker_loss", "worker_delays"})


def save(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically (temp file, then rename)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return atomic_write(d / FILENAME, lambda f: torch.save(state, f))


def find(record_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint file of a run's record folder (or of a checkpoints folder itself)."""
    for candidate in (Path(record_dir) / FOLDER / FILENAME, Path(record_dir) / FILENAME):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no checkpoint in {record_dir} (looked for {FOLDER}/{FILENAME}); "
                            f"run with checkpoint_every > 0 and a record folder to make one")


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`."""
    return torch.load(path, weights_only=False)


def check_compatible(exp: Experiment, state: dict[str, Any]) -> None:
    """Refuse to resume ``exp`` from a checkpoint of a different experiment."""
    now = exp.to_dict()
    for name, value in state["config"].items():
        if name not in MAY_CHANGE and now.get(name) != value:
            raise ConfigError(name, now.get(name),
                              f"{value!r}, as in the run being resumed (only "
                              f"{', '.join(sorted(MAY_CHANGE))} may change)")
    step = int(state["step"])
    if exp.steps <= step:
        raise ConfigError("steps", exp.steps, f"more than {step}, the step of the checkpoint")
