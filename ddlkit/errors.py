"""The errors ddlkit raises on purpose, each with a message a learner can act on."""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad experiment setting, raised before any process starts.

    The message names the field, the value given and what is allowed.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}={value!r} is not allowed: {allowed}")


class WorkerFailed(RuntimeError):
    """A worker process raised, crashed or was killed during a run.

    Attributes: ``rank`` (the failed rank), ``exitcode`` (negative: killed by that
    signal), ``traceback`` (the worker's traceback text, if it could send one), ``note``
    (when it happened, if that matters) and ``result`` (the partial
    :class:`~ddlkit.runtime.result.RunResult`, when one was built).
    """

    def __init__(self, rank: int, exitcode: int | None, traceback: str = "",
                 role: str = "worker", note: str = "") -> None:
        self.rank = rank
        self.exitcode = exitcode
        self.traceback = traceback
        self.role = role
        self.note = note
        self.result: Any = None
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.exitcode is not None and self.exitcode < 0:
            how = f"was killed by signal {-self.exitcode}"
        elif self.traceback:
            last = self.traceback.strip().splitlines()[-1]
            how = f"raised {last}"
        else:
            how = f"exited with code {self.exitcode}"
        return f"rank {self.rank} ({self.role}) {how}" + (f" {self.note}" if self.note else "")


class WorkerUnresponsive(WorkerFailed):
    """A worker process exists but has sent no heartbeat for longer than ``unresponsive_s``.

    It is frozen, not dead: stopped (Ctrl-Z, SIGSTOP), or starved of CPU or memory. ddlkit
    ends it, and the run. Attributes as :class:`WorkerFailed`, plus ``silent_s`` (how long
    it had been silent), ``limit_s`` and ``doing`` (what it last reported)."""

    def __init__(self, rank: int, silent_s: float, limit_s: float, doing: str,
                 role: str = "worker") -> None:
        self.silent_s = silent_s
        self.limit_s = limit_s
        self.doing = doing
        super().__init__(rank, None, "", role=role)

    def _describe(self) -> str:
        return (f"rank {self.rank} ({self.role}) is unresponsive, not dead: its process "
                f"exists but sent no heartbeat for {self.silent_s:.1f} s (unresponsive_s="
                f"{self.limit_s:g}); it was {self.doing}. A stopped process (Ctrl-Z, SIGSTOP) "
                f"or one starved of memory looks like this; ddlkit ended it and the run")


class RunTimeout(RuntimeError):
    """A run took longer than its ``timeout_s``; every process was stopped."""

    def __init__(self, timeout_s: float, waiting_for: list[int]) -> None:
        self.timeout_s = timeout_s
        self.waiting_for = waiting_for
        self.result: Any = None
        super().__init__(
            f"run did not finish within timeout_s={timeout_s:g} s; "
            f"ranks still running: {waiting_for}")


class OversubscribedWarning(UserWarning):
    """A run starts more worker processes than this machine has CPU cores.

    The run works; its timings are those of processes taking turns on the cores."""


class FileProblem(ValueError):
    """A file ddlkit reads is cut off, damaged, or not the kind of file it should be.

    ``path`` is the file, ``problem`` what is wrong with it and ``advice`` what to do; the
    message says all three. Nothing is written or deleted when this is raised.
    """

    def __init__(self, path: Any, problem: str, advice: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.advice = advice
        super().__init__(f"{self.path}: {problem}" + (f"; {advice}" if advice else ""))

    def __reduce__(self) -> tuple[Any, ...]:  # so that it crosses a process boundary
        return (type(self), (self.path, self.problem, self.advice))


class RecordError(FileProblem):
    """A run's ``record.json`` (or its ``final_params.npy``) that ``load_result`` cannot read."""


class CheckpointError(FileProblem):
    """A checkpoint that cannot be resumed from: cut off, damaged, or holding other things
    than a ddlkit checkpoint (ddlkit never unpickles arbitrary objects from one)."""
