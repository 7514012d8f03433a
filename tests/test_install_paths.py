"""The ways in: the welcome notebook's first cell says how to install ddlkit in a bare kernel
(Colab, JupyterHub) and stops, and the README and the notebook give the same commands as
``ddlkit.tools.machine`` (one placeholder URL for the repository)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddlkit.tools import machine

ROOT = Path(__file__).resolve().parents[1]
WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"


def first_code_cell() -> str:
    cells = json.loads(WELCOME.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code")


#: how a cell is run without ddlkit: a bare interpreter (no site-packages, no PYTHONPATH),
#: and one where ddlkit is found but torch is not
WITHOUT = {
    "bare kernel": ["-I", "-S", "-c", "exec(open(0).read())"],
    "no torch": ["-c", "import sys; sys.modules['torch'] = None; exec(sys.stdin.read())"],
}


@pytest.mark.parametrize("how", sorted(WITHOUT))
def test_first_cell_without_ddlkit_prints_how_to_install_and_stops(
        how: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, *WITHOUT[how]], input=first_code_cell(),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "PYTHONIOENCODING": "utf-8"})
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 1
    assert "ddlkit cannot be imported here" in out
    assert f"%{machine.PIP_INSTALL_TORCH}" in out
    assert f"%{machine.PIP_INSTALL_DDLKIT}" in out
    assert "Colab" in out and "restart the kernel" in out
    assert "is installed" not in out
    # one short error, not the ImportError chained to it
    assert err.strip().splitlines()[-1] == (
        "RuntimeError: ddlkit is not installed: see the commands above")
    assert "During handling" not in err and "ModuleNotFoundError" not in err


def test_first_cell_with_ddlkit_says_which_version(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "exec(open(0).read())"],
                          input=first_code_cell(), capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ddlkit ") and "is installed" in proc.stdout


def test_the_guard_is_all_the_first_cell_does() -> None:
    source = first_code_cell()
    assert source.startswith("try:")
    assert len(source.splitlines()) <= 15  # notebooks are prose and calls


@pytest.mark.parametrize("command", [machine.PIP_INSTALL_DDLKIT, machine.PIP_INSTALL_TORCH])
def test_readme_and_notebook_give_the_same_install_commands(command: str) -> None:
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    assert command in first_code_cell()


def test_readme_documents_every_way_in() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for text in ("make lab", "make test", "make test-portable", "wsl --install",
                 "ddlkit course my-course", "ddlkit lab my-course", "ddlkit grade ex01",
                 "environment.yml", "%pip install", "Restart session", "ddlkit doctor",
                 "DDLKIT_START_METHOD", "forkserver", "spawn"):
        assert text in readme, f"README.md does not mention {text!r}"
