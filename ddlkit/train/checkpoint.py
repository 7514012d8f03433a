"""Checkpoints: the model's holder saves its state every k steps, atomically.

A checkpoint is written to a temporary file in the same folder and then renamed over
``checkpoint.pt``, so a crash mid-write never leaves a broken checkpoint behind: the
folder holds either the previous one or the new one. ``ddlkit.run(exp,
resume_from=dir)`` continues from it; for ``sync`` and ``allreduce`` the resumed run
ends with exactly the parameters an uninterrupted run would have.

Reading one trusts nothing in it: torch loads it with ``weights_only=True`` (tensors and
plain values, never an arbitrary pickled object, which could run code), and :func:`load`
and :func:`check_compatible` raise a :class:`~ddlkit.errors.CheckpointError` naming the
file when it is cut off, damaged or not a ddlkit checkpoint, and a ``ConfigError`` when it
belongs to another experiment.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ddlkit.config import DTYPES, Experiment
from ddlkit.errors import CheckpointError, ConfigError
from ddlkit.files import atomic_write
from ddlkit.train.schedule import optimizer_for

FILENAME = "checkpoint.pt"
ZIP_START = b"PK\x03\x04"  # how every file torch.save writes begins
FOLDER = "checkpoints"
#: fields that may differ between the interrupted run and its resumption
MAY_CHANGE = frozenset({"steps", "eval_every", "timeout_s", "unresponsive_s", "faults",
                        "checkpoint_every", "on_worker_loss", "worker_delays"})
CUT_OFF = ("a kill while saving cannot cause this (checkpoints are written atomically), but a "
           "copy cut short or a failing disk can; resume from another copy, or start the run "
           "again without resume_from")
NOT_A_CHECKPOINT = ("resume_from takes the record folder of a run made with "
                    "checkpoint_every > 0 (it holds checkpoints/checkpoint.pt)")
EDITED = ("it was not written this way by ddlkit; resume from the checkpoint ddlkit wrote, or "
          "start the run again without resume_from")


def save(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically (temp file, then rename)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return atomic_write(d / FILENAME, lambda f: torch.save(state, f))


def find(record_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint file of a run's record folder (or of a checkpoints folder itself)."""
    for candidate in (Path(record_dir) / FOLDER / FILENAME, Path(record_dir) / FILENAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no checkpoint in {record_dir} (looked for {FOLDER}/{FILENAME}); "
                            f"run with checkpoint_every > 0 and a record folder to make one")


class Checkpoint(dict[str, Any]):
    """A checkpoint's contents, as :func:`save` was given them, and the ``path`` read."""

    def __init__(self, path: Path, state: dict[str, Any]) -> None:
        super().__init__(state)
        self.path = path


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save`, and check it holds what save wrote.

    torch reads it with ``weights_only=True``: tensors and plain values only, so a file
    that would unpickle any other object (which could run code) is refused. A file that
    is cut off, damaged or holds something else raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    with path.open("rb") as f:
        start = f.read(4)
    if not start:
        raise CheckpointError(path, "is empty", CUT_OFF)
    if len(start) < len(ZIP_START) and ZIP_START.startswith(start):
        raise CheckpointError(path, f"is cut off after {len(start)} bytes", CUT_OFF)
    if start != ZIP_START:  # torch.save writes a zip archive
        raise CheckpointError(path, "is not a checkpoint (not a torch.save file)",
                              NOT_A_CHECKPOINT)
    try:
        with warnings.catch_warnings():  # torch warns about a foreign file's pickle protocol
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds on a broken file
        if isinstance(err, pickle.UnpicklingError) and "GLOBAL" in str(err):
            raise CheckpointError(
                path, f"holds Python objects other than tensors and plain values "
                f"({_refused(err)}); ddlkit does not unpickle them, since unpickling can run "
                "any code", "resume only from checkpoints ddlkit wrote, from a source you trust"
            ) from None
        raise CheckpointError(path, f"is cut off or damaged ({type(err).__name__}: "
                              f"{_detail(err)})", CUT_OFF) from None
    return Checkpoint(path, _checked(path, state))


def check_compatible(exp: Experiment, state: dict[str, Any]) -> None:
    """Refuse to resume ``exp`` from a checkpoint of a different experiment, or from one
    whose parameters or optimiser state do not fit it."""
    where = state.path if isinstance(state, Checkpoint) else "the checkpoint"
    now = exp.to_dict()
    for name, value in state["config"].items():
        if name not in MAY_CHANGE and now.get(name) != value:
            raise ConfigError(name, now.get(name),
                              f"{value!r}, as in the run being resumed ({where}; only "
                              f"{', '.join(sorted(MAY_CHANGE))} may change)")
    step = int(state["step"])
    if exp.steps <= step:
        raise ConfigError("steps", exp.steps, f"more than {step}, the step of the checkpoint")
    params = state["params"]
    if params.dtype != DTYPES[exp.dtype]:
        raise CheckpointError(where, f"its parameters are {params.dtype}, but the experiment "
                              f"trains in {exp.dtype}", EDITED)
    try:
        optimizer_for(exp, params.clone()).load_state_dict(state["optimizer"])
    except Exception as err:  # noqa: BLE001 - whatever a wrong state makes load_state_dict raise
        raise CheckpointError(where, f"its optimiser state does not fit the experiment's "
                              f"{exp.optimizer} optimiser ({type(err).__name__}: "
                              f"{_detail(err)})", EDITED) from None


def _checked(path: Path, state: Any) -> dict[str, Any]:
    """``state`` if it is a dict as :func:`save` writes it, else a CheckpointError."""
    if not isinstance(state, dict):
        raise CheckpointError(path, f"holds a {type(state).__name__}, not a ddlkit "
                              f"checkpoint (a dict of {', '.join(KEYS)})", NOT_A_CHECKPOINT)
    for key, (kind, what) in KEYS.items():
        if key not in state:
            raise CheckpointError(path, f"has no {key!r}: it is not a ddlkit checkpoint",
                                  NOT_A_CHECKPOINT)
        if not kind(state[key]):
            raise CheckpointError(path, f"its {key!r} should be {what}, not "
                                  f"{_show(state[key])}", EDITED)
    params = state["params"]
    for name, tensor in _tensors(state["optimizer"], "optimizer"):
        if not _dense(tensor) or tensor.shape != params.shape or tensor.dtype != params.dtype:
            raise CheckpointError(path, f"its {name} is a {tensor.dtype} tensor of shape "
                                  f"{tuple(tensor.shape)}, unlike the parameters "
                                  f"({params.dtype}, {tuple(params.shape)})", EDITED)
    return state


def _plain(value: Any, tensors: bool = False, depth: int = 0) -> bool:
    """A JSON-like value nested a little at most (what an Experiment's fields hold), with
    tensors among the values if ``tensors`` (an optimiser's state)."""
    if value is None or isinstance(value, (bool, float, str)):
        return True
    if isinstance(value, int):
        return -2**63 <= value < 2**63
    if isinstance(value, torch.Tensor):
        return tensors
    if isinstance(value, (list, tuple)) and depth < 8:
        return all(_plain(v, tensors, depth + 1) for v in value)
    return isinstance(value, dict) and depth < 8 and all(
        isinstance(k, str) and _plain(v, tensors, depth + 1) for k, v in value.items())


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _dense(value: Any) -> bool:
    """A tensor as torch.save writes a model's: dense, of floats, in memory."""
    return (isinstance(value, torch.Tensor) and value.layout == torch.strided
            and value.is_floating_point() and value.device.type == "cpu")


def _tensors(value: Any, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside ``value`` (dicts and lists), with where it is."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _tensors(v, f"{name}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _tensors(v, f"{name}[{i}]")


#: what a checkpoint holds: key -> (check, what it should be)
KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "step": (_count, "a step number"),
    "samples": (_count, "a number of samples"),
    "config": (lambda v: isinstance(v, dict) and _plain(v), "a dict of Experiment fields"),
    "params": (lambda v: _dense(v) and v.dim() == 1, "a flat tensor of floats"),
    "optimizer": (lambda v: isinstance(v, dict) and _plain(v, tensors=True),
                  "a dict of tensors and numbers (the optimiser's state)"),
}


def _show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    try:
        return f"{type(value).__name__} {value!r:.40}"
    except ValueError:  # an int too long to print
        return type(value).__name__


def _refused(err: BaseException) -> str:
    """What torch's weights-only unpickler refused, from its message."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return f"it asks for {found.group(1)}" if found else "torch refused them"


def _detail(err: BaseException) -> str:
    """The line of an error's message that says what went wrong (torch's are long)."""
    text = str(err)
    found = re.search(r"WeightsUnpickler error: *(\S.*)", text)
    line = found.group(1) if found else (text.strip().splitlines() or ["no detail"])[0]
    return line[:160]
