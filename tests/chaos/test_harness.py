"""The chaos harness itself, without starting a run: its verdicts on made-up observations,
and its leak check on a deliberate leak. A harness that passes everything finds nothing."""
from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest

from tests.chaos.leaks import Snapshot, leaks_since
from tests.chaos.plan import Case, plan
from tests.chaos.trial import Observation
from tests.chaos.verdict import judge

pytestmark = pytest.mark.chaos
SETTINGS = dict(workers=3, dataset="iris", model="linear", steps=50)


def case(mode: str = "async", victim: int = 2, signal: str = "KILL", **settings: Any) -> Case:
    return Case(seed=0, mode=mode, settings={**SETTINGS, **settings}, victim=victim,
                signal=signal, moment="step", delay_s=0.0, at_step=10, cold=False)


def seen(outcome: str, blamed: int | None = None, lost: tuple[int, ...] = (),
         joined: bool = True, latency_s: float | None = 0.1,
         last_step_after_hit_s: float | None = 1.0, how: str = "killed by signal 9",
         record: str | None = "same") -> Observation:
    status = {"WorkerFailed": "failed", "WorkerUnresponsive": "failed",
              "RunTimeout": "timeout"}.get(outcome, outcome)
    return Observation(seed=0, outcome=outcome, blamed=blamed,
                       lost=[{"rank": r, "how": how} for r in lost],
                       hit={"sent": True, "missed": "", "joined": joined, "at_s": 0.5},
                       latency_s=latency_s, last_step_after_hit_s=last_step_after_hit_s,
                       record_status=status if record == "same" else record)


def kinds(c: Case, obs: Observation) -> set[str]:
    return {kind for kind, _ in judge(c, obs).problems}


def test_the_right_outcomes_pass() -> None:
    assert kinds(case(), seen("ok", lost=(2,))) == set()  # async survives a joined worker
    assert kinds(case(), seen("WorkerFailed", 2, joined=False)) == set()  # may not have joined
    assert kinds(case(), seen("ok", lost=(2,), joined=False)) == set()
    assert kinds(case("sync"), seen("WorkerFailed", 2)) == set()  # sync fails by default
    assert kinds(case(victim=0), seen("WorkerFailed", 0)) == set()  # the server
    stopped = seen("ok", lost=(2,), latency_s=12.5, how="unresponsive: ... ended by ddlkit")
    assert kinds(case(signal="STOP", unresponsive_s=3.0), stopped) == set()
    assert kinds(case("allreduce", signal="STOP"), seen("WorkerUnresponsive", 2)) == set()
    assert kinds(case("sync"), seen("ok", last_step_after_hit_s=0.1)) == set()  # late


def test_wrong_outcomes_are_found() -> None:
    assert kinds(case(), seen("WorkerFailed", 2)) == {"wrong outcome"}  # joined: must survive
    assert kinds(case("sync"), seen("ok", lost=(2,))) == {"wrong outcome"}
    assert kinds(case("sync"), seen("ok")) == {"wrong outcome"}  # a kill went unnoticed
    assert kinds(case("sync", signal="STOP"), seen("WorkerFailed", 2)) == {"wrong outcome"}
    assert kinds(case(signal="STOP"), seen("ok", lost=(2,))) == {"wrong outcome"}  # how?
    assert kinds(case(), seen("ValueError")) == {"wrong outcome"}


def test_wrong_blame_hangs_slowness_and_records_are_found() -> None:
    assert "wrong blame" in kinds(case("sync"), seen("WorkerFailed", 1))
    assert "wrong blame" in kinds(case(), seen("ok", lost=(1, 2)))
    assert kinds(case(), seen("RunTimeout")) == {"hang"}
    assert kinds(case("sync"), seen("WorkerFailed", 2, latency_s=10.5)) == {"slow detection"}
    assert kinds(case(), seen("ok", lost=(2,), latency_s=None)) == {"slow detection"}
    assert kinds(case("sync"), seen("WorkerFailed", 2, record=None)) == {"no record"}


def test_a_leak_is_found() -> None:
    before = Snapshot.take()
    fd, path = tempfile.mkstemp(prefix="chaos-self-test-")
    try:
        found = leaks_since(before, settle_s=0.0)
    finally:
        os.close(fd)
        os.unlink(path)
    assert any("file descriptors" in leak for leak in found)
    assert any(os.path.basename(path) in leak for leak in found)
    assert leaks_since(before, settle_s=0.0) == []


def test_a_seed_plans_the_same_run_again() -> None:
    assert plan(1234) == plan(1234)
    assert plan(1234).experiment() == plan(1234).experiment()
