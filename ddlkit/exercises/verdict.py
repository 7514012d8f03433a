"""The outcome of grading one exercise: which checks passed, and why the first failed.

:class:`Verdict` reads as one line (``summary()``), a few lines (``repr``, for the command
line) or a small HTML block (``_repr_html_``, for a notebook's grading cell).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CheckResult:
    """One check of a verdict: ``status`` is ``passed``, ``failed`` or ``not run``."""

    name: str
    status: str
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_MARKS = {"passed": "✓", "failed": "✗", "not run": "·"}


@dataclass
class Verdict:
    """What :func:`grade` found for exercise ``number``. ``passed`` is True only when every
    check passed."""

    number: int
    path: Path
    checks: list[CheckResult]
    not_implemented: str | None = None
    problem: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (self.problem is None and self.not_implemented is None
                and all(c.passed for c in self.checks))

    @property
    def failure(self) -> CheckResult | None:
        """The first failed check, if any."""
        return next((c for c in self.checks if c.status == "failed"), None)

    def summary(self) -> str:
        """One line: all passed, not implemented yet, or the first failing check's reason."""
        n, total = self.number, len(self.checks)
        if self.problem is not None:
            return f"Exercise {n}: cannot grade: {self.problem}"
        if self.not_implemented is not None:
            return f"not implemented yet: {self.not_implemented} (in {shown(self.path)})"
        failed = self.failure
        if failed is None:
            return f"Exercise {n}: {total}/{total} checks passed"
        index = self.checks.index(failed) + 1
        return f"Exercise {n}: check {index}/{total} failed: {failed.reason}"

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        lines = [self.summary()]
        for c in self.checks:
            lines.append(f"  {_MARKS[c.status]} {c.name}")
        if self.problem is None:  # nothing was graded when there is no file
            lines.append(f"  graded {shown(self.path)} in {self.seconds:.1f} s")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#b35900" if self.not_implemented else "#c62828"
        rows = "".join(
            f"<li>{_MARKS[c.status]} {html.escape(c.name)}</li>" for c in self.checks)
        graded = "" if self.problem is not None else (
            f"<small>graded {html.escape(shown(self.path))} in {self.seconds:.1f} s</small>")
        return (f'<div><b style="color:{colour}">{html.escape(self.summary())}</b>'
                f'<ul style="list-style:none;margin:0.3em 0">{rows}</ul>{graded}</div>')


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
