"""A time limit on the learner's code in the grading process, so grading always ends.

Most checks call the learner's functions in the grader's own process (the notebook's
kernel, or ``python -m ddlkit grade``); a loop that never ends, at import or in the
graded function, would hang it. (Code run on ranks is already stopped by ``run_ranks``'s
timeout.) :func:`call` runs one call of the learner's code in a helper thread and waits
at most :data:`TIME_LIMIT_S` for it; :func:`view` gives the learner's module with every
function it defines wrapped that way. A call that runs out of time, or calls ``exit()``,
raises :class:`Stopped`, whose message is the verdict's reason.

When time is up, :class:`OutOfTime` (a ``BaseException``, so that ``except Exception`` in
the learner's code does not catch it) is raised inside the helper thread through
``PyThreadState_SetAsyncExc``, again every half second for :data:`GRACE_S`: that stops any
Python loop, and the verdict names the line it was stopped at. Code that catches even
that (a bare ``except:`` in the loop), or that waits inside C code (a long
``time.sleep``), cannot be stopped from outside: grading still ends, after the grace, and
the verdict says that the code goes on running in the background until the kernel (or
the command) is restarted.
"""
from __future__ import annotations

import ctypes
import threading
import time
import traceback
from functools import wraps
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, TypeVar

import torch

#: the learner's code in the grading process must return within this (seconds); correct
#: code needs milliseconds
TIME_LIMIT_S = 10.0
#: after the limit, how long to keep interrupting code that goes on, and how often
GRACE_S, REPEAT_S = 2.0, 0.5

T = TypeVar("T")


class OutOfTime(BaseException):
    """Raised inside the learner's code when its time is up."""


class Stopped(Exception):
    """The learner's code ran out of time or called ``exit()``; the message says where."""


def call(fn: Callable[..., T], path: Path, what: str, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` given at most :data:`TIME_LIMIT_S` seconds; ``what`` names the
    call in the reason (``"weighted_average()"``), ``path`` is the learner's file. The
    learner's own exceptions are raised here as they are."""
    limit = TIME_LIMIT_S
    outcome: list[tuple[bool, Any]] = []
    grad = torch.is_grad_enabled()  # autograd's mode is per thread: carry it over

    def run() -> None:
        try:
            try:
                with torch.set_grad_enabled(grad):
                    outcome.append((True, fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - carried to the grading thread
                outcome.append((False, exc))
        except OutOfTime:  # it came after the learner's code had ended
            pass

    helper = threading.Thread(target=run, name=f"ddlkit grading: {what}", daemon=True)
    helper.start()
    try:
        helper.join(limit)
    finally:  # also on Ctrl-C while waiting: stop the learner's code too
        if helper.is_alive() and not outcome:
            _interrupt(helper, outcome)
    if not outcome:
        raise Stopped(f"{what} did not finish within the time limit of {limit:g} s and could "
                      f"not be stopped: does it catch every exception (a bare except:) or wait "
                      f"(time.sleep, input)? It goes on running in the background until you "
                      f"restart the kernel (or the command)")
    ok, value = outcome[0]
    if ok:
        return value
    if isinstance(value, OutOfTime):
        raise Stopped(f"{what} did not finish within the time limit of {limit:g} s"
                      f"{_where(value, path)}: does a loop never end, or wait for something "
                      "that never comes?") from None
    if isinstance(value, SystemExit):
        code = "" if value.code is None else repr(value.code)
        raise Stopped(f"{what} called exit() or sys.exit({code}){_where(value, path)}; "
                      "grading needs it to return instead") from None
    raise value


def view(module: ModuleType, path: Path) -> ModuleType:
    """A copy of the learner's ``module`` whose functions (those it defines, decorated or
    not; not its classes) run under :func:`call`. Their globals stay the module's own, so
    they call each other directly."""
    out = ModuleType(module.__name__, module.__doc__)
    for name, value in vars(module).items():
        if (callable(value) and not isinstance(value, type)
                and getattr(value, "__module__", None) == module.__name__):
            value = _limited(value, path, f"{name}()")
        setattr(out, name, value)
    return out


def _limited(fn: Callable[..., Any], path: Path, what: str) -> Callable[..., Any]:
    @wraps(fn)
    def limited(*args: Any, **kwargs: Any) -> Any:
        return call(fn, path, what, *args, **kwargs)
    return limited


def _interrupt(helper: threading.Thread, outcome: list[tuple[bool, Any]]) -> None:
    """Raise OutOfTime in ``helper`` every REPEAT_S until it ends or GRACE_S is over."""
    if not hasattr(ctypes, "pythonapi") or helper.ident is None:
        return  # not CPython: nothing can interrupt it
    target = ctypes.c_ulong(helper.ident)
    deadline = time.monotonic() + GRACE_S
    while helper.is_alive() and not outcome and time.monotonic() < deadline:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(OutOfTime))
        helper.join(REPEAT_S)


def _where(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" (stopped at {path.name}, line {frames[-1].lineno})" if frames else ""
