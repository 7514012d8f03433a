"""Checks for exercise 3, ``server_step(comm, params, inbox, workers, lr)``.

One real run on 1 + 3 gloo ranks: rank 0 calls the learner's ``server_step`` for a few
steps; ranks 1-3 run ddlkit's worker side, sending known gradients with unequal sample
counts. The reference is the formula, computed in the parent from the same gradients;
the message pattern comes from the server's instrumented communicator.
"""
from __future__ import annotations

import functools
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

EXERCISE = Exercise(3, "ex03_sync_server_step", "the synchronous parameter server's step")

COUNTS = (3, 10, 31)  # samples per worker: unequal, so an unweighted mean is visibly wrong
N_PARAMS, STEPS, LR, SEED = 6, 2, 0.5, 0
DTYPE = torch.float64
TOLERANCE = 1e-9
HANG_HINT = ("the workers are waiting for the new parameters: does server_step receive from "
             "every worker and then comm.send(params, w) to each of them?")


def initial_params(m: int = N_PARAMS, seed: int = SEED) -> torch.Tensor:
    return torch.randn(m, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def worker_gradient(worker: int, step: int, m: int = N_PARAMS, seed: int = SEED) -> torch.Tensor:
    """The gradient worker ``worker`` (its rank) sends in ``step`` (known in advance)."""
    g = torch.Generator().manual_seed(1_000_003 * seed + 1009 * worker + step + 1)
    return torch.randn(m, generator=g, dtype=DTYPE)


def reference_params(steps: int = STEPS, weighted: bool = True) -> list[torch.Tensor]:
    """The parameters after each step: SGD on the sample-weighted mean gradient."""
    params, out = initial_params(), []
    for step in range(steps):
        grads = [worker_gradient(w, step) for w in range(1, len(COUNTS) + 1)]
        weights = COUNTS if weighted else (1,) * len(COUNTS)
        mean = sum(n * g for n, g in zip(weights, grads)) / sum(weights)
        params = params - LR * mean
        out.append(params)
    return out


def sync_server_job(comm: Communicator, reporter: Any, path: str, steps: int,
                    counts: tuple[int, ...]) -> dict[str, Any]:
    """Rank 0: the learner's server_step; ranks 1…N: workers sending known gradients."""
    workers, m = comm.world_size - 1, N_PARAMS
    if comm.rank == 0:
        server_step = load_file(path).server_step
        params = initial_params()
        inbox = [torch.zeros(m + 1, dtype=DTYPE) for _ in range(workers)]
        history, traffic = [], []
        comm.recorder.drain()
        for _ in range(steps):
            server_step(comm, params, inbox, workers, LR)
            history.append(params.tolist())
            traffic.append([(e.op, e.peer, e.nbytes) for e in comm.recorder.drain()
                            if e.op not in ("compute", "eval")])
        return {"params": history, "traffic": traffic}
    received = []
    new_params = torch.empty(m, dtype=DTYPE)
    for step in range(steps):
        message = torch.cat([worker_gradient(comm.rank, step),
                             torch.tensor([float(counts[comm.rank - 1])], dtype=DTYPE)])
        comm.send(message, 0)
        comm.recv(new_params, 0)
        received.append(new_params.tolist())
    return {"received": received}


def _outputs(learner: Learner) -> list[dict[str, Any]]:
    job = functools.partial(sync_server_job, path=str(learner.path), steps=STEPS, counts=COUNTS)
    return learner.memo("run", lambda: learner.run(
        job, len(COUNTS) + 1, f"server_step with {len(COUNTS)} workers", HANG_HINT,
        server=True))


def _difference(got: list[float], want: torch.Tensor) -> float:
    return float((torch.tensor(got, dtype=DTYPE) - want).abs().max())


@EXERCISE.check(f"each step: one gradient in from every worker, then {len(COUNTS)} messages "
                "out, the new parameters to each worker")
def messages(learner: Learner) -> None:
    traffic = _outputs(learner)[0]["traffic"]
    ranks = list(range(1, len(COUNTS) + 1))
    for step, events in enumerate(traffic, start=1):
        others = sorted({op for op, _, _ in events if op not in ("send", "recv")})
        if others:
            raise CheckFailed(f"step {step}: the server called comm.{others[0]}; the workers "
                              "use point-to-point messages, so use comm.recv and comm.send")
        got_from = sorted(peer for op, peer, _ in events if op == "recv")
        if got_from != ranks:
            raise CheckFailed(f"step {step}: the server received from ranks {got_from}; "
                              f"expected one gradient from each of ranks {ranks}")
        sends = [(peer, n) for op, peer, n in events if op == "send"]
        if sorted(p for p, _ in sends) != ranks:
            late = " (an isend counts once its handle's wait() returns)" if len(
                sends) < len(ranks) else ""
            raise CheckFailed(f"step {step}: the server sent {len(sends)} messages (to ranks "
                              f"{sorted(p for p, _ in sends)}); expected {len(ranks)}, one to "
                              f"each of ranks {ranks}{late}")
        for peer, n in sends:
            if n != N_PARAMS * DTYPE.itemsize:
                raise CheckFailed(f"step {step}: the server sent {n} bytes to rank {peer}; "
                                  f"expected the {N_PARAMS} parameters "
                                  f"({N_PARAMS * DTYPE.itemsize} bytes)")


@EXERCISE.check(f"the server's parameters equal the SGD step on the sample-weighted mean "
                f"({', '.join(map(str, COUNTS))} samples, {STEPS} steps)")
def server_update(learner: Learner) -> None:
    history = _outputs(learner)[0]["params"]
    want, unweighted = reference_params(), reference_params(weighted=False)
    before = [initial_params(), *want]
    for step, got in enumerate(history):
        error = _difference(got, want[step])
        if error <= TOLERANCE:
            continue
        if _difference(got, before[step]) <= TOLERANCE:
            hint = (": they did not change. Update the tensor in place (params.sub_(...)); "
                    "params = ... only rebinds your local name")
        elif _difference(got, unweighted[step]) <= TOLERANCE:
            hint = (": they match the unweighted mean 1/N Σ g_w; weight each gradient by the "
                    "sample count at the end of its message")
        else:
            hint = ""
        raise CheckFailed(f"after step {step + 1} the server's parameters differ from "
                          f"params − lr·(Σ n_w g_w / Σ n_w) by {error:.3g}{hint}")


@EXERCISE.check("every worker receives the updated parameters after each step")
def workers_receive(learner: Learner) -> None:
    outputs = _outputs(learner)
    want = reference_params()
    before = [initial_params(), *want]
    for w in range(1, len(COUNTS) + 1):
        for step, got in enumerate(outputs[w]["received"]):
            error = _difference(got, want[step])
            if error > TOLERANCE:
                old = _difference(got, before[step]) <= TOLERANCE
                hint = ": it got the parameters from before the update; send after updating" \
                    if old else ""
                raise CheckFailed(f"step {step + 1}: worker {w} received parameters that differ "
                                  f"from the updated ones by {error:.3g}{hint}")


def try_it(directory: str | None = None, steps: int = STEPS) -> dict[str, Any]:
    """Run your server_step with 3 ddlkit workers; compare with the reference update."""
    path = exercise_path(EXERCISE, directory)
    job = functools.partial(sync_server_job, path=str(path), steps=steps, counts=COUNTS)
    load_file(path)  # a syntax error shows here, with its traceback
    outputs = run_learner(job, len(COUNTS) + 1, path, "server_step with 3 workers", HANG_HINT,
                          server=True)
    rounded = [[round(v, 4) for v in p] for p in outputs[0]["params"]]
    return {"samples per worker": COUNTS,
            "your parameters after each step": rounded,
            "reference": [[round(v, 4) for v in p.tolist()] for p in reference_params(steps)],
            "messages per step (op, rank, bytes)": outputs[0]["traffic"][0]}
