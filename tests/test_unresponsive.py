"""Frozen ranks: a stopped worker is named as unresponsive, not dead, and soon; a slow one is
never mistaken for it. Stopped processes are resumed afterwards, so nothing stays stopped."""
from __future__ import annotations

import functools
import json
import os
import signal
import time
from pathlib import Path

import pytest
from procs import running

import ddlkit
from ddlkit.runtime import run_ranks
from ddlkit.runtime.live import Progress, RankLost, RankReady
from ddlkit.tools.checks import busy

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP (POSIX)")
LONG = dict(dataset="digits", steps=100_000, eval_every=50, timeout_s=120.0)


class StopAt:
    """An on_event hook that SIGSTOPs one rank once the run reaches ``step``."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step
        self.pids: dict[int, int] = {}
        self.stopped_at: float | None = None
        self.lost: list[RankLost] = []

    def __call__(self, event: object) -> None:
        if isinstance(event, RankReady):
            self.pids[event.rank] = event.pid
        elif isinstance(event, RankLost):
            self.lost.append(event)
        elif (isinstance(event, Progress) and event.step >= self.step
              and self.stopped_at is None):
            os.kill(self.pids[self.rank], signal.SIGSTOP)
            self.stopped_at = time.monotonic()

    def resume(self) -> None:
        pid = self.pids.get(self.rank)
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("mode,rank", [("sync", 2), ("allreduce", 0)])
def test_a_stopped_rank_is_unresponsive_within_20s(tmp_path: Path, mode: str,
                                                   rank: int) -> None:
    hook = StopAt(rank, step=5)
    exp = ddlkit.Experiment(mode=mode, workers=3, **LONG)  # unresponsive_s: the default
    try:
        with pytest.raises(ddlkit.WorkerUnresponsive) as info:
            ddlkit.run(exp, on_event=hook, record_dir=tmp_path)
        elapsed = time.monotonic() - hook.stopped_at
    finally:
        hook.resume()
    err = info.value
    assert isinstance(err, ddlkit.WorkerFailed) and not isinstance(err, ddlkit.RunTimeout)
    assert err.rank == rank and exp.unresponsive_s <= err.silent_s < 20.0
    text = str(err)
    assert f"rank {rank}" in text and "unresponsive, not dead" in text
    assert "training:" in text and "step" in text and "unresponsive_s=10" in text
    assert elapsed < 20.0, f"reported {elapsed:.1f} s after the freeze"
    assert not any(running(p) for p in hook.pids.values())
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and "unresponsive" in record["error"]


def test_async_ends_a_stopped_worker_and_carries_on(tmp_path: Path) -> None:
    hook = StopAt(2, step=10)
    exp = ddlkit.Experiment(mode="async", workers=3, dataset="iris", steps=150, eval_every=50,
                            worker_delays=(0.02, 0.02, 0.02), unresponsive_s=3.0)
    try:
        result = ddlkit.run(exp, on_event=hook, record_dir=tmp_path)
    finally:
        hook.resume()
    assert result.status == "ok"
    assert {e.rank for e in hook.lost} == {2}
    how = hook.lost[-1].info["how"]
    assert "unresponsive" in how and "ended by ddlkit" in how
    assert [lost["rank"] for lost in result.lost] == [2]


def test_a_slow_or_busy_rank_is_not_mistaken_for_a_frozen_one() -> None:
    # Each rank computes in pure Python for 3 s, well past unresponsive_s=2: still alive.
    outputs = run_ranks(functools.partial(busy, seconds=3.0), 2, unresponsive_s=2.0)
    assert all(n > 0 for n in outputs)
    slow = ddlkit.Experiment(mode="sync", workers=2, dataset="iris", steps=2, eval_every=2,
                             worker_delays=(0.0, 3.0), unresponsive_s=2.0)
    assert ddlkit.run(slow).status == "ok"


def test_unresponsive_s_is_validated() -> None:
    with pytest.raises(ddlkit.ConfigError, match="unresponsive_s"):
        ddlkit.Experiment(unresponsive_s=0.5)


def test_a_pool_worker_frozen_between_runs_is_named_and_replaced() -> None:
    from ddlkit.runtime.pool import WorkerPool

    exp = ddlkit.Experiment(mode="sync", workers=2, dataset="iris", steps=5, eval_every=5,
                            unresponsive_s=3.0)
    with WorkerPool(3) as pool:
        victim = pool.pids[1]
        os.kill(victim, signal.SIGSTOP)  # frozen while idle: the pool cannot tell
        try:
            t0 = time.monotonic()
            with pytest.raises(ddlkit.WorkerUnresponsive) as info:
                ddlkit.run(exp, pool=pool)
            assert time.monotonic() - t0 < 3.0 + 10.0
            assert info.value.rank == 1 and "not yet joined" in str(info.value)
        finally:
            if running(victim):
                os.kill(victim, signal.SIGCONT)
        assert victim not in pool.pids
        assert ddlkit.run(exp, pool=pool).status == "ok"
