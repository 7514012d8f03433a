"""An emulated network: every message costs α + bytes/B of real (sleeping) time.

On one laptop gloo moves bytes over loopback at gigabytes per second, so communication
is nearly free and the communication-bound regime of a real cluster never shows. A
:class:`Network` puts it back, as a labelled emulation, with the latency–bandwidth
(α–β) model of Hockney 1994 and Thakur, Rabenseifner & Gropp 2005: sending n bytes
takes α + n·β seconds, with α the latency per message and β = 1/B the time per byte.

Each rank has one **full-duplex** link: it can send and receive at the same time (the
assumption under the ring all-reduce's cost, Thakur et al. 2005, §4), but each direction
carries one message's bytes at a time. Where the time is spent (see
:class:`~ddlkit.comm.communicator.Communicator`):

- **out**: the sender sleeps α + n/B before it hands each point-to-point message to gloo,
  so what one rank sends crosses its own link one message after another, while different
  ranks send in parallel. Messages a rank posts together (``isend_all``, the server's
  reply to every worker) share its link as concurrent flows do: each reaches gloo once
  all have crossed, N·(α + M/B) after the first began. (Handed over one by one, the
  workers would get the model one message apart, and their next pushes would never meet
  at the server);
- **in**: what a rank receives crosses its :class:`InboundLink` one message after another.
  A message that, on a free link, would have arrived at t has crossed at
  max(t, previous crossing + α + n/B), and the receiver sleeps until then. N workers
  pushing to one server at once (incast; Phanishayee et al. 2008, "Measurement and
  analysis of TCP throughput collapse in cluster-based storage systems", FAST) so take
  N·(α + M/B) at the server, not one push's time. A rank that receives from one
  neighbour at a time, as in the ring, never waits here: each message arrives after the
  previous one has crossed;
- gloo's opaque collectives sleep their modelled cost on every rank: ring all-reduce
  2(N−1)·α + 2(N−1)/N·n/B.

So a synchronous parameter-server step costs t_c + N·(α + M/B) in + t_server +
N·(α + M/B) out at the server (:mod:`ddlkit.analysis.step_time`). The emulation models
serialisation only, not the TCP timeouts that make real incast collapse.

Sleeps need no CPU, so the emulated cost shows on a loaded 2-core machine as it would
on a cluster. It never changes a result or a byte count.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

#: named networks → (net_latency_ms, net_bandwidth_mbps), e.g. for a drop-down
PRESETS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "10 Gbit/s, 0.05 ms (data centre)": (0.05, 10_000.0),
    "1 Gbit/s, 0.5 ms (office LAN)": (0.5, 1_000.0),
    "100 Mbit/s, 1 ms (slow LAN)": (1.0, 100.0),
    "10 Mbit/s, 5 ms (home uplink)": (5.0, 10.0),
}


def network_label(latency_ms: float, bandwidth_mbps: float) -> str:
    """E.g. ``emulated net 100 Mbit/s, 0.5 ms``: always says it is an emulation."""
    if not bandwidth_mbps:
        bw = "∞ bandwidth"
    elif bandwidth_mbps >= 1000:
        bw = f"{bandwidth_mbps / 1000:g} Gbit/s"
    else:
        bw = f"{bandwidth_mbps:g} Mbit/s"
    return f"emulated net {bw}, {latency_ms:g} ms"


@dataclass(frozen=True)
class Network:
    """A link with latency ``latency_s`` (α, seconds per message) and bandwidth
    ``bandwidth_bytes_per_s`` (B; ``math.inf`` for unlimited)."""

    latency_s: float = 0.0
    bandwidth_bytes_per_s: float = math.inf

    def __post_init__(self) -> None:
        a, b = self.latency_s, self.bandwidth_bytes_per_s
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a < math.inf:
            raise ValueError(f"latency_s: {a!r} is not allowed; seconds ≥ 0")
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not b > 0:
            raise ValueError(f"bandwidth_bytes_per_s: {b!r} is not allowed; bytes per second "
                             f"> 0 (math.inf for unlimited)")

    @classmethod
    def from_fields(cls, latency_ms: float, bandwidth_mbps: float) -> Network | None:
        """From the experiment's fields (ms, Mbit/s; 0 Mbit/s is unlimited); None when
        both are 0 (no emulation)."""
        if not latency_ms and not bandwidth_mbps:
            return None
        bandwidth = bandwidth_mbps * 1e6 / 8 if bandwidth_mbps else math.inf
        return cls(latency_ms / 1000, bandwidth)

    @classmethod
    def of(cls, exp: Any) -> Network | None:
        """The network an :class:`~ddlkit.config.Experiment` asks for, or None."""
        return cls.from_fields(exp.net_latency_ms, exp.net_bandwidth_mbps)

    @property
    def beta_s_per_byte(self) -> float:
        """β = 1/B, seconds per byte (0 for unlimited bandwidth)."""
        return 1.0 / self.bandwidth_bytes_per_s

    @property
    def label(self) -> str:
        """E.g. ``emulated net 100 Mbit/s, 0.5 ms``."""
        mbps = 0.0 if math.isinf(self.bandwidth_bytes_per_s) else (
            self.bandwidth_bytes_per_s * 8 / 1e6)
        return network_label(self.latency_s * 1000, mbps)

    @property
    def name(self) -> str:
        """The link alone, e.g. ``100 Mbit/s, 0.5 ms`` (for predictions, not emulations)."""
        return self.label.removeprefix("emulated net ")

    def delay(self, nbytes: int) -> float:
        """Seconds to send one message of ``nbytes``: α + nbytes/B."""
        return self.latency_s + nbytes * self.beta_s_per_byte

    def ring_all_reduce(self, nbytes: int, world_size: int) -> float:
        """A ring all-reduce of ``nbytes`` on N ranks: 2(N−1)·α + 2(N−1)/N·nbytes/B
        (Thakur et al. 2005, §4; Patarasuk & Yuan 2009)."""
        n = world_size
        if n <= 1:
            return 0.0
        return 2 * (n - 1) * self.latency_s + 2 * (n - 1) / n * nbytes * self.beta_s_per_byte

    def ring_all_gather(self, nbytes: int, world_size: int) -> float:
        """A ring all-gather whose result is ``nbytes`` on N ranks: (N−1)·α +
        (N−1)/N·nbytes/B (half a ring all-reduce; Thakur et al. 2005, §4)."""
        n = world_size
        if n <= 1:
            return 0.0
        return (n - 1) * self.latency_s + (n - 1) / n * nbytes * self.beta_s_per_byte

    def broadcast(self, nbytes: int, world_size: int) -> float:
        """A binomial-tree broadcast: ⌈log₂N⌉·(α + nbytes/B) (Thakur et al. 2005, §3)."""
        if world_size <= 1:
            return 0.0
        return math.ceil(math.log2(world_size)) * self.delay(nbytes)

    def barrier(self, world_size: int) -> float:
        """A dissemination barrier: ⌈log₂N⌉ rounds of one empty message, ⌈log₂N⌉·α."""
        if world_size <= 1:
            return 0.0
        return math.ceil(math.log2(world_size)) * self.latency_s


class InboundLink:
    """One rank's inbound link: the messages it receives cross it one after another.

    :meth:`cross` is given when a message arrived and how long it takes on the wire
    (α + n/B); the link is thread-safe, since a server receives on one thread per sender
    (:class:`~ddlkit.comm.inbox.Inbox`).
    """

    def __init__(self) -> None:
        self._free_at = -math.inf
        self._lock = threading.Lock()

    def cross(self, arrived: float, seconds: float) -> float:
        """When a message that arrived at ``arrived`` (its own ``seconds`` on the wire, as if
        the link were free) has crossed: max(arrived, previous crossing + seconds)."""
        with self._lock:
            done = max(arrived, self._free_at + seconds)
            self._free_at = done
            return done
