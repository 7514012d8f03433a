"""RunResult: what a run records, and its record.json round trip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import ddlkit
from ddlkit.runtime.live import CommEvents, EvalPoint, Progress, RankReady


def test_record_round_trip_and_live_events(tmp_path: Path) -> None:
    seen: list[object] = []
    exp = ddlkit.Experiment(mode="sync", workers=2, dataset="iris", model="linear", steps=20,
                            eval_every=5, worker_delays=(0.0, 0.01))
    result = ddlkit.run(exp, on_event=seen.append, record_dir=tmp_path)
    kinds = {type(e) for e in seen}
    assert {RankReady, Progress, EvalPoint, CommEvents} <= kinds
    assert [r["step"] for r in result.history] == [0, 5, 10, 15, 20]
    assert result.first_event_s is not None and result.first_event_s < result.wall_time_s
    # Cumulative bytes grow with the steps, and match the per-rank totals at the end.
    steps_bytes = [r["bytes"] for r in result.history]
    assert steps_bytes == sorted(steps_bytes)  # (workers may send before eval at step 0)
    assert steps_bytes[-1] == result.total_bytes
    # The straggler (rank 2) computes longer; the fast worker waits for it. Both also wait
    # for the server, which takes longer the busier the machine: the difference between
    # their waits is the straggler's sleep, on any machine.
    fast, slow = result.ranks[1], result.ranks[2]
    assert slow.compute_s > 20 * 0.01
    assert fast.wait_s - slow.wait_s > 0.5 * 20 * 0.01, (fast.wait_s, slow.wait_s)

    loaded = ddlkit.load_result(tmp_path)
    assert loaded.config == exp
    assert loaded.history == json.loads(json.dumps(result.history))
    assert loaded.ranks == result.ranks
    assert loaded.events == result.events
    assert np.array_equal(loaded.final_params, result.final_params)
    assert loaded.summary() == result.summary()
    assert result.meta["record"] == str(tmp_path / "record.json")
