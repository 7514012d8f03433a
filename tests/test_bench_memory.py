"""Peak memory is read from /proc; where there is none (macOS, Windows) the benchmark says the
measurement is unavailable instead of crashing. Tried on Linux by pointing
``ddlkit.bench.memory.PROC`` at a missing folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ddlkit.bench import memory

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(memory, "PROC", tmp_path / "no-proc")


def test_with_proc_this_process_is_measured() -> None:
    assert memory.unavailable() is None
    rss, pss = memory.peak_rss_bytes(os.getpid()), memory.pss_bytes(os.getpid())
    assert rss is not None and rss > 10 * 2**20
    assert pss is not None and pss > 0
    sampler = memory.PeakSampler(interval_s=0.01)
    try:
        sampler.watch(os.getpid())
    finally:
        sampler.stop()
    assert sampler.peak_rss[os.getpid()] >= rss


def test_without_proc_the_measurement_is_said_to_be_unavailable(no_proc: None) -> None:
    reason = memory.unavailable()
    assert reason is not None
    assert "/proc" in reason and "unavailable" in reason
    assert memory.peak_rss_bytes(os.getpid()) is None
    assert memory.pss_bytes(os.getpid()) is None
    with pytest.raises(memory.MemoryUnavailable, match="unavailable"):
        memory.PeakSampler()


def test_without_proc_the_benchmark_reports_a_row_not_measured(
        no_proc: None, monkeypatch: pytest.MonkeyPatch, no_process_started: None) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_memory

    rows = bench_memory.measure(quick=True, repeats=1)
    assert len(rows) == 1
    assert rows[0].number == "6" and "unavailable" in (rows[0].not_measured or "")
