"""The warm worker pool: same results as fresh processes, healthy after failures, no leaks."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from procs import KILL, running

import ddlkit
from ddlkit.runtime.pool import WorkerPool

EXP = ddlkit.Experiment(mode="sync", workers=3, dataset="iris", model="mlp", hidden=16,
                        steps=15, batch_size=8, sharding="unbalanced", eval_every=5)


@pytest.mark.portable
def test_pooled_runs_equal_fresh_runs_bitwise() -> None:
    fresh = ddlkit.run(EXP)
    with WorkerPool(4) as pool:
        pids = set(pool.pids)
        for _ in range(2):
            pooled = ddlkit.run(EXP, pool=pool)
            assert pooled.final_params.tobytes() == fresh.final_params.tobytes()
        assert set(pool.pids) == pids  # the same processes, reused
        smaller = ddlkit.run(EXP.replace(mode="allreduce", workers=2), pool=pool)
        assert smaller.status == "ok" and pool.size == 4  # fewer workers than the pool holds


@pytest.mark.portable
def test_failures_leave_the_pool_healthy() -> None:
    with WorkerPool(4) as pool:
        victim = pool.pids[0]
        os.kill(victim, signal.SIGKILL)  # an idle worker dies
        time.sleep(0.2)
        assert ddlkit.run(EXP, pool=pool).status == "ok"  # it was replaced
        assert victim not in pool.pids
        with pytest.raises(ddlkit.WorkerFailed):
            ddlkit.run(EXP.replace(faults=("kill:2@5",)), pool=pool)
        assert pool.replaced >= 4 and len(pool.pids) == 4
        again = ddlkit.run(EXP, pool=pool)
        assert again.final_params.tobytes() == ddlkit.run(EXP).final_params.tobytes()
        pids = pool.pids
    assert not any(map(running, pids))  # close() ended them


SCRIPT = """
import ddlkit
from ddlkit.runtime.pool import WorkerPool
if __name__ == "__main__":
    pool = WorkerPool(3)
    print(" ".join(map(str, pool.pids)), flush=True)
    import time; time.sleep(60)
"""


@pytest.mark.portable
def test_pool_workers_never_outlive_their_parent(tmp_path: Path) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(SCRIPT)
    # The killed "kernel" cannot remove its multiprocessing temp folder: keep it in tmp_path.
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 3 and all(map(running, pids))
        os.kill(parent.pid, KILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(running, pids)):
            time.sleep(0.05)
        assert not any(map(running, pids))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_run_with_a_closed_pool_is_refused() -> None:
    pool = WorkerPool(1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        ddlkit.run(EXP, pool=pool)
    assert np.isfinite(ddlkit.run(EXP).final_params).all()
