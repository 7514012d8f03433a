"""Asynchronous parameter server (Dean et al. 2012, "Downpour SGD").

The server applies each gradient the moment it arrives, from whichever worker sent it,
and answers that worker alone with the current parameters and their version. Nobody
waits for a straggler, but a gradient may have been computed on parameters that are
already ``staleness`` updates old: staleness = version now − version the worker pulled.

The server applies ``steps × workers`` updates in total (as many gradients as ``sync``
uses), then answers every worker's last message with a stop signal. A lost worker is
dropped and the others carry on (unless ``on_worker_loss="fail"``).

Written as ``ssp`` is (:mod:`.gated_ps`), with a gate that always opens: every gradient
is answered as soon as it arrives, so each update is that one gradient at the full ``lr``.
"""
from __future__ import annotations

from typing import Any

from ddlkit.modes import MODES
from ddlkit.strategies import gated_ps
from ddlkit.strategies.context import Context

HEADER = MODES["async"].header.push  # sample count, batch loss, version pulled
STOP = gated_ps.STOP


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _Server(ctx).serve()
    gated_ps.worker(ctx)
    return {}


class _Server(gated_ps.GatedServer):
    """The async server: nobody waits, and each gradient is one update."""

    def gate(self) -> list[int]:
        """Every waiting worker goes at once (there is only the one just heard from)."""
        return sorted(self.waiting)

    def update(self, ranks: list[int]) -> None:
        """Each gradient on its own, unscaled, as it arrived (one per reply)."""
        with self.ctx.recorder.span("compute"):
            for r in ranks:
                self.opt.step(self.gradient(r))
