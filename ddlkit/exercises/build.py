"""Generate ``exercises/`` from ``solutions/``: every solution region becomes a stub.

In a solution file (``exNN_name.py``, or a code cell of ``exNN_name.ipynb``) a region::

    # BEGIN SOLUTION
    # HINT: what to do, in a sentence
    #   (a hint continues on comment lines that start with "#" and two spaces)
    ...the answer...
    # END SOLUTION

becomes, at the indentation of ``# BEGIN SOLUTION``::

    # HINT: what to do, in a sentence
    #   (a hint continues on comment lines that start with "#" and two spaces)
    raise NotImplementedError("Exercise N: implement <enclosing function>()")

Everything outside regions (signatures, docstrings) is kept. Notebooks are copied with
outputs and execution counts removed. The output is deterministic, and ``.generated.sha256``
in the output folder records what was written: a later build replaces only files still
exactly as generated, so a learner's work in ``exercises/`` is never overwritten unless
``force`` is given.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ddlkit.files import atomic_write

BEGIN, END, HINT = "# BEGIN SOLUTION", "# END SOLUTION", "# HINT:"
#: the files that make up an exercise: exNN_name.py and exNN_name.ipynb
EXERCISE_FILE = re.compile(r"ex(\d\d)_\w+\.(py|ipynb)")
MANIFEST = ".generated.sha256"
_DEF = re.compile(r"(\s*)(?:async\s+)?def\s+(\w+)")


class BuildError(ValueError):
    """A solution file whose regions are malformed; the message names file and line."""


def stub_source(text: str, number: int, where: str = "<source>") -> str:
    """``text`` with each solution region replaced by its hint and a raising stub."""
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise BuildError(f"{where}, line {i + 1}: {END} without {BEGIN}")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[:len(line) - len(line.lstrip())]
        start = i
        i += 1
        region: list[str] = []
        while i < len(lines) and lines[i].strip() != END:
            if lines[i].strip() == BEGIN:
                raise BuildError(f"{where}, line {i + 1}: {BEGIN} inside another region "
                                 f"(opened at line {start + 1})")
            region.append(lines[i])
            i += 1
        if i == len(lines):
            raise BuildError(f"{where}, line {start + 1}: {BEGIN} is never closed by {END}")
        out.extend(indent + h + "\n" for h in _hints(region))
        task = _enclosing_function(lines[:start], len(indent))
        what = f"implement {task}()" if task else "write this part"
        out.append(f'{indent}raise NotImplementedError("Exercise {number}: {what}")\n')
        i += 1  # skip the END line
    return "".join(out)


def _hints(region: list[str]) -> list[str]:
    """The ``# HINT:`` lines of a region, each with its ``#  `` continuation lines."""
    hints: list[str] = []
    in_hint = False
    for raw in region:
        text = raw.strip()
        if text.startswith(HINT):
            hints.append(text)
            in_hint = True
        elif in_hint and text.startswith("#  "):
            hints.append(text)
        else:
            in_hint = False
    return hints


def _enclosing_function(before: list[str], indent: int) -> str | None:
    """The name of the nearest ``def`` above, indented less than the region."""
    for line in reversed(before):
        match = _DEF.match(line)
        if match and len(match.group(1)) < indent:
            return match.group(2)
    return None


def stub_notebook(text: str, number: int, where: str = "<notebook>") -> str:
    """A notebook (JSON text) with outputs stripped and solution regions stubbed."""
    notebook = json.loads(text)
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        stubbed = stub_source(source, number, f"{where} cell {index}")
        cell["source"] = stubbed.splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
        tags = cell.get("metadata", {}).get("tags")
        cell["metadata"] = {"tags": tags} if tags else {}
    notebook.get("metadata", {}).pop("widgets", None)
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(source: Path) -> dict[str, bytes]:
    """File name -> content of every exercise file generated from the ``source`` folder."""
    files: dict[str, bytes] = {}
    for path in sorted(Path(source).iterdir()):
        match = EXERCISE_FILE.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        number = int(match.group(1))
        text = path.read_text(encoding="utf-8")
        stub = stub_source if match.group(2) == "py" else stub_notebook
        files[path.name] = stub(text, number, path.name).encode("utf-8")
    return files


@dataclass
class BuildReport:
    """What :func:`build` did, by file name."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def build(source: str | Path, out: str | Path, force: bool = False) -> BuildReport:
    """Write the exercises generated from ``source`` into ``out``.

    A file already in ``out`` that was changed since it was generated (it no longer
    matches the manifest) is kept and listed in ``report.kept``, unless ``force``.
    Exercise files that no longer have a source are removed if unchanged.
    """
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise BuildError(f"no folder {source}")
    files = generate(source)
    if not files:
        raise BuildError(f"{source} holds no exercise files (exNN_name.py / exNN_name.ipynb)")
    out.mkdir(parents=True, exist_ok=True)
    recorded = _read_manifest(out / MANIFEST)
    report = BuildReport()
    manifest: dict[str, str] = {}
    for name, content in files.items():
        target = out / name
        digest = _sha256(content)
        current = target.read_bytes() if target.is_file() else None
        if current == content:
            report.unchanged.append(name)
        elif current is None or force or recorded.get(name) == _sha256(current):
            atomic_write(target, content)
            report.written.append(name)
        else:
            report.kept.append(name)
            if name in recorded:
                manifest[name] = recorded[name]
            continue
        manifest[name] = digest
    for name in sorted(set(recorded) - set(files)):
        target = out / name
        if target.is_file() and (force or _sha256(target.read_bytes()) == recorded[name]):
            target.unlink()
            report.removed.append(name)
    text = "".join(f"{manifest[name]}  {name}\n" for name in sorted(manifest))
    atomic_write(out / MANIFEST, text.encode("utf-8"))
    return report


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    entries = {}  # a damaged manifest matches nothing, so every changed file is kept
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            entries[name] = digest
    return entries
