"""The set-up check, run for real: every row passes here, and a failing check is reported."""
from __future__ import annotations

import pytest

from ddlkit.tools import doctor

NAMES = ("Python version", "torch build", "gloo backend", "forkserver start method",
         "free port on 127.0.0.1", "2 workers start and talk", "a tiny training run",
         "nothing left running")


def test_check_passes_on_this_machine() -> None:
    report = doctor.check(workers=2)
    assert report.ok, str(report)
    assert tuple(r.name for r in report.rows) == NAMES
    assert all(r.seconds >= 0 and r.detail for r in report.rows)
    text = str(report)
    assert text.splitlines()[0].startswith("All 8 set-up checks passed")
    assert "FAIL" not in text
    page = report._repr_html_()
    assert page.count("✓") == len(NAMES) and "✗" not in page


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
