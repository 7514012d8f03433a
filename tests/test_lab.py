"""``ddlkit lab [DIR]`` opens JupyterLab on a course folder, writing the course first if needed.

Most tests check the command it would run (``launch`` replaced); one starts the real
JupyterLab through ``python -m ddlkit lab``, asks it for the welcome notebook, and stops it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ddlkit.cli import main
from ddlkit.tools import lab
from ddlkit.tools.course import write_course

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv ``ddlkit lab`` would run, instead of running it."""
    calls: list[list[str]] = []
    monkeypatch.setattr(lab, "launch", lambda argv: calls.append(argv) or 0)
    return calls


def test_argv() -> None:
    folder = Path("/some/course")
    argv = lab.lab_argv(folder, root=False)
    assert argv == [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1",
                    "--ServerApp.root_dir=/some/course",
                    "--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb"]
    assert lab.lab_argv(folder, root=True)[-1] == "--allow-root"
    assert lab.lab_argv(folder, port=8899, browser=False, root=False)[-2:] == [
        "--port=8899", "--no-browser"]
    assert ("--allow-root" in lab.lab_argv(folder)) == (os.geteuid() == 0)


def test_lab_writes_the_course_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     launched: list[list[str]],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "--no-browser"]) == 0  # no course here: ./ddlkit-course
    folder = tmp_path / "ddlkit-course"
    out = capsys.readouterr().out
    assert f"{folder} holds no course yet: writing it first" in out
    assert f"wrote the course into {folder}" in out and "python -m ddlkit lab" not in out
    assert (folder / "notebooks" / "00_welcome.ipynb").is_file()
    assert launched == [lab.lab_argv(folder, browser=False)]


def test_lab_opens_an_existing_course_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               launched: list[list[str]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "course"
    write_course(folder)
    (folder / "notebooks" / "01_one_worker.ipynb").write_text("{}")  # the learner's
    monkeypatch.chdir(folder)
    assert main(["lab", "--port", "8899"]) == 0  # the current folder holds a course
    assert "writing" not in capsys.readouterr().out
    assert launched == [lab.lab_argv(folder, port=8899)]
    assert (folder / "notebooks" / "01_one_worker.ipynb").read_text() == "{}"
    monkeypatch.chdir(tmp_path)
    assert main(["lab", "course"]) == 0
    assert launched[-1] == lab.lab_argv(folder)


def test_lab_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    launched: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_file").write_text("")
    assert main(["lab", str(tmp_path / "a_file")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setattr(lab.importlib.util, "find_spec", lambda name: None)
    assert main(["lab", str(tmp_path)]) == 1
    assert "JupyterLab is not installed" in capsys.readouterr().err
    assert not launched


def test_launch_passes_on_the_exit_code() -> None:
    code = "import sys; from ddlkit.tools.lab import launch; " \
           "launch([sys.executable, '-c', 'raise SystemExit(7)'])"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 7


@pytest.mark.slow
def test_real_lab_serves_the_course(tmp_path: Path) -> None:
    """``python -m ddlkit lab DIR`` writes the course, then JupyterLab serves it."""
    folder, log = tmp_path / "course", tmp_path / "lab.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "ddlkit", "lab", str(folder), "--no-browser", "--port", "0"]
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  cwd=tmp_path)
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
            found = re.search(r"(http://127\.0\.0\.1:\d+)/lab\S*\?token=(\w+)", log.read_text())
            url = found and f"{found.group(1)}/api/contents/notebooks/00_welcome.ipynb" \
                            f"?content=0&token={found.group(2)}"
        assert url, f"JupyterLab did not start:\n{log.read_text()}"
        assert "holds no course yet: writing it first" in log.read_text()
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
        with direct.open(url, timeout=30) as answer:
            assert json.load(answer)["path"] == "notebooks/00_welcome.ipynb"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
