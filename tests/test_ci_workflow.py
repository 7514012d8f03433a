"""The public CI workflow runs the portable checks on Linux, macOS and Windows: the set-up
check, the engine's core tests and a notebook, with the CPU build of torch."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement  # packaging comes with pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
OSES = {"ubuntu-latest", "macos-latest", "windows-latest"}


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with JupyterLab's dependencies
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    (only,) = workflow["jobs"].values()
    return dict(only)


def commands(job: dict[str, Any]) -> list[str]:
    return [" ".join(str(step["run"]).split()) for step in job["steps"] if "run" in step]


def test_the_matrix_covers_three_platforms_on_python_311(job: dict[str, Any]) -> None:
    matrix = job["strategy"]["matrix"]
    assert set(matrix["os"]) == OSES
    assert [str(v) for v in matrix["python-version"]] == ["3.11"]
    assert job["strategy"]["fail-fast"] is False
    assert job["runs-on"] == "${{ matrix.os }}"
    assert 0 < job["timeout-minutes"] <= 90
    assert job["defaults"]["run"]["shell"] == "bash"


def test_torch_is_the_cpu_build_inside_pyprojects_range(job: dict[str, Any]) -> None:
    (torch,) = [c for c in commands(job) if "torch" in c and "--index-url" in c]
    assert torch.endswith("--index-url https://download.pytorch.org/whl/cpu")
    pin = Requirement(torch.split("install", 1)[1].split()[0].strip("\"'"))
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (course,) = re.findall(r"^TORCH_SPEC \?= torch==(\S+)$", makefile, flags=re.MULTILINE)
    assert pin.name == "torch" and pin.specifier.contains(course)  # the course machine's torch
    runs = commands(job)
    assert runs.index(torch) < runs.index('python -m pip install -e ".[dev]"')


def test_the_steps_run_doctor_the_portable_tests_and_a_notebook(job: dict[str, Any]) -> None:
    runs = commands(job)
    assert "ddlkit doctor" in runs
    assert any(c.startswith("python -m pytest -m portable tests") for c in runs)
    notebooks = [c for c in runs if "--nbval-lax" in c]
    assert len(notebooks) == 1 and notebooks[0].endswith(".ipynb")
    assert (ROOT / notebooks[0].split()[-1]).is_file()
    assert job["steps"][0]["uses"].startswith("actions/checkout@")
    assert job["steps"][1]["uses"].startswith("actions/setup-python@")


def test_actionlint_accepts_the_workflow() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed")
    proc = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
