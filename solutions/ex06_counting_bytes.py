"""Exercise 6: predict how many bytes each process sends and receives per training step.

Take a model with M parameters (n_params) of ``itemsize`` bytes each, and N workers.

- Parameter server (sync): every step each worker pushes its gradient to the server and
  pulls the new parameters back; the server does that with every worker.
- Ring all-reduce: no server; every worker sends one chunk of about length/N values in each
  of the 2(N−1) steps of reduce-scatter and all-gather (exercise 4).

Count payload only: the model data, not the few header values (sample count, loss) that
ride along in a PS message. The grader checks your formulas, then compares them with
what ddlkit's instrumented communicator counts in real runs.
"""
from __future__ import annotations


def ps_bytes_per_step(workers: int, n_params: int, itemsize: int) -> dict[str, int]:
    """Payload bytes per synchronous PS step, for the server and for one worker.

    Returns ``{"server_sent": …, "server_received": …, "worker_sent": …,
    "worker_received": …}``.
    """
    # BEGIN SOLUTION
    # HINT: one model-sized message is n_params · itemsize bytes. Who sends how many per step?
    model = n_params * itemsize
    return {"server_sent": workers * model, "server_received": workers * model,
            "worker_sent": model, "worker_received": model}
    # END SOLUTION


def ring_bytes_per_step(workers: int, length: int, itemsize: int) -> int:
    """Bytes one worker sends per ring all-reduce of ``length`` values, 2(N−1)/N·length
    values, rounded down to a whole byte."""
    # BEGIN SOLUTION
    # HINT: 2(N − 1) sends of one chunk each, a chunk being length / N values.
    return 2 * (workers - 1) * length * itemsize // workers
    # END SOLUTION
