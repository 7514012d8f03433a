"""``ddlkit course DIR``: write the learner's course folder, and update it without losing work.

A course folder holds ``notebooks/`` (the lessons), ``exercises/`` (the learner's copy: the
generated stubs, never the solutions) and ``docs/glossary.md`` (the notebooks link to
``../docs/glossary.md``). They are copied from :func:`ddlkit.paths.course_source`: the copy
inside the wheel, or the repository's own folders in a checkout.

``DIR/.ddlkit-course.json`` records the SHA-256 of every file written. Run again (say after
an upgrade), :func:`write_course` adds new files, updates files still exactly as written,
and keeps, untouched, every file the learner changed or that was there before: it never
overwrites a learner's work. The :class:`CourseReport` says which file went where and why.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ddlkit import __version__
from ddlkit.paths import WELCOME, course_source

#: the manifest of what was written, in the course folder
MANIFEST = ".ddlkit-course.json"
#: the folder ``ddlkit course`` and ``ddlkit lab`` use when none is given and the
#: current folder holds no course
DEFAULT_FOLDER = "ddlkit-course"
#: the files of a course, relative to its folder (and to the source's)
COURSE_FILE = re.compile(r"notebooks/[^/]+\.ipynb|exercises/ex\d\d_\w+\.(?:py|ipynb)"
                         r"|docs/glossary\.md")


class CourseError(Exception):
    """The course cannot be written; the message says where and why."""


@dataclass(frozen=True)
class Kept:
    """A file left as it is, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class CourseReport:
    """What :func:`write_course` did, by path relative to ``folder``."""

    folder: Path
    source: Path
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[Kept, ...]
    fresh: bool  #: True when the folder held no course before


def has_course(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a course (its welcome notebook)."""
    return (Path(folder) / WELCOME).is_file()


def default_folder(cwd: str | os.PathLike[str] | None = None) -> Path:
    """The current folder if it holds a course, else ``./ddlkit-course``."""
    here = Path.cwd() if cwd is None else Path(cwd)
    return here if has_course(here) else here / DEFAULT_FOLDER


def course_files(source: Path) -> dict[str, bytes]:
    """Every course file under ``source``, by path relative to it (``/``-separated)."""
    files = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and COURSE_FILE.fullmatch(relative):
            files[relative] = path.read_bytes()
    if WELCOME not in files:
        raise CourseError(f"{source} holds no course ({WELCOME} is missing)")
    return files


def write_course(folder: str | os.PathLike[str], source: Path | None = None) -> CourseReport:
    """Write the course into ``folder``; never overwrite a file the learner changed.

    ``source`` is where the course comes from (default: :func:`ddlkit.paths.course_source`).
    Raises :class:`CourseError` when the folder cannot be written.
    """
    folder = Path(folder).expanduser().absolute()
    if source is None:
        source = course_source()
        if source is None:
            raise CourseError("this ddlkit has no course: it is neither a wheel that carries "
                              "one nor a git checkout; reinstall ddlkit")
    files = course_files(source)
    _check_folder(folder, source)
    fresh = not (folder / MANIFEST).exists() and not has_course(folder)
    recorded = _read_manifest(folder / MANIFEST)
    manifest: dict[str, str] = {}
    added, updated, unchanged, kept = [], [], [], []
    for relative, content in files.items():
        target = folder / relative
        current = target.read_bytes() if target.is_file() else None
        if current == content:
            unchanged.append(relative)
        elif current is None and not target.exists():
            _write(target, content)
            added.append(relative)
        elif current is not None and recorded.get(relative) == _sha256(current):
            _write(target, content)
            updated.append(relative)
        else:
            kept.append(Kept(relative, _why_kept(relative, current, recorded)))
            if relative in recorded:
                manifest[relative] = recorded[relative]
            continue
        manifest[relative] = _sha256(content)
    for relative in sorted(set(recorded) - set(files)):
        if (folder / relative).exists():
            kept.append(Kept(relative, f"no longer part of the course in ddlkit {__version__}; "
                                       "left as it is"))
    _write(folder / MANIFEST, _manifest_text(manifest))
    return CourseReport(folder, source, tuple(added), tuple(updated), tuple(unchanged),
                        tuple(kept), fresh)


def _check_folder(folder: Path, source: Path) -> None:
    """Raise :class:`CourseError` unless ``folder`` is a folder we may write into."""
    if folder.exists() and not folder.is_dir():
        raise CourseError(f"{folder} is a file, not a folder: choose another DIR")
    if folder.resolve() == source.resolve():
        raise CourseError(f"{folder} is where the course comes from (the ddlkit repository): "
                          "use its notebooks/ and exercises/ as they are, or choose another DIR")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(f"cannot create {folder}: {err.strerror or err}") from None
    if not _writable(folder):
        raise CourseError(f"cannot write into {folder}: permission denied")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _why_kept(relative: str, current: bytes | None, recorded: dict[str, str]) -> str:
    if current is None:
        return "something that is not a file is in its place"
    if relative in recorded:
        return "you changed it since ddlkit wrote it"
    return "it was already there, not written by `ddlkit course`"


def _write(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` atomically (a temp file in the same folder, renamed)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise CourseError(f"cannot write {target}: {err.strerror or err}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_text(files: dict[str, str]) -> bytes:
    data = {"written_by": f"ddlkit {__version__}", "files": dict(sorted(files.items()))}
    return (json.dumps(data, indent=1) + "\n").encode("utf-8")


def _read_manifest(path: Path) -> dict[str, str]:
    """The recorded hashes; an unreadable manifest counts as empty (so nothing is overwritten)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def written_by(folder: str | os.PathLike[str]) -> str | None:
    """Which ddlkit wrote the course in ``folder`` (``"ddlkit 0.1.0"``), if it says."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        return str(data["written_by"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
