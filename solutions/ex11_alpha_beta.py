"""Exercise 11: predict a training step's time with the latency–bandwidth (α–β) model.

Sending one message of n bytes takes α + n·β seconds: α is the latency per message and
β = 1/B the time per byte (B the bandwidth, bytes per second). A model has M parameters
(``n_params``) of ``itemsize`` bytes; there are N workers; a worker computes its gradient
in ``t_compute_s`` seconds.

- Parameter server (sync): the N workers push their gradients at once, but the server
  has one link, and the N gradients converge on it: they cross it one after another
  (incast). Then the server sends the new model to the N workers over the same link,
  N messages more. The server sends nothing before it has every push.
- Ring all-reduce: 2(N−1) steps around the ring; in each one every worker sends one chunk
  of M/N values to its neighbour, all at the same time (exercise 4).

Ignore the few header values a message carries and the server's own compute. The grader
checks your formulas against ddlkit's independent cost model, then against a real run on
an emulated slow network.
"""
from __future__ import annotations


def ps_step_time(workers: int, n_params: int, itemsize: int, alpha_s: float,
                 beta_s_per_byte: float, t_compute_s: float) -> float:
    """Seconds per synchronous parameter-server step: compute, N pushes in, N pulls out."""
    # BEGIN SOLUTION
    # HINT: one message costs α + M·itemsize·β. How many cross the server's one link?
    message = alpha_s + n_params * itemsize * beta_s_per_byte
    return t_compute_s + workers * message + workers * message
    # END SOLUTION


def ring_step_time(workers: int, n_params: int, itemsize: int, alpha_s: float,
                   beta_s_per_byte: float, t_compute_s: float) -> float:
    """Seconds per ring all-reduce step: compute, then 2(N−1) chunk exchanges."""
    # BEGIN SOLUTION
    # HINT: 2(N − 1) messages in a row, each of M/N values; a single worker sends nothing.
    chunk = alpha_s + n_params / workers * itemsize * beta_s_per_byte
    return t_compute_s + 2 * (workers - 1) * chunk
    # END SOLUTION
