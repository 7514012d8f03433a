"""Where the course's files are: inside the installed wheel, or in the git checkout.

A wheel carries the course as package data in ``ddlkit/_course/`` (pyproject.toml maps
``notebooks/``, ``exercises/`` and ``docs/glossary.md`` there when it builds the wheel). An
editable install, or a checkout on ``PYTHONPATH``, runs from the repository, whose own
folders are the course. Both have the same layout, so one relative path (``WELCOME``)
names a file in either.
"""
from __future__ import annotations

from pathlib import Path

#: the ddlkit package folder (in the checkout, or in site-packages)
PACKAGE = Path(__file__).resolve().parent
#: where a wheel keeps the course; absent in a checkout
PACKAGED_COURSE = PACKAGE / "_course"
#: the notebook a course opens on, relative to the course folder
WELCOME = "notebooks/00_welcome.ipynb"


def checkout_root() -> Path | None:
    """The git checkout this ddlkit runs from (editable install), or None when installed."""
    root = PACKAGE.parent
    markers = (root / "pyproject.toml", root / "solutions", root / WELCOME)
    return root if all(m.exists() for m in markers) else None


def course_source() -> Path | None:
    """The folder the course is copied from: the wheel's packaged copy, else the checkout."""
    if (PACKAGED_COURSE / WELCOME).is_file():
        return PACKAGED_COURSE
    return checkout_root()
