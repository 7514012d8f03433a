"""Asynchronous parameter server: convergence, staleness and the straggler effect."""
from __future__ import annotations

import numpy as np
import pytest

import ddlkit


@pytest.mark.portable
def test_async_converges_on_digits() -> None:
    result = ddlkit.run(ddlkit.Experiment(mode="async", workers=3, dataset="digits",
                                          steps=60, lr=0.05, eval_every=20))
    first, last = result.history[0], result.history[-1]
    assert last["accuracy"] > 0.85
    assert last["test_loss"] < 0.5 * first["test_loss"]
    assert len(result.staleness) == 60 * 3


def test_straggler_makes_staleness_and_async_beats_sync() -> None:
    """With one slow worker, sync waits for it every step; async does not.

    This compares two runs made here, one after the other; it asserts an ordering that
    holds by a wide margin (the straggler sleeps steps × delay in sync), not a time.
    """
    delays = (0.0, 0.0, 0.03)
    base = ddlkit.Experiment(workers=3, dataset="digits", steps=40, eval_every=40,
                             worker_delays=delays)
    sync = ddlkit.run(base.replace(mode="sync"))
    asyn = ddlkit.run(base.replace(mode="async"))
    assert max(asyn.staleness) > 0
    assert np.mean(asyn.staleness) > 0.5
    assert asyn.training_s < sync.training_s  # start-up excluded: it varies, and is no race
    # In sync the fast workers spend their time waiting for the straggler.
    fast = sync.ranks[1]
    assert fast.wait_s > 0.5 * 40 * 0.03
    # In async the straggler contributes few of the updates.
    straggler = asyn.ranks[3]
    assert straggler.messages_sent < 0.5 * asyn.ranks[1].messages_sent
