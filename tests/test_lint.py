"""The code base stays lint-clean (rules pinned in pyproject.toml)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    beside = Path(sys.executable).parent / "ruff"  # the venv's own ruff, pinned by the dev extra
    ruff = str(beside) if beside.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed; `make test` installs it with the dev extra")
    proc = subprocess.run([ruff, "check", "ddlkit", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
