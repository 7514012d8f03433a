"""A tiny TCP probe of a link: round-trip time and throughput, plain Python.

Run as a file (``python ddlkit/bench/netprobe.py …``, so that it starts in a few
milliseconds without importing torch), one end inside each network namespace:

- ``serve HOST``: listen on HOST (port chosen by the OS), print ``ready PORT``, then
  answer one client: echo each 1-byte ping, and after a bulk transfer of n bytes reply
  with one byte;
- ``probe HOST PORT ROUNDS NBYTES``: ROUNDS pings of one byte, then NBYTES in one
  transfer; prints one JSON line with the median round trip (s) and the throughput
  (bytes/s, the round trip subtracted).

It imports nothing of ddlkit (it is not a module of the package's floors).
"""
from __future__ import annotations

import json
import socket
import statistics
import struct
import sys
import time

CHUNK = 1 << 16


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = sock.recv(min(CHUNK, n - got))
        if not part:
            raise ConnectionError("the peer closed the connection")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def serve(host: str) -> None:
    """Answer one client (see the module docstring), then end."""
    with socket.create_server((host, 0)) as server:
        print(f"ready {server.getsockname()[1]}", flush=True)
        server.settimeout(30.0)
        conn, _ = server.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                kind = conn.recv(1)
                if kind in (b"", b"q"):
                    return
                if kind == b"p":
                    conn.sendall(b"p")
                elif kind == b"b":
                    (n,) = struct.unpack("!Q", _recv_exactly(conn, 8))
                    _recv_exactly(conn, n)
                    conn.sendall(b"b")


def probe(host: str, port: int, rounds: int, nbytes: int) -> dict[str, float]:
    """Median round trip of one byte and the throughput of one ``nbytes`` transfer."""
    with socket.create_connection((host, port), timeout=30.0) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        for _ in range(rounds):
            t = time.perf_counter()
            conn.sendall(b"p")
            _recv_exactly(conn, 1)
            rtts.append(time.perf_counter() - t)
        rtt = statistics.median(rtts)
        t = time.perf_counter()
        conn.sendall(b"b" + struct.pack("!Q", nbytes))
        conn.sendall(bytes(nbytes))
        _recv_exactly(conn, 1)
        elapsed = time.perf_counter() - t
        conn.sendall(b"q")
    return {"rtt_s": rtt, "throughput_bytes_per_s": nbytes / max(elapsed - rtt, 1e-9)}


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"] and len(argv) == 2:
        serve(argv[1])
        return 0
    if argv[:1] == ["probe"] and len(argv) == 5:
        print(json.dumps(probe(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
