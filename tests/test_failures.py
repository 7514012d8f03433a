"""Failures end cleanly: the rank is named, nothing is left running, the record is kept."""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from procs import KILL, running

import ddlkit
from ddlkit.runtime import run_ranks
from ddlkit.runtime.live import Progress, RankLost, RankReady
from ddlkit.tools.checks import raise_on_rank

LONG = dict(dataset="digits", steps=100_000, eval_every=50, timeout_s=60.0)


class KillAt:
    """An on_event hook that SIGKILLs one rank once the run reaches ``step``."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step
        self.pids: dict[int, int] = {}
        self.killed_at: float | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, RankReady):
            self.pids[event.rank] = event.pid
        elif isinstance(event, Progress) and event.step >= self.step and self.killed_at is None:
            os.kill(self.pids[self.rank], KILL)
            self.killed_at = time.monotonic()


def gone(pids: dict[int, int]) -> bool:
    return not any(running(p) for p in pids.values())


@pytest.mark.parametrize("mode,rank", [
    pytest.param("sync", 2, marks=pytest.mark.portable),
    pytest.param("allreduce", 1, marks=pytest.mark.portable),
    ("sync", 0), ("async", 0)])
def test_killed_rank_is_named_within_10s(tmp_path: Path, mode: str, rank: int) -> None:
    hook = KillAt(rank, step=5)
    exp = ddlkit.Experiment(mode=mode, workers=3, **LONG)
    with pytest.raises(ddlkit.WorkerFailed) as info:
        ddlkit.run(exp, on_event=hook, record_dir=tmp_path)
    elapsed = time.monotonic() - hook.killed_at
    err = info.value
    assert err.rank == rank
    assert f"rank {rank}" in str(err)
    if hasattr(signal, "SIGKILL"):  # POSIX: the exit code names the signal
        assert err.exitcode == -signal.SIGKILL and "signal 9" in str(err)
    assert elapsed < 10.0
    assert gone(hook.pids)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and f"rank {rank}" in record["error"]
    assert record["history"], "the partial record keeps the evaluations made before the kill"
    assert err.result is not None and err.result.status == "failed"


class StopWhenLost(KillAt):
    """Kill a rank; once the parent reports it lost, let training go 10 more steps, stop."""

    def __init__(self, rank: int, step: int, stop: threading.Event) -> None:
        super().__init__(rank, step)
        self.stop = stop
        self.lost_after: float | None = None
        self.step_at_loss = 0
        self.last_step = 0

    def __call__(self, event: object) -> None:
        super().__call__(event)
        if isinstance(event, Progress):
            self.last_step = event.step
            if self.lost_after is not None and event.step >= self.step_at_loss + 10:
                self.stop.set()
        if isinstance(event, RankLost) and self.lost_after is None:
            self.lost_after = time.monotonic() - self.killed_at
            self.step_at_loss = self.last_step


@pytest.mark.parametrize("mode,policy", [("async", "auto"), ("sync", "continue")])
def test_parameter_server_survives_a_killed_worker(tmp_path: Path, mode: str,
                                                   policy: str) -> None:
    stop = threading.Event()
    hook = StopWhenLost(rank=2, step=5, stop=stop)
    exp = ddlkit.Experiment(mode=mode, workers=3, on_worker_loss=policy, **LONG)
    result = ddlkit.run(exp, on_event=hook, record_dir=tmp_path, stop=stop)
    assert hook.lost_after is not None and hook.lost_after < 10.0
    assert result.status == "stopped"  # it went on until we stopped it
    assert [x["rank"] for x in result.lost] == [2]
    assert result.lost[0]["how"] == "killed by signal 9"
    assert hook.last_step >= hook.step_at_loss + 10  # training went on with the survivors
    assert gone(hook.pids)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["lost"][0]["rank"] == 2


@pytest.mark.portable
def test_worker_exception_carries_traceback() -> None:
    with pytest.raises(ddlkit.WorkerFailed) as info:
        run_ranks(functools.partial(raise_on_rank, rank=1), 3, timeout_s=30)
    assert info.value.rank == 1
    assert "deliberate failure on rank 1" in info.value.traceback
    assert "RuntimeError" in str(info.value)


@pytest.mark.portable
def test_keyboard_interrupt_leaves_nothing(tmp_path: Path) -> None:
    pids: dict[int, int] = {}

    def interrupt(event: object) -> None:
        if isinstance(event, RankReady):
            pids[event.rank] = event.pid
        if isinstance(event, Progress) and event.step >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ddlkit.run(ddlkit.Experiment(mode="sync", workers=2, **LONG), on_event=interrupt,
                   record_dir=tmp_path)
    assert len(pids) == 3 and gone(pids)
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "failed"


def test_timeout_stops_everything() -> None:
    exp = ddlkit.Experiment(mode="sync", workers=2, dataset="digits", steps=100_000,
                            timeout_s=2.0)
    with pytest.raises(ddlkit.RunTimeout) as info:
        ddlkit.run(exp)
    assert info.value.result.status == "timeout"
    assert "timeout_s=2" in str(info.value)


def test_stop_event_returns_partial_result() -> None:
    stop = threading.Event()

    def stop_soon(event: object) -> None:
        if isinstance(event, Progress) and event.step >= 3:
            stop.set()

    result = ddlkit.run(ddlkit.Experiment(mode="async", workers=2, **LONG),
                        on_event=stop_soon, stop=stop)
    assert result.status == "stopped"
    assert result.history


SCRIPT = """
import sys, ddlkit
if __name__ == "__main__":
    r = ddlkit.run(ddlkit.Experiment(mode=sys.argv[1], workers=2, dataset="iris", steps=30))
    assert r.status == "ok", r.status
    print("ok", r.final["step"])
"""


def test_two_runs_at_once_from_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "two.py"
    script.write_text(SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for mode in ("sync", "allreduce")]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == "ok 30"


class KillAtFirstReady:
    """Kill rank ``victim`` the moment any rank reports it joined: the others may still be
    forming the process group (the case that used to hang until the timeout)."""

    def __init__(self, victim: int) -> None:
        self.victim = victim
        self.killed_at: float | None = None
        self.lost: list[int] = []

    def __call__(self, event: object) -> None:
        import multiprocessing

        if isinstance(event, RankLost):
            self.lost.append(event.rank)
        if isinstance(event, RankReady) and self.killed_at is None:
            for p in multiprocessing.active_children():
                if p.name == f"ddlkit-rank{self.victim}" and p.pid is not None:
                    os.kill(p.pid, KILL)
                    self.killed_at = time.monotonic()


@pytest.mark.parametrize("attempt", range(4))
def test_a_worker_killed_during_start_up_never_hangs_or_blames_another(attempt: int) -> None:
    hook = KillAtFirstReady(victim=2)
    exp = ddlkit.Experiment(mode="async", workers=3, dataset="iris", steps=300, eval_every=100,
                            seed=attempt, timeout_s=60.0)
    try:
        result = ddlkit.run(exp, on_event=hook)
    except ddlkit.WorkerFailed as err:  # it died before joining: the group cannot form
        assert hook.killed_at is not None and time.monotonic() - hook.killed_at < 10.0
        assert err.rank == 2 and "during start-up" in str(err)
    else:  # it had joined: async carries on without it
        assert result.status == "ok" and set(hook.lost) == {2}
        assert [lost["rank"] for lost in result.lost] == [2]


@pytest.mark.parametrize("delay_s", [0.3, 0.7, 1.1])
def test_killed_while_writing_checkpoints_leaves_one_that_resumes(tmp_path: Path,
                                                                  delay_s: float) -> None:
    """The server writes a checkpoint after every step; an outside SIGKILL lands at some
    moment of that loop, often mid-write. The run fails naming it, and the checkpoint on disk
    is whole: the run resumes from it."""
    import multiprocessing

    from ddlkit.train import checkpoint

    exp = ddlkit.Experiment(mode="sync", workers=2, dataset="digits", hidden=1024, steps=100_000,
                            eval_every=1000, checkpoint_every=1, timeout_s=60.0)
    started = threading.Event()

    def hook(event: object) -> None:
        if isinstance(event, Progress) and event.step >= 3:
            started.set()

    def killer() -> None:
        if started.wait(30):
            time.sleep(delay_s)
            for p in multiprocessing.active_children():
                if p.name == "ddlkit-rank0" and p.pid is not None:
                    os.kill(p.pid, KILL)

    threading.Thread(target=killer, daemon=True).start()
    with pytest.raises(ddlkit.WorkerFailed) as info:
        ddlkit.run(exp, on_event=hook, record_dir=tmp_path / "run")
    assert info.value.rank == 0
    state = checkpoint.load(checkpoint.find(tmp_path / "run"))
    done = int(state["step"])
    assert done >= 3
    resumed = ddlkit.run(exp.replace(steps=done + 2, eval_every=done + 2, checkpoint_every=0),
                         resume_from=tmp_path / "run")
    assert resumed.status == "ok"
