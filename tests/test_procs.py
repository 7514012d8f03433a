"""The doctor's process listing where there is no /proc (macOS, Windows), tried on Linux by
pointing ``ddlkit.tools.procs.PROC`` at a missing folder: psutil answers when installed;
without it, multiprocessing's children and ``os.kill(pid, 0)``, never ``os.kill`` on Windows."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ddlkit.tools import doctor, procs

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(procs, "PROC", tmp_path / "no-proc")


@pytest.fixture
def no_psutil(monkeypatch: pytest.MonkeyPatch, no_proc: None) -> None:
    monkeypatch.setattr(procs, "psutil", None)


@pytest.fixture
def popen_child() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(SLEEPER)
    try:
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.fixture
def mp_child() -> Iterator[multiprocessing.process.BaseProcess]:
    child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,),
                                                          name="ddlkit-test-sleeper")
    child.start()
    try:
        yield child
    finally:
        child.kill()
        child.join()
        child.close()


def test_with_proc_everything_is_seen(popen_child: subprocess.Popen[bytes]) -> None:
    assert procs.source() == "/proc"
    assert popen_child.pid in procs.descendants(os.getpid())
    assert procs.running(popen_child.pid)
    assert "time.sleep(60)" in procs.command(popen_child.pid, width=1000)  # any venv path


def test_without_proc_psutil_answers(no_proc: None,
                                     popen_child: subprocess.Popen[bytes]) -> None:
    if procs.psutil is None:
        pytest.skip("psutil is not installed here")
    assert procs.source() == "psutil"
    assert popen_child.pid in procs.descendants(os.getpid())
    assert procs.running(popen_child.pid)
    assert "time.sleep(60)" in procs.command(popen_child.pid, width=1000)  # any venv path
    popen_child.kill()
    popen_child.wait()
    assert not procs.running(popen_child.pid)
    assert procs.command(popen_child.pid) == "?"


def test_without_proc_or_psutil_multiprocessing_children_are_seen(
        no_psutil: None, mp_child: multiprocessing.process.BaseProcess) -> None:
    assert procs.source() == "multiprocessing"
    assert mp_child.pid is not None
    seen = procs.descendants(os.getpid())  # other tests' pools may be alive too
    assert mp_child.pid in seen
    assert seen == {p.pid for p in multiprocessing.active_children()}
    assert procs.child_pids(12345678) == set()  # another process's children are unknown
    assert procs.running(mp_child.pid)  # os.kill(pid, 0)
    assert procs.command(mp_child.pid) == "ddlkit-test-sleeper"
    mp_child.kill()
    mp_child.join()
    assert not procs.running(mp_child.pid)  # reaped: os.kill finds no such process


def test_on_windows_without_psutil_os_kill_is_never_called(
        monkeypatch: pytest.MonkeyPatch, no_psutil: None,
        mp_child: multiprocessing.process.BaseProcess,
        popen_child: subprocess.Popen[bytes]) -> None:
    def kill(pid: int, sig: int) -> None:
        raise AssertionError(f"os.kill({pid}, {sig}) would end the process on Windows")

    assert mp_child.pid is not None
    with monkeypatch.context() as patch:  # undone before the fixtures end their children
        patch.setattr(procs, "WINDOWS", True)
        patch.setattr(procs.os, "kill", kill)
        assert procs.running(mp_child.pid)
        assert not procs.running(popen_child.pid)  # not ours to know: counted as not running


def test_the_last_doctor_check_works_without_proc(
        monkeypatch: pytest.MonkeyPatch, no_proc: None,
        popen_child: subprocess.Popen[bytes]) -> None:
    monkeypatch.setattr(doctor, "SETTLE_S", 0.2)
    if procs.psutil is not None:
        row = doctor.run_check("nothing left running", doctor._nothing_left, hint="")
        assert not row.ok and str(popen_child.pid) in row.detail
    monkeypatch.setattr(procs, "psutil", None)
    row = doctor.run_check("nothing left running", doctor._nothing_left, hint="")
    assert row.ok and "as multiprocessing tells" in row.detail  # a Popen child is not seen


def test_the_last_doctor_check_finds_a_multiprocessing_child_without_proc_or_psutil(
        monkeypatch: pytest.MonkeyPatch, no_psutil: None,
        mp_child: multiprocessing.process.BaseProcess) -> None:
    monkeypatch.setattr(doctor, "SETTLE_S", 0.2)
    row = doctor.run_check("nothing left running", doctor._nothing_left, hint="")
    assert not row.ok
    assert f"{mp_child.pid} (ddlkit-test-sleeper)" in row.detail
