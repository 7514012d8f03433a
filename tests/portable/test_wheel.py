"""A wheel of ddlkit carries the course: build it, install it outside the repository, and
learn from it as a learner would (``make test-portable``; marked ``wheel``).

The steps: ``pip wheel`` builds the wheel (hatchling, in pip's build isolation); a fresh
venv in a temp folder gets it; ``ddlkit course`` writes the course into another temp
folder; ``00_welcome.ipynb`` runs there under nbval; ``ddlkit grade ex01`` fails on the
stub ("not implemented yet") and passes once the solution is copied over the learner's file.

How the venv gets its dependencies. Installing them for real (torch from the local wheel,
JupyterLab, scikit-learn, … about 115 packages) took 1 min 55 s here on its own, too much
of a 3-minute budget on a shared 2-core machine. So the wheel is installed with
``--no-deps`` into an empty venv, and then a ``.pth`` file puts the site-packages of the
Python running this test (the project's .venv) behind the venv's own: ddlkit comes from the
wheel (a test checks ``ddlkit.__file__``), everything else from the .venv. Directories named
in a .pth file are only added to ``sys.path``; their own .pth files (the .venv's editable
ddlkit) are not run. What this cannot show, that the wheel's declared dependencies install
from the registry, ``test_dependencies_resolve`` checks on its own with
``pip install --dry-run --ignore-installed`` (torch pinned to the installed build, found in
``$WHEELS_DIR``, default /opt/wheels, so pip never picks a CUDA build).

Measured here (2 shared cores, other jobs running): wheel build 6–10 s, empty venv and
wheel install 4 s, the dry-run resolve 24–41 s (it asks the registry), notebook 00
16 s (it runs ``doctor.check``: real workers from the installed ddlkit, then shows the
glossary from ``../docs/glossary.md``; alone, 00 took 9 s, 01 11 s, 02 9 s), grading
11 s, the whole file 93–108 s. Everything is written under one temp folder, removed
at the end, and every subprocess's TMPDIR points inside it.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
WHEELS_DIR = Path(os.environ.get("WHEELS_DIR", "/opt/wheels"))
EX01 = "exercises/ex01_weighted_average.py"
NOTEBOOK = "notebooks/00_welcome.ipynb"


def expected_course() -> dict[str, bytes]:
    """The course files of the repository: what the wheel must carry and ``course`` write."""
    paths = [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/ex[0-9][0-9]_*.py"),
             *ROOT.glob("exercises/ex[0-9][0-9]_*.ipynb"), ROOT / "docs" / "glossary.md"]
    return {p.relative_to(ROOT).as_posix(): p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One temp folder (outside the repository) for everything; removed at the end."""
    folder = tmp_path_factory.mktemp("portable")
    (folder / "tmp").mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def env_for(work: Path) -> dict[str, str]:
    """This environment without anything that would import the repository's ddlkit."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(TMPDIR=str(work / "tmp"), JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def run(argv: list[str | Path], work: Path, cwd: Path, timeout: float = 300,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env_for(work), text=True,
                          capture_output=True, timeout=timeout)


def pip(work: Path, *args: str | Path) -> list[str | Path]:
    """This Python's pip, acting on the test venv (pip ≥ 22.3: ``--python``)."""
    return [sys.executable, "-m", "pip", "--python", work / "venv" / "bin" / "python", *args]


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    out = work / "dist"
    done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
                "-w", out, ROOT], work, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = out.glob("ddlkit-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(work: Path, wheel: Path) -> Path:
    """A fresh venv with the wheel installed (no dependencies), then the .venv's behind it."""
    python = work / "venv" / "bin" / "python"
    done = run([sys.executable, "-m", "venv", "--without-pip", work / "venv"], work, cwd=work)
    assert done.returncode == 0, done.stderr
    done = run(pip(work, "install", "--no-deps", "--no-index", "--no-cache-dir", wheel),
               work, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       work, cwd=work).stdout.strip())
    installed = {p.name for p in purelib.iterdir()}
    assert installed == {"ddlkit", wheel.name.split("-py3")[0] + ".dist-info"}, installed
    (purelib / "zz_dependencies_from_the_test_env.pth").write_text(
        "".join(f"{p}\n" for p in site.getsitepackages()))
    return python


@pytest.fixture(scope="module")
def course(work: Path, venv: Path) -> Path:
    done = run([venv.parent / "ddlkit", "course", work / "course"], work, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote the course into {work / 'course'}" in done.stdout
    return work / "course"


# -- the wheel -----------------------------------------------------------------------------------
def test_wheel_holds_ddlkit_and_the_course_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        tops = {name.split("/")[0] for name in names}
        assert tops == {"ddlkit", wheel.name.split("-py3")[0] + ".dist-info"}
        prefix = "ddlkit/_course/"
        packed = {n[len(prefix):]: archive.read(n) for n in names if n.startswith(prefix)}
    assert packed == expected_course()  # the stubs: exercises/ is generated from solutions/
    assert not [n for n in names if "solution" in n.lower() or "/tests/" in n]


def test_dependencies_resolve(work: Path, wheel: Path, venv: Path) -> None:
    """The wheel's declared dependencies install from the registry (torch: the local build)."""
    torch = importlib.metadata.version("torch")
    (work / "constraints.txt").write_text(f"torch=={torch}\n")
    links = ["--find-links", WHEELS_DIR] if WHEELS_DIR.is_dir() else []
    done = run(pip(work, "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
                   "--quiet", "--report", work / "report.json", "-c", work / "constraints.txt",
                   *links, wheel), work, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((work / "report.json").read_text())
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}
    for name in ("torch", "numpy", "matplotlib", "ipywidgets", "jupyterlab", "scikit-learn",
                 "tqdm"):
        assert name in chosen, f"{name} would not be installed"
    assert chosen["torch"] == torch


# -- learning from it ----------------------------------------------------------------------------
def test_ddlkit_comes_from_the_wheel(work: Path, venv: Path) -> None:
    done = run([venv, "-c", "import ddlkit, ddlkit.paths as p; print(ddlkit.__file__); "
                "print(p.course_source()); print(p.checkout_root())"], work, cwd=work)
    assert done.returncode == 0, done.stderr
    module, source, checkout = done.stdout.split()
    assert Path(module).is_relative_to(work / "venv")
    assert Path(source) == Path(module).parent / "_course" and checkout == "None"


def test_course_is_written_from_the_wheel(course: Path) -> None:
    written = {p.relative_to(course).as_posix(): p.read_bytes()
               for p in course.rglob("*") if p.is_file() and p.name != ".ddlkit-course.json"}
    assert written == expected_course()


def test_a_course_notebook_runs_in_the_course_folder(work: Path, venv: Path, course: Path
                                                     ) -> None:
    done = run([venv, "-m", "pytest", "-c", os.devnull, "--rootdir", course,
                "-p", "no:cacheprovider", "-q", "--nbval-lax", "--nbval-current-env",
                "--nbval-cell-timeout=120", NOTEBOOK], work, cwd=course)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_grade_a_stub_then_the_solution(work: Path, venv: Path, course: Path) -> None:
    ddlkit_cli = venv.parent / "ddlkit"
    stub = run([ddlkit_cli, "grade", "ex01"], work, cwd=course)
    assert stub.returncode == 1, stub.stdout + stub.stderr
    assert stub.stdout.startswith("not implemented yet: Exercise 1"), stub.stdout
    shutil.copy(ROOT / "solutions" / "ex01_weighted_average.py", course / EX01)
    solved = run([ddlkit_cli, "grade", "ex01"], work, cwd=course / "notebooks")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert solved.stdout.startswith("Exercise 1: 3/3 checks passed"), solved.stdout


def test_grade_outside_a_course_says_where_it_looked(work: Path, venv: Path) -> None:
    (work / "elsewhere").mkdir()
    done = run([venv, "-m", "ddlkit", "grade", "ex01"], work, cwd=work / "elsewhere")
    assert done.returncode == 1
    assert f"in {work / 'elsewhere'}, nor in an exercises/ folder" in done.stdout
    assert "python -m ddlkit course DIR" in done.stdout
    assert "site-packages" not in done.stdout
