"""The set-up check, run for real: every row passes here, and a failing check is reported.
``ddlkit doctor`` prints it and exits 0 or 1. The platform's advice is tested in
test_machine.py, the process listing without /proc in test_procs.py."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddlkit.cli import main
from ddlkit.runtime.processes import START_METHOD_ENV
from ddlkit.tools import doctor

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("platform", "Python version", "torch build", "gloo backend", "worker start method",
         "free port on 127.0.0.1", "2 workers start and talk", "a tiny training run",
         "nothing left running")


def test_check_passes_on_this_machine() -> None:
    report = doctor.check(workers=2)
    assert report.ok, str(report)
    assert tuple(r.name for r in report.rows) == NAMES
    assert all(r.seconds >= 0 and r.detail for r in report.rows)
    text = str(report)
    assert text.splitlines()[0].startswith("All 9 set-up checks passed")
    assert "FAIL" not in text
    page = report._repr_html_()
    assert page.count("✓") == len(NAMES) and "✗" not in page


def test_platform_row_comes_first_and_names_the_machine() -> None:
    row = doctor.check(workers=1).rows[0]
    assert row.name == "platform" and row.ok
    assert "Linux" in row.detail and "Python 3." in row.detail and "core" in row.detail


def test_start_method_row_says_which_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_METHOD_ENV, raising=False)
    row = doctor.run_check("m", lambda: doctor._start_method("linux"), hint="")
    assert row.ok and row.detail.startswith("forkserver: the default on Linux")
    monkeypatch.setenv(START_METHOD_ENV, "spawn")
    row = doctor.run_check("m", lambda: doctor._start_method("linux"), hint="")
    assert row.ok and row.detail.startswith(f"spawn: set by {START_METHOD_ENV}=spawn")


def test_an_invalid_start_method_fails_its_row_with_the_error_and_a_hint(
        monkeypatch: pytest.MonkeyPatch, no_process_started: None) -> None:
    monkeypatch.setenv(START_METHOD_ENV, "fork")
    row = doctor.run_check("m", lambda: doctor._start_method("linux"), hint="not this one")
    assert not row.ok
    assert row.detail.startswith(f"ConfigError: {START_METHOD_ENV}='fork' is not allowed")
    assert "forkserver, spawn" in row.detail
    assert f"unset {START_METHOD_ENV}" in row.hint and "restart" in row.hint
    facts = doctor.machine.detect()
    talk = doctor.run_check("talk", doctor._advised(lambda: doctor._workers_talk(2), facts),
                            hint="restart the kernel")
    assert not talk.ok and "start method first" in talk.hint


def test_a_libuv_failure_is_given_the_platforms_advice() -> None:
    def store() -> str:
        raise RuntimeError("use_libuv was requested but PyTorch was built without libuv "
                           "support, run with USE_LIBUV=0 to disable it.")

    windows = doctor.machine.Platform("win32", "11", "AMD64", "3.11.9")
    row = doctor.run_check("talk", doctor._advised(store, windows), hint="restart")
    assert not row.ok and row.detail.startswith("RuntimeError: use_libuv was requested")
    assert "pytorch#139990" in row.hint and "wsl --install" in row.hint

    def other() -> str:
        raise RuntimeError("rank 1 raised ValueError")

    assert doctor.run_check("talk", doctor._advised(other, windows), hint="restart").hint == (
        "restart")


def test_cli_doctor_prints_the_report_and_exits_by_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    good = doctor.SetupCheck("fine", True, "all good", 0.0)
    bad = doctor.SetupCheck("broken", False, "it broke", 0.0, hint="mend it")
    seen: list[int] = []

    def fake_check(workers: int = 2) -> doctor.Report:
        seen.append(workers)
        return doctor.Report((good, bad) if workers == 3 else (good,))

    monkeypatch.setattr(doctor, "check", fake_check)
    assert main(["doctor"]) == 0
    assert "All 1 set-up checks passed" in capsys.readouterr().out
    assert main(["doctor", "--workers", "3"]) == 1
    out = capsys.readouterr().out
    assert "1 of 2 set-up checks failed" in out and "what to do: mend it" in out
    assert seen == [2, 3]


def test_cli_doctor_prints_on_a_console_that_lacks_the_symbols(
        monkeypatch: pytest.MonkeyPatch) -> None:
    row = doctor.SetupCheck("x", False, "sync · 2 workers ✓", 0.0, hint="Kernel → Restart")
    monkeypatch.setattr(doctor, "check", lambda workers=2: doctor.Report((row,)))
    console = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")  # a Windows pipe
    monkeypatch.setattr(sys, "stdout", console)
    assert main(["doctor"]) == 1
    console.flush()
    text = console.buffer.getvalue().decode("cp1252")
    assert "sync · 2 workers ?" in text and "Kernel ? Restart" in text


@pytest.mark.parametrize("value", ["0", "17", "two"])
def test_cli_doctor_refuses_a_bad_worker_count(
        value: str, capsys: pytest.CaptureFixture[str], no_process_started: None) -> None:
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--workers", value])
    assert info.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_python_m_ddlkit_doctor_runs_for_real(tmp_path: Path) -> None:
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop(START_METHOD_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "ddlkit", "doctor", "--workers", "1"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "All 9 set-up checks passed: this machine is ready for the course."
    assert lines[2].startswith("ok   platform")


def test_talk_check_names_the_workers_and_threads() -> None:
    row = doctor.run_check("talk", lambda: doctor._workers_talk(3), hint="")
    assert row.ok, row.detail
    assert "all 3 got 3" in row.detail and "1 compute thread" in row.detail


def test_a_failing_check_is_reported_not_raised() -> None:
    def broken() -> str:
        raise OSError("[Errno 98] Address already in use\nsecond line")

    row = doctor.run_check("free port", broken, hint="close the other program")
    assert not row.ok
    assert row.detail == "OSError: [Errno 98] Address already in use"
    assert row.hint == "close the other program"

    ok_row = doctor.run_check("fine", lambda: "all good", hint="never shown")
    assert ok_row.ok and ok_row.detail == "all good" and ok_row.hint == ""

    report = doctor.Report((ok_row, row))
    assert not report.ok
    assert report.failed == [row]
    text = str(report)
    assert "1 of 2 set-up checks failed" in text
    assert "FAIL" in text and "what to do: close the other program" in text
    page = report._repr_html_()
    assert "✗" in page and "✓" in page and "close the other program" in page


def test_an_exception_without_a_message_is_still_readable() -> None:
    def silent() -> str:
        raise RuntimeError()

    assert doctor.run_check("x", silent, hint="h").detail == "RuntimeError: (no message)"


@pytest.mark.parametrize("workers", [0, 17, 2.0, True])
def test_bad_worker_count_is_refused(workers: object, no_process_started: None) -> None:
    with pytest.raises(ValueError, match="workers"):
        doctor.check(workers=workers)  # type: ignore[arg-type]


def test_a_process_left_running_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    monkeypatch.setattr(doctor, "SETTLE_S", 0.2)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        row = doctor.run_check("nothing left running", doctor._nothing_left, hint="restart")
        assert not row.ok
        assert str(child.pid) in row.detail and "still running" in row.detail
    finally:
        child.kill()
        child.wait()
    assert doctor.run_check("again", doctor._nothing_left, hint="").ok
