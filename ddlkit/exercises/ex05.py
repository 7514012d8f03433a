"""Checks for exercise 5, ``async_server(comm, params, workers, updates, lr)``.

One real run on 1 + 3 gloo ranks. Rank 0 calls the learner's loop; ranks 1-3 are ddlkit
workers that, at different speeds, send known gradients tagged with the version they
last pulled, until they are told to stop. Arrival order is up to the operating system,
so the reference is replayed in the parent in the order the server's instrumented
communicator received the messages: the k-th message from worker w is that worker's
k-th gradient, whose tag the worker reports. From that order and the tags follow the
staleness of every update, the version each reply must carry, and the final parameters.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ddlkit.comm import Communicator
from ddlkit.exercises.grading import (
    CheckFailed,
    Exercise,
    Learner,
    exercise_path,
    load_file,
    run_learner,
)

EXERCISE = Exercise(5, "ex05_async_server", "the asynchronous server loop with staleness")

WORKERS, UPDATES, N_PARAMS, LR, SEED = 3, 15, 5, 0.25, 0
#: seconds each worker "computes" before sending: unequal, so gradients go stale
DELAYS = (0.002, 0.003, 0.005)
STOP = -1
DTYPE = torch.float64
TOLERANCE = 1e-9


def hang_hint(still_running: list[int]) -> str:
    """Why the run hung, from which ranks were still running."""
    if still_running == [0]:
        return ("only the server was still running, waiting for a message, though every "
                "worker had been told to stop: return once all of them have been")
    return ("a worker was still waiting for a reply: does every gradient get an answer, and "
            f"does every worker finally get one with version {STOP} (stop)?")


def initial_params() -> torch.Tensor:
    return torch.randn(N_PARAMS, generator=torch.Generator().manual_seed(SEED), dtype=DTYPE)


def worker_gradient(worker: int, k: int) -> torch.Tensor:
    """The ``k``-th gradient worker ``worker`` (its rank) sends (known in advance)."""
    g = torch.Generator().manual_seed(1_000_003 * SEED + 1009 * worker + k + 1)
    return torch.randn(N_PARAMS, generator=g, dtype=DTYPE)


def async_server_job(comm: Communicator, reporter: Any, path: str, updates: int
                     ) -> dict[str, Any]:
    """Rank 0: the learner's loop. Ranks 1…N: workers that log (tag sent, version replied)."""
    m = N_PARAMS
    if comm.rank == 0:
        async_server = load_file(path).async_server
        params = initial_params()
        comm.recorder.drain()
        returned = async_server(comm, params, comm.world_size - 1, updates, LR)
        events = [(e.op, e.peer) for e in comm.recorder.drain() if e.op in ("send", "recv")]
        try:
            staleness: list[int] | None = [int(s) for s in returned]
        except (TypeError, ValueError):
            staleness = None
        return {"staleness": staleness, "returned": type(returned).__name__,
                "params": params.tolist(), "events": events}
    message, reply = torch.empty(m + 1, dtype=DTYPE), torch.empty(m + 1, dtype=DTYPE)
    pulled = 0
    log: list[tuple[int, int]] = []  # (version pulled, version replied)
    while True:
        if len(log) >= 4 * updates:
            raise RuntimeError(f"worker {comm.rank} sent {len(log)} gradients and never got a "
                               f"reply with version {STOP} (stop)")
        time.sleep(DELAYS[(comm.rank - 1) % len(DELAYS)])
        message[:m] = worker_gradient(comm.rank, len(log))
        message[m] = pulled
        comm.send(message, 0)
        comm.recv(reply, 0)
        version = int(reply[m])
        log.append((pulled, version))
        if version == STOP:
            return {"log": log}
        pulled = version


@dataclass
class Replay:
    """The reference, replayed in arrival order."""

    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (worker, k)
    staleness: list[int] = field(default_factory=list)
    applied: list[tuple[int, int, int, int]] = field(default_factory=list)  # w, k, tag, version
    replies: list[int] = field(default_factory=list)  # the version each arrival's reply needs
    params: torch.Tensor = field(default_factory=initial_params)


def replay(outputs: list[dict[str, Any]], updates: int = UPDATES) -> Replay:
    """What a correct server does with the messages, in the order this server received them."""
    ref = Replay()
    seen = {w: 0 for w in range(1, len(outputs))}
    version = 0
    for op, peer in outputs[0]["events"]:
        if op != "recv":
            continue
        k = seen[peer]
        seen[peer] += 1
        tag = outputs[peer]["log"][k][0]
        ref.arrivals.append((peer, k))
        if version < updates:
            ref.staleness.append(version - tag)
            ref.applied.append((peer, k, tag, version))
            ref.params = ref.params - LR * worker_gradient(peer, k)
            version += 1
        ref.replies.append(STOP if version >= updates else version)
    return ref


def _outputs(learner: Learner) -> list[dict[str, Any]]:
    job = functools.partial(async_server_job, path=str(learner.path), updates=UPDATES)
    return learner.memo("run", lambda: learner.run(
        job, WORKERS + 1, f"async_server with {WORKERS} workers and updates={UPDATES}",
        hang_hint, server=True))


def _nth(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


@EXERCISE.check(f"every gradient gets a reply, and every worker a stop reply "
                f"({WORKERS} workers, {UPDATES} updates)")
def replies(learner: Learner) -> None:
    outputs = _outputs(learner)
    events = outputs[0]["events"]
    for w in range(1, WORKERS + 1):
        sent = len(outputs[w]["log"])
        received = sum(1 for op, peer in events if op == "recv" and peer == w)
        answered = sum(1 for op, peer in events if op == "send" and peer == w)
        if received != sent:
            raise CheckFailed(f"worker {w} sent {sent} gradients but the server's comm received "
                              f"{received}: receive with comm.recv")
        if answered != sent:
            raise CheckFailed(f"worker {w} sent {sent} gradients and the server replied "
                              f"{answered} times; answer each message once, to its sender")


@EXERCISE.check(f"applies exactly {UPDATES} updates, and each reply carries the version "
                "after it (or stop)")
def versions(learner: Learner) -> None:
    outputs = _outputs(learner)
    server = outputs[0]
    if server["staleness"] is None:
        raise CheckFailed(f"async_server returned {server['returned']}; return the list of "
                          "staleness values, one per applied update")
    if len(server["staleness"]) != UPDATES:
        raise CheckFailed(f"async_server returned {len(server['staleness'])} staleness values; "
                          f"expected one per applied update, {UPDATES}")
    ref = replay(outputs)
    for i, ((w, k), want) in enumerate(zip(ref.arrivals, ref.replies), start=1):
        got = outputs[w]["log"][k][1]
        if got != want:
            applied = min(i, UPDATES)
            should = f"{STOP} (stop): all {UPDATES} updates are applied" if want == STOP else \
                f"{want}"
            raise CheckFailed(f"worker {w}'s {_nth(k + 1)} gradient ({_nth(i)} to arrive) was "
                              f"answered with version {got}; {applied} updates were applied by "
                              f"then, so the reply should say {should}")


@EXERCISE.check("staleness = version on arrival − version the gradient was computed on")
def staleness(learner: Learner) -> None:
    outputs = _outputs(learner)
    ref = replay(outputs)
    for i, (got, want) in enumerate(zip(outputs[0]["staleness"], ref.staleness)):
        if got != want:
            w, k, tag, version = ref.applied[i]
            raise CheckFailed(f"update {i + 1} (worker {w}'s gradient, computed on version "
                              f"{tag}, arrived at version {version}): you report staleness "
                              f"{got}; expected {want}")


@EXERCISE.check("final parameters = the gradients applied, in arrival order, with step lr")
def final_params(learner: Learner) -> None:
    outputs = _outputs(learner)
    got = torch.tensor(outputs[0]["params"], dtype=DTYPE)
    want = replay(outputs).params
    error = float((got - want).abs().max())
    if error > TOLERANCE:
        hint = (": they did not change; update params in place (params.sub_(...))"
                if torch.equal(got, initial_params()) else "")
        raise CheckFailed(f"the final parameters differ from the reference by {error:.3g}{hint}")


def try_it(directory: str | None = None, updates: int = UPDATES) -> dict[str, Any]:
    """Run your server with 3 ddlkit workers; your staleness next to the replayed reference."""
    path = exercise_path(EXERCISE, directory)
    job = functools.partial(async_server_job, path=str(path), updates=updates)
    load_file(path)  # a syntax error shows here, with its traceback
    outputs = run_learner(job, WORKERS + 1, path, f"async_server with {WORKERS} workers",
                          hang_hint, server=True)
    ref = replay(outputs, updates)
    return {"arrivals (worker of each gradient)": [w for w, _ in ref.arrivals],
            "your staleness": outputs[0]["staleness"], "reference staleness": ref.staleness,
            "final parameters, max |yours − reference|": float(
                (torch.tensor(outputs[0]["params"], dtype=DTYPE) - ref.params).abs().max())}
