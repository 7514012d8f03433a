"""Grading: run one exercise's checks against a learner's file and say what happened.

An exercise (``ddlkit.exercises.ex01``, ``ex02``, …) registers named checks. A check is a
function of a :class:`Learner` that raises :class:`CheckFailed` with a one-line reason.
Checks compare the learner's answer with a reference computed independently (autograd,
``dist.all_reduce``, formulas, instrumented ddlkit runs), never with the learner's code.

:func:`grade` runs the checks in order and stops at the first failure, so the verdict
names one precise problem. A stub's ``NotImplementedError("Exercise N: …")`` becomes a
"not implemented yet" verdict, and any other error in the learner's code becomes a failed
check naming the line, so grading never raises because of the learner's code. Nor does
it hang: the learner's code in this process runs under a time limit (:mod:`.limits`).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, TypeVar, Union

from ddlkit.exercises import limits
from ddlkit.exercises.verdict import CheckResult, Verdict, shown
from ddlkit.paths import checkout_root

#: exercise key -> module that defines its checks: every ``exNN.py`` in this package
EXERCISE_MODULES: dict[str, str] = {
    m.name: f"ddlkit.exercises.{m.name}"
    for m in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name)
    if re.fullmatch(r"ex\d\d", m.name)}
#: a distributed check's run must finish within this (seconds); correct code needs < 1 s
RUN_TIMEOUT_S = 10.0
#: the message every stub raises starts with this
STUB_PREFIX = "Exercise "

T = TypeVar("T")
#: what to add to a timeout's reason: text, or text made from the ranks still running
Hint = Union[str, Callable[[list[int]], str]]


class CheckFailed(Exception):
    """The learner's code ran but the answer is wrong; the message is the one-line reason."""


@dataclass
class Exercise:
    """One exercise: its number, the file the learner writes, and its checks in order."""

    number: int
    stem: str
    title: str
    checks: list[tuple[str, Callable[[Learner], None]]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"ex{self.number:02d}"

    @property
    def filename(self) -> str:
        return f"{self.stem}.py"

    def check(self, name: str) -> Callable[[Callable[[Learner], None]], Callable[[Learner], None]]:
        """Decorator: register a check, in order, under the name the verdict shows."""
        def register(fn: Callable[[Learner], None]) -> Callable[[Learner], None]:
            self.checks.append((name, fn))
            return fn
        return register


def get_exercise(exercise: str | int) -> Exercise:
    """The exercise for ``"ex03"``, ``"3"``, ``3`` or ``"ex03_sync_server_step"``."""
    match = re.fullmatch(r"(?:ex)?0*(\d+)(?:_\w*)?", str(exercise).strip().lower())
    key = f"ex{int(match.group(1)):02d}" if match else ""
    if key not in EXERCISE_MODULES:
        raise ValueError(f"unknown exercise {exercise!r}; known: {', '.join(EXERCISE_MODULES)}")
    return importlib.import_module(EXERCISE_MODULES[key]).EXERCISE


def all_exercises() -> list[Exercise]:
    return [get_exercise(key) for key in EXERCISE_MODULES]


def exercise_path(exercise: Exercise, directory: str | os.PathLike[str] | None = None) -> Path:
    """Where the learner's file for ``exercise`` is.

    With no ``directory``: the current folder if it holds the file (a notebook runs in
    its own folder, so it grades the file next to it), else ``exercises/`` in the
    current folder or the nearest parent that has one (a course folder, see
    ``ddlkit course``), else, in a git checkout only, the repository's ``exercises/``.
    An installed ddlkit never looks inside its own package. When the file is nowhere,
    this is where it would be: ``exercises/`` in the current folder.
    A relative ``directory`` that does not exist is also looked up in the checkout.
    """
    name = exercise.filename
    root = checkout_root()
    if directory is not None:
        folder = Path(directory).expanduser()
        if (not folder.is_absolute() and not folder.is_dir() and root is not None
                and (root / folder).is_dir()):
            folder = root / folder
        return (folder / name).resolve()
    cwd = Path.cwd()
    candidates = [cwd / name, *(base / "exercises" / name for base in (cwd, *cwd.parents))]
    if root is not None:
        candidates.append(root / "exercises" / name)
    found = next((path for path in candidates if path.is_file()), cwd / "exercises" / name)
    return found.resolve()


def not_found(exercise: Exercise, path: Path, directory: str | os.PathLike[str] | None) -> str:
    """Why there is no file to grade: where it was looked for, and how to get one."""
    hint = ("to get the exercises, write the course with `python -m ddlkit course DIR`, "
            f"then grade in DIR: `python -m ddlkit grade {exercise.key}`")
    if directory is not None:
        return f"there is no file {shown(path)}; {hint}"
    root = checkout_root()
    repo = f", nor in {root / 'exercises'}" if root is not None else ""
    return (f"there is no file {exercise.filename} in {Path.cwd()}, nor in an exercises/ "
            f"folder there or in a folder above it{repo}; {hint}")


def load_file(path: str | os.PathLike[str]) -> ModuleType:
    """Import a learner's ``.py`` file by path, fresh every time.

    The source is compiled here rather than through the import cache: a ``.pyc`` is
    trusted by the source's mtime in whole seconds, so an edit saved within the same
    second could otherwise be ignored. Tracebacks still name the file and line.
    """
    path = Path(path).resolve()
    name = f"ddlkit_learner_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    sys.modules[name] = module  # dataclasses and pickle look a module up by name
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load(exercise: str | int, directory: str | os.PathLike[str] | None = None) -> ModuleType:
    """The learner's module for ``exercise``, freshly loaded (for trying it in a notebook)."""
    ex = get_exercise(exercise)
    path = exercise_path(ex, directory)
    if not path.is_file():
        raise FileNotFoundError(not_found(ex, path, directory))
    return load_file(path)


class Learner:
    """The learner's file during one grading, with a memo so checks can share one run."""

    def __init__(self, exercise: Exercise, path: Path) -> None:
        self.exercise = exercise
        self.path = path
        self._memo: dict[Any, Any] = {}

    def module(self) -> ModuleType:
        """The learner's module, loaded once, its functions under a time limit."""
        return self.memo("module", lambda: limits.view(limits.call(
            load_file, self.path, f"importing {self.path.name}", self.path), self.path))

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` once per grading (a failure is remembered and raised again)."""
        if key not in self._memo:
            try:
                self._memo[key] = (True, compute())
            except Exception as exc:  # noqa: BLE001 - replayed for every check that asks
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def run(self, job: Callable[..., Any], world_size: int, what: str, hint: Hint = "",
            server: bool = False) -> list[Any]:
        """:func:`ddlkit.runtime.run_ranks`, with failures turned into verdict reasons.

        The file is loaded here first, so a syntax error is reported from the parent.
        """
        self.module()
        return run_learner(job, world_size, self.path, what, hint, server)


def run_learner(job: Callable[..., Any], world_size: int, path: Path, what: str,
                hint: Hint = "", server: bool = False,
                timeout_s: float = RUN_TIMEOUT_S) -> list[Any]:
    """Run ``job`` on real ranks. A stub raises ``NotImplementedError`` here, in the parent;
    any other failure or a timeout raises :class:`CheckFailed` saying ``what`` was run.
    ``hint`` is added to a timeout's reason (a function of the ranks still running, or
    text); ``server``: rank 0 is a server, so name it so in reasons."""
    from ddlkit.errors import RunTimeout, WorkerFailed
    from ddlkit.runtime import run_ranks

    try:
        return run_ranks(job, world_size, timeout_s=timeout_s)
    except WorkerFailed as exc:
        raise _worker_failure(exc, path, what, server) from None
    except RunTimeout as exc:
        text = hint(exc.waiting_for) if callable(hint) else hint
        raise CheckFailed(
            f"{what}: did not finish within {exc.timeout_s:g} s (ranks still running: "
            f"{exc.waiting_for}){'; ' + text if text else ''}") from None


def _worker_failure(exc: Any, path: Path, what: str, server: bool) -> Exception:
    last = exc.traceback.strip().splitlines()[-1] if exc.traceback.strip() else ""
    if last.startswith(f"NotImplementedError: {STUB_PREFIX}"):
        return NotImplementedError(last.split(": ", 1)[1])
    who = f"rank {exc.rank}" + (" (the server)" if server and exc.rank == 0 else "")
    if exc.exitcode is not None and exc.exitcode < 0:
        extra = (" (gloo aborts a process whose receive buffer does not match the size of "
                 "the message: check the sizes you send and receive)") if exc.exitcode == -6 else ""
        return CheckFailed(f"{what}: {who} was killed by signal {-exc.exitcode}{extra}")
    if not last:
        return CheckFailed(f"{what}: {who} exited with code {exc.exitcode}")
    lines = re.findall(rf'File "{re.escape(str(path))}", line (\d+)', exc.traceback)
    where = f" ({path.name}, line {lines[-1]})" if lines else ""
    return CheckFailed(f"{what}: {who} raised {last}{where}")


def describe_exception(exc: BaseException, path: Path) -> str:
    """One line for an error raised by the learner's code, with its line in their file."""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return f"{path.name}, line {exc.lineno}: SyntaxError: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    where = f" ({path.name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def grade(exercise: str | int, directory: str | os.PathLike[str] | None = None) -> Verdict:
    """Run the checks of ``exercise`` (``"ex03"`` or ``3``) against the learner's file.

    ``directory`` is where the file is (default: see :func:`exercise_path`). Returns a
    :class:`Verdict`; it does not raise because of the learner's code.
    """
    ex = get_exercise(exercise)
    path = exercise_path(ex, directory)
    started = time.perf_counter()
    results = [CheckResult(name, "not run") for name, _ in ex.checks]
    verdict = Verdict(ex.number, path, results)
    if not path.is_file():
        verdict.problem = not_found(ex, path, directory)
        return verdict
    learner = Learner(ex, path)
    for result, (_, check) in zip(results, ex.checks):
        try:
            check(learner)
        except NotImplementedError as exc:
            if not str(exc).startswith(STUB_PREFIX):
                result.status, result.reason = "failed", describe_exception(exc, path)
                break
            verdict.not_implemented = str(exc)
            result.status, result.reason = "failed", f"not implemented yet: {exc}"
            break
        except (CheckFailed, limits.Stopped) as exc:
            result.status, result.reason = "failed", str(exc)
            break
        except Exception as exc:  # noqa: BLE001 - the learner's code may raise anything
            result.status, result.reason = "failed", describe_exception(exc, path)
            break
        result.status = "passed"
    verdict.seconds = time.perf_counter() - started
    return verdict
