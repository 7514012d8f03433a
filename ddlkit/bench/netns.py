"""Two machines on one: network namespaces joined by a shaped veth pair, to validate the
α–β model and ddlkit's emulation against a real (if virtual) network.

:func:`two_hosts` makes two namespaces with their own addresses (10.77.0.1 and
10.77.0.2), joins them with a veth pair and shapes each end with ``tc``: tbf at a
bandwidth B, and netem's delay where the kernel has netem (many do not; then the
link's own latency stands). :func:`validate` measures the link's latency α (a TCP
round trip / 2, :mod:`ddlkit.bench.netprobe`), runs an experiment with torchrun, one
agent per namespace, and compares its step time with the same experiment under
ddlkit's sleeping emulation at the same α and B (:mod:`ddlkit.comm.network`) and with
the α–β prediction (Hockney 1994; Thakur, Rabenseifner & Gropp 2005;
:mod:`ddlkit.analysis.step_time`).

Linux only, as root, with iproute2 (``ip netns``) and ``tc``. Traffic stays inside the
two namespaces and on loopback; the namespaces, the veth pair, its qdiscs and every
process started in them are removed on the way out, even after an error.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import ddlkit
from ddlkit.analysis import cost
from ddlkit.analysis.step_time import StepTime, measured_compute, measured_step_s, predict_for
from ddlkit.comm.network import Network
from ddlkit.config import Experiment
from ddlkit.runtime.pool import WorkerPool
from ddlkit.runtime.result import RunResult
from ddlkit.units import format_bytes

ADDRESSES = ("10.77.0.1", "10.77.0.2")
PREFIX_LEN = 24
#: the rendezvous port, inside namespaces of our own where nothing else listens
RDZV_PORT = 29400
PROBE = Path(__file__).with_name("netprobe.py")
#: the package's root folder, put first on every child's PYTHONPATH (the same ddlkit)
ROOT = Path(ddlkit.__file__).resolve().parent.parent


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux only (this is {sys.platform})"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` (iproute2) is not installed"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "`ip netns` is not supported here"
    return None


@dataclass(frozen=True)
class Link:
    """Two namespaces ``ns[i]`` with interface ``dev[i]`` holding ``addr[i]``; each end
    shaped to ``rate_mbit`` (tbf), plus ``delay_ms`` of netem delay where available."""

    ns: tuple[str, str]
    dev: tuple[str, str]
    addr: tuple[str, str]
    rate_mbit: float
    delay_ms: float
    netem: str

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """B in bytes per second (β = 1/B)."""
        return self.rate_mbit * 1e6 / 8


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def _shape(ns: str, dev: str, rate_mbit: float, delay_ms: float) -> str:
    """tbf at ``rate_mbit`` on ``dev``, under netem's delay where the kernel has netem.
    Returns what was done about delay, in words."""
    tbf = ["tbf", "rate", f"{rate_mbit:g}mbit", "burst", "32kbit", "latency", "50ms"]
    if delay_ms > 0:
        netem = _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root",
                     "handle", "1:", "netem", "delay", f"{delay_ms:g}ms", check=False)
        if netem.returncode == 0:  # tc-netem(8): netem at the root, tbf as its child
            _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:1",
                 "handle", "10:", *tbf)
            return f"netem delay {delay_ms:g} ms on each end"
        why = netem.stderr.strip() or f"tc exited with {netem.returncode}"
        _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", *tbf)
        return f"no netem in this kernel ({why}): no delay added, α is the link's own"
    _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", *tbf)
    return "no delay asked: α is the link's own"


@contextmanager
def two_hosts(rate_mbit: float = 100.0, delay_ms: float = 0.0,
              tag: str | None = None) -> Iterator[Link]:
    """Two namespaces joined by a veth pair, each end shaped (see :class:`Link`); all of
    it, and every process left inside, is removed on exit. ``tag`` (default: this
    process's id) keeps the names apart from another run's."""
    tag = tag or str(os.getpid())
    ns = (f"ddlkit-{tag}-a", f"ddlkit-{tag}-b")
    dev = (f"ddl{tag[-11:]}a", f"ddl{tag[-11:]}b")  # interface names: 15 characters at most
    made: list[str] = []
    try:
        for name in ns:
            _run("ip", "netns", "add", name)
            made.append(name)
        _run("ip", "link", "add", dev[0], "netns", ns[0], "type", "veth",
             "peer", "name", dev[1], "netns", ns[1])
        notes = []
        for name, d, addr in zip(ns, dev, ADDRESSES):
            _run("ip", "-n", name, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", d)
            _run("ip", "-n", name, "link", "set", "lo", "up")
            _run("ip", "-n", name, "link", "set", d, "up")
            notes.append(_shape(name, d, rate_mbit, delay_ms))
        netem = notes[0]
        yield Link(ns, dev, ADDRESSES, rate_mbit, delay_ms if "netem delay" in netem else 0.0,
                   netem)
    finally:
        _tear_down(made, dev)


def _tear_down(namespaces: Sequence[str], dev: Sequence[str]) -> None:
    """End every process inside, remove qdiscs, the veth pair and the namespaces; raise
    afterwards if anything stayed."""
    stayed: list[str] = []
    for name in namespaces:
        alive: list[int] = []
        for _ in range(50):
            alive = [int(p) for p in _run("ip", "netns", "pids", name, check=False)
                     .stdout.split()]
            if not alive:
                break
            for pid in alive:  # processes we started in a namespace we made
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if alive:
            stayed.append(f"processes {alive} in {name}")
    for name, d in zip(namespaces, dev):
        _run("ip", "netns", "exec", name, "tc", "qdisc", "del", "dev", d, "root", check=False)
    if namespaces:
        _run("ip", "-n", namespaces[0], "link", "del", dev[0], check=False)  # both ends
    for name in namespaces:
        _run("ip", "netns", "del", name, check=False)
    left = set(namespaces) & set(_run("ip", "netns", "list").stdout.split())
    stayed += [f"network namespace {name}" for name in sorted(left)]
    if stayed:
        raise RuntimeError("not removed: " + "; ".join(stayed))


def tc_bytes(link: Link) -> tuple[int, int]:
    """Bytes each end's root qdisc has sent so far (what crossed the shaped link)."""
    sent = []
    for ns, dev in zip(link.ns, link.dev):
        stats = json.loads(_run("ip", "netns", "exec", ns, "tc", "-s", "-j", "qdisc", "show",
                                "dev", dev).stdout)
        sent.append(next(int(q["bytes"]) for q in stats if q.get("root")))
    return sent[0], sent[1]


# -- measuring the link -------------------------------------------------------------------
@dataclass(frozen=True)
class LinkProbe:
    """A 1-byte TCP round trip (median) and the throughput of one bulk transfer."""

    rtt_s: float
    throughput_bytes_per_s: float

    @property
    def alpha_s(self) -> float:
        """α, the one-way latency per message: half the round trip."""
        return self.rtt_s / 2


def _end(procs: Sequence[subprocess.Popen[str]]) -> None:
    """Kill (by process group) and reap whatever is still running of ``procs``."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()


def probe_link(link: Link, rounds: int = 200, nbytes: int = 2_000_000,
               timeout_s: float = 60.0) -> LinkProbe:
    """Measure the link from namespace b to a with :mod:`ddlkit.bench.netprobe`."""
    py = [sys.executable, "-I", str(PROBE)]
    server = subprocess.Popen(["ip", "netns", "exec", link.ns[0], *py, "serve", link.addr[0]],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"the probe's server did not start: {ready}")
        client = _run("ip", "netns", "exec", link.ns[1], *py, "probe", link.addr[0], ready[1],
                      str(rounds), str(nbytes))
        server.wait(timeout=timeout_s)
        numbers = json.loads(client.stdout.strip().splitlines()[-1])
        return LinkProbe(numbers["rtt_s"], numbers["throughput_bytes_per_s"])
    finally:
        _end([server])


# -- running across the link ----------------------------------------------------------------
def torchrun_across(link: Link, exp: Experiment, out: Path, timeout_s: float = 180.0,
                    ) -> RunResult:
    """Run ``exp`` with torchrun, one agent per namespace (``exp.world_size`` / 2 ranks
    each), rendezvous on the first namespace's address; returns rank 0's record."""
    if exp.world_size % 2:
        raise ValueError(f"exp: {exp.label()} has {exp.world_size} ranks; two agents need "
                         "an even number")
    out.mkdir(parents=True, exist_ok=True)
    config = out / "experiment.json"
    config.write_text(json.dumps(exp.to_dict()))
    scratch = out / "tmp"  # torchrun leaves its torchelastic_* log folders in TMPDIR
    scratch.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "GLOO_SOCKET_IFNAME"}  # let ddlkit pick
    env.update(PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        TMPDIR=str(scratch), OMP_NUM_THREADS="1")
    agents: list[subprocess.Popen[str]] = []
    try:
        for i, (ns, addr) in enumerate(zip(link.ns, link.addr)):
            cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "torch.distributed.run",
                   "--nnodes=2", f"--nproc-per-node={exp.world_size // 2}",
                   "--rdzv-backend=c10d", f"--rdzv-endpoint={link.addr[0]}:{RDZV_PORT}",
                   f"--rdzv-id=ddlkit-netns-{link.ns[0]}", f"--rdzv-conf=is_host={int(i == 0)}",
                   f"--local-addr={addr}", "--max-restarts=0",
                   "-m", "ddlkit.launch", "--config", str(config), "--quiet",
                   "--out", str(out / "record")]
            agents.append(subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True, env=env,
                                           start_new_session=True))
        deadline = time.monotonic() + timeout_s
        logs = [a.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
                for a in agents]
    finally:
        _end(agents)  # only on a hang or an error: the agents and what they started
    if any(a.returncode for a in agents):
        raise RuntimeError("torchrun failed:\n" + "\n".join(logs))
    return ddlkit.load_result(out / "record")


# -- the comparison --------------------------------------------------------------------------
def bytes_per_step(result: RunResult) -> list[float]:
    """Bytes each rank sent plus received, per step."""
    return [(r.bytes_sent + r.bytes_received) / result.config.steps for r in result.ranks]


@dataclass(frozen=True)
class NetnsComparison:
    """One experiment three ways: ``real`` (torchrun across the namespaces), ``emulated``
    (ddlkit.run on loopback, sleeping α + n/B per message) and ``predicted`` (α–β model,
    from the real run's compute); ``loopback`` is the same run unshaped, for scale."""

    exp: Experiment
    link: Link
    probe: LinkProbe
    network: Network
    real: RunResult
    emulated: RunResult
    loopback: RunResult
    predicted: StepTime
    tc_bytes: tuple[int, int] = field(default=(0, 0))

    @property
    def predicted_at_tcp(self) -> StepTime:
        """The α–β prediction with B the probe's measured TCP throughput instead of the tbf
        rate (TCP/IP headers, about 4.6% of a 1500-byte frame, and the kernel's own
        overheads included)."""
        net = Network(self.network.latency_s, self.probe.throughput_bytes_per_s)
        return predict_for(self.exp, measured_compute(self.real), net)

    def step_s(self) -> dict[str, float]:
        """Seconds per step: measured (real, emulated, loopback) and predicted (at the tbf
        rate, and at the measured TCP throughput)."""
        return {"real": measured_step_s(self.real), "emulated": measured_step_s(self.emulated),
                "predicted": self.predicted.total_s,
                "predicted at TCP": self.predicted_at_tcp.total_s,
                "loopback": measured_step_s(self.loopback)}

    def table(self) -> str:
        """The three side by side (and two rows for scale), with α and β."""
        steps = self.step_s()
        real_bytes = bytes_per_step(self.real)[0]
        per_rank = {"real": real_bytes, "emulated": bytes_per_step(self.emulated)[0],
                    "predicted": self.predicted.worker_bytes,
                    "predicted at TCP": self.predicted_at_tcp.worker_bytes,
                    "loopback": bytes_per_step(self.loopback)[0]}
        tcp_mbit = self.probe.throughput_bytes_per_s * 8 / 1e6
        names = {
            "real": "real: torchrun across 2 namespaces, gloo on "
                    f"{self.real.meta.get('gloo_interface', {}).get('ifname')}",
            "emulated": "emulated: ddlkit.run, sleeps α + n/B per message",
            "predicted": f"predicted: α–β model, compute {self.predicted.compute_s * 1e3:.1f} "
                         "ms (measured)",
            "predicted at TCP": f"  the same at B = {tcp_mbit:.1f} Mbit/s (measured TCP)",
            "loopback": "for scale: ddlkit.run on loopback, no shaping"}
        m = cost.n_params(self.exp)
        head = [
            f"{self.exp.label()} · {m:,} params ({format_bytes(m * cost.itemsize(self.exp))})",
            f"link: veth pair, tbf {self.link.rate_mbit:g} Mbit/s on each end: B = "
            f"{self.link.bandwidth_bytes_per_s / 1e6:g} MB/s, β = "
            f"{self.network.beta_s_per_byte * 1e9:.0f} ns/byte; {self.link.netem}",
            f"α = {self.network.latency_s * 1e3:.3f} ms (measured: TCP round trip "
            f"{self.probe.rtt_s * 1e3:.3f} ms / 2); one bulk TCP transfer: {tcp_mbit:.1f} Mbit/s",
            f"{'run':<54} {'ms/step':>8} {'bytes/step/rank':>16} {'÷ predicted':>12}"]
        rows = [f"{names[k]:<54} {steps[k] * 1e3:>8.1f} {per_rank[k]:>16,.0f} "
                f"{steps[k] / steps['predicted']:>11.2f}×" for k in names]
        return "\n".join(head + rows)


def validate(exp: Experiment, rate_mbit: float = 100.0, delay_ms: float = 1.0,
             timeout_s: float = 180.0) -> NetnsComparison:
    """Run ``exp`` (without emulation fields) across two namespaces shaped to
    ``rate_mbit`` (and ``delay_ms`` each way where the kernel has netem), emulated at the
    measured α and the tbf rate, and unshaped on loopback; predict it with the α–β model
    from the real run's compute. Everything made on the way is removed."""
    if exp.net_latency_ms or exp.net_bandwidth_mbps:
        raise ValueError(f"exp: {exp.label()} emulates a network already; give the plain run")
    with tempfile.TemporaryDirectory(prefix="ddlkit-netns-") as tmp, two_hosts(
            rate_mbit, delay_ms) as link:  # processes end before their folder goes
        probe = probe_link(link)
        before = tc_bytes(link)
        real = torchrun_across(link, exp, Path(tmp), timeout_s)
        after = tc_bytes(link)
    network = Network(probe.alpha_s, link.bandwidth_bytes_per_s)
    emulate = exp.replace(net_latency_ms=network.latency_s * 1e3, net_bandwidth_mbps=rate_mbit)
    with WorkerPool(exp.world_size) as pool:
        emulated = ddlkit.run(emulate, pool=pool)
        loopback = ddlkit.run(exp, pool=pool)
    for result in (real, emulated, loopback):
        if result.status != "ok":
            raise RuntimeError(f"{result.config.label()}: {result.status}: {result.error}")
    predicted = predict_for(exp, measured_compute(real), network)
    return NetnsComparison(exp, link, probe, network, real, emulated, loopback, predicted,
                           (after[0] - before[0], after[1] - before[1]))
