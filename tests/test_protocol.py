"""The protocol between a rank and its parent: typed messages, the Reporter that sends
them, and the Collector that reads them (no processes: a list stands in for the pipe)."""
from __future__ import annotations

import functools
import multiprocessing
import pickle
import time
from typing import Any

import numpy as np
import pytest

import ddlkit
from ddlkit.comm import Recorder
from ddlkit.comm.protocol import (
    MESSAGE_TYPES,
    Done,
    EvalRow,
    Events,
    Failed,
    Left,
    Progress,
    Ready,
    Reporter,
    RunRequest,
    WorkerLost,
    from_json,
    to_json,
)
from ddlkit.runtime import live
from ddlkit.runtime.collector import Collector
from ddlkit.runtime.torchrun import _Outbox
from ddlkit.tools.checks import hello

EXAMPLES = [
    Ready(0, 1234, 10.5, 1.7e9),
    Progress(1, 3, 20, 96, 11.0),
    EvalRow(0, {"step": 5, "samples": 160, "train_loss": 0.5, "t": 12.0}),
    Events(2, [(2, "send", 0, 80, 64, 1.0, 1.1, 1.2, 3)]),
    Done(0, {"final_params": [1.0, 2.0], "staleness": []}),
    Failed(1, "Traceback (most recent call last):\n  ...\nValueError: boom\n"),
    Left(2, "leave at step 4"),
    WorkerLost(0, 2, 7, "connection closed"),
]


class Pipe:
    """The write end of a pipe, for a Reporter: keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sent.append(msg)


def test_the_examples_cover_every_message() -> None:
    assert {type(m) for m in EXAMPLES} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_pickles_and_round_trips(msg: Any) -> None:
    back = pickle.loads(pickle.dumps(msg))
    assert back == msg and type(back) is type(msg)
    reader, writer = multiprocessing.Pipe(duplex=False)  # the way a local run sends it
    with reader, writer:
        writer.send(msg)
        assert reader.recv() == msg


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_json(msg: Any) -> None:
    [back] = from_json(to_json([msg]))
    assert back == msg and type(back) is type(msg)


def test_json_keeps_arrays_bit_for_bit_and_refuses_what_is_not_a_message() -> None:
    params = np.array([0.1, -0.0, np.nan, 3e-39], dtype=np.float32)
    [back] = from_json(to_json([Done(0, {"final_params": params, "updates": np.int64(7)})]))
    assert back.output["final_params"].dtype == np.float32
    assert back.output["final_params"].tobytes() == params.tobytes()
    assert back.output["updates"] == 7
    for data in (b"", b"{}", b"[1]", b'[{"type": "Ready"}]', b'[{"type": "Exec", "rank": 0}]',
                 b'[{"type": "Left", "rank": -1, "reason": ""}]',
                 b'[{"type": "Done", "rank": 0, "output": {"__ndarray__": "", "dtype": "O", '
                 b'"shape": [0]}}]'):
        with pytest.raises(ValueError, match="not ddlkit messages"):
            from_json(data)
    with pytest.raises(TypeError, match="cannot hold object"):
        to_json([Done(0, {"x": object()})])


def test_a_run_request_round_trips_with_its_job() -> None:
    request = RunRequest(1, 3, functools.partial(hello), 29500, "ddlkit/x/", "127.0.0.1")
    back = pickle.loads(pickle.dumps(request))
    assert (back.rank, back.world_size, back.store_port, back.prefix, back.host) == \
        (1, 3, 29500, "ddlkit/x/", "127.0.0.1")
    assert back.job.func is hello


def test_messages_are_frozen_and_name_their_rank() -> None:
    with pytest.raises(AttributeError):
        EXAMPLES[0].rank = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="rank=-1"):
        Done(-1, None)


def test_done_failed_and_left_end_a_rank() -> None:
    assert {t for t in MESSAGE_TYPES if t.ends_rank} == {Done, Failed, Left}


def test_the_collector_refuses_an_untyped_tuple() -> None:
    col = Collector(["worker"], t0=0.0)
    with pytest.raises(TypeError, match="ddlkit.comm.protocol.*not tuple"):
        col.feed(("ready", 0, 1234, 10.5, 1.7e9))
    assert col.first_event is None and not col.offsets


def life_of_a_rank(conn: Any, rank: int = 0) -> None:
    """A rank's messages through a real Reporter: ready, progress, eval, events, done."""
    recorder = Recorder(rank)
    reporter = Reporter(rank, conn, recorder)
    reporter.ready()
    reporter.progress(1, 2, 32)
    recorder.add("all_reduce", -1, 80, 64, time.perf_counter(), time.perf_counter(),
                 time.perf_counter())
    reporter.eval_row({"step": 1, "samples": 32, "train_loss": 0.25, "t": time.perf_counter()})
    reporter.progress(2, 2, 64)  # the last step is always reported
    recorder.add("all_reduce", -1, 80, 64, time.perf_counter(), time.perf_counter(),
                 time.perf_counter())
    reporter.done({"final_params": [1.0, 2.0]})  # flushes the second event first


def test_a_ranks_life_builds_history_and_outputs() -> None:
    pipe, seen = Pipe(), []
    t0 = time.perf_counter()
    life_of_a_rank(pipe)
    assert [type(m) for m in pipe.sent] == [Ready, Progress, EvalRow, Events, Progress,
                                            Events, Done]
    col = Collector(["worker", "worker"], t0, on_event=seen.append)
    for msg in pipe.sent:
        col.feed(msg)
    assert [type(e) for e in seen] == [live.RankReady, live.Progress, live.EvalPoint,
                                       live.CommEvents, live.Progress, live.CommEvents]
    assert seen[0].rank == 0 and seen[0].pid == pipe.sent[0].pid
    assert (seen[1].step, seen[1].total, seen[1].samples) == (1, 2, 32)
    assert [r["step"] for r in col.history] == [1] and col.history[0]["bytes"] == 0
    assert col.live_bytes == 160 and len(col.events) == 2
    assert col.outputs == {0: {"final_params": [1.0, 2.0]}} and not col.errors
    exp = ddlkit.Experiment(mode="allreduce", workers=2)
    result = col.result(exp, "ok", None, None, wall=1.0)
    assert result.total_bytes == 160 and result.history[0]["bytes"] == 80
    assert list(result.final_params) == [1.0, 2.0]


def test_how_a_rank_ends_is_recorded() -> None:
    col = Collector(["server", "worker", "worker", "worker"], 0.0, tolerated={3})
    col.feed(Failed(1, "Traceback ...\nValueError: boom\n"))
    col.feed(Left(2, "leave at step 4"))
    col.feed(Left(3, "leave at step 5"))
    col.feed(WorkerLost(0, 3, 5, "connection closed"))
    assert col.errors == {1: "Traceback ...\nValueError: boom\n",
                          2: "rank 2 left the run (leave at step 4)"}
    assert col.lost[3]["how"] == "left (leave at step 5)"
    assert col.lost[3]["step"] == 5 and col.lost[3]["noticed_by_server"] == "connection closed"


def test_the_torchrun_outbox_feeds_rank_0_and_travels_as_json() -> None:
    """Rank 0's outbox feeds its collector live; another rank's outbox goes into
    torchrun's store as JSON and is fed to rank 0's collector at the end."""
    t0 = time.perf_counter()
    col = Collector(["worker", "worker"], t0, align_clocks=True)
    own, other = _Outbox(col), _Outbox(None)
    life_of_a_rank(own, rank=0)
    life_of_a_rank(other, rank=1)
    assert col.outputs.keys() == {0} and len(col.history) == 1
    for msg in from_json(to_json(other.messages)):
        col.feed(msg)
    assert col.outputs.keys() == {0, 1} and len(col.history) == 2
    assert col.offsets.keys() == {0, 1} and {e[0] for e in col.events} == {0, 1}
