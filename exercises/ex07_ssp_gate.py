"""Exercise 7: the gate of a stale-synchronous parameter server.

In SSP (Ho et al. 2013, "More effective distributed ML via a stale synchronous parallel
parameter server", NIPS, §2) worker i's clock c_i counts the gradients it has pushed.
After a push the worker waits for the server's reply, and the server sends it only when
the worker may start its next step:

    c_i − min_j c_j ≤ s        (the minimum runs over every live worker, waiting or not)

s is the staleness bound. s = 0 is a synchronous server: nobody starts clock c + 1 before
everybody has finished clock c. With no bound (s = ∞, written ``None``) nobody ever
waits: an asynchronous server. In between, a fast worker may run up to s steps ahead of
the slowest, then waits for it.

``ddlkit.strategies.ssp`` asks exactly this question every time a gradient arrives.
"""
from __future__ import annotations


def ssp_gate(clocks: dict[int, int], waiting: list[int], bound: int | None) -> list[int]:
    """The waiting workers that may start their next step, in increasing rank order.

    ``clocks`` maps every live worker's rank to its clock (gradients pushed so far);
    ``waiting`` lists the ranks whose reply the server is holding (each is in
    ``clocks``); ``bound`` is s, or None for no bound. Leaves its arguments unchanged.
    """
    # HINT: find the slowest clock among all live workers (not only the waiting ones);
    #   keep each waiting rank whose clock is at most bound ahead of it. None lets all go.
    raise NotImplementedError("Exercise 7: implement ssp_gate()")
