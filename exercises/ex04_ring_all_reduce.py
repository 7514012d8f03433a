"""Exercise 4: a ring all-reduce from point-to-point messages.

Every rank holds a vector; afterwards every rank must hold the sum of all of them. The
naive way, everyone sending everything to everyone, moves (N−1)·length values per rank.
The ring (Patarasuk & Yuan 2009) cuts the vector into N chunks and moves only about
2(N−1)/N·length per rank, however many ranks there are:

1. reduce-scatter, N−1 steps: each rank sends one chunk to its right neighbour and adds
   the chunk arriving from its left into its own copy. Afterwards rank r holds the full
   sum of chunk (r + 1) mod N.
2. all-gather, N−1 steps: each rank passes finished chunks to the right, overwriting its
   own copy with the finished chunk arriving from the left.

The grader compares your result with ``dist.all_reduce`` and counts the bytes you send.
"""
from __future__ import annotations

import torch

from ddlkit.comm import Communicator


def ring_all_reduce(comm: Communicator, tensor: torch.Tensor) -> None:
    """Sum ``tensor`` over all ranks, in place, with ``comm.send/recv/isend/irecv`` only.

    Works for any world size and any length, also lengths that N does not divide (cut the
    vector into N chunks whose sizes differ by at most one; some may be empty).
    """
    # HINT: rank r talks only to right = (r + 1) % N and left = (r - 1) % N. In reduce-scatter
    #   step s, send chunk (r − s) % N and add the incoming one into chunk (r − s − 1) % N; in
    #   all-gather step s, send chunk (r + 1 − s) % N and receive into chunk (r − s) % N. Post
    #   the send with comm.isend, then comm.recv, then wait() on the send: two blocking sends
    #   facing each other can deadlock.
    raise NotImplementedError("Exercise 4: implement ring_all_reduce()")
