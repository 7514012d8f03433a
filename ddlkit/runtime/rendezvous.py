"""The rendezvous store of a local run, and the platform facts gloo needs to stay on loopback.

The parent holds a ``TCPStore`` on 127.0.0.1 with a port the OS picks, so two runs never
collide; every rank connects to it as a client, under a prefix of its own run.

Per platform:

- **Linux and macOS.** The parent binds the listening socket itself, to 127.0.0.1 only,
  and hands it to the store (``master_listen_fd``). ``TCPStore(host, 0)`` alone would
  listen on every interface, and the store is unauthenticated.
- **Windows.** The store cannot take a socket, so it listens on every interface; the
  firewall may ask once. Windows builds of torch may lack libuv (pytorch#139990), so the
  store uses its older backend there, as ``torch.distributed``'s own rendezvous does.
- **gloo's interface.** gloo listens on the address the host name resolves to unless told
  an interface: ``lo`` on Linux, ``lo0`` on macOS. On Windows interface names are not
  fixed, so nothing is set and gloo resolves the host name (falling back to loopback).
"""
from __future__ import annotations

import socket
import sys
from datetime import timedelta

import torch.distributed as dist

HOST = "127.0.0.1"
#: gloo's own timeout for any one operation (the default is 30 minutes)
GLOO_TIMEOUT_S = 45.0


def loopback_ifname(platform: str = sys.platform) -> str | None:
    """The loopback interface's name for ``GLOO_SOCKET_IFNAME``, or None (Windows)."""
    if platform.startswith("linux"):
        return "lo"
    if platform == "darwin":
        return "lo0"
    return None


def can_listen_on_fd(platform: str = sys.platform) -> bool:
    """Whether TCPStore accepts a listening socket made by us (not on Windows)."""
    return platform != "win32"


def uses_libuv(platform: str = sys.platform) -> bool:
    """Whether TCPStore should use its libuv backend (torch's own choice per platform)."""
    return platform != "win32"


def loopback_store(platform: str = sys.platform) -> dist.TCPStore:
    """The run's rendezvous store on 127.0.0.1, on a port the OS picks (see the module
    docstring for what differs per platform)."""
    timeout = timedelta(seconds=GLOO_TIMEOUT_S)
    libuv = uses_libuv(platform)
    if not can_listen_on_fd(platform):
        return dist.TCPStore(HOST, 0, is_master=True, wait_for_workers=False,
                             timeout=timeout, use_libuv=libuv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return dist.TCPStore(HOST, 0, is_master=True, wait_for_workers=False, timeout=timeout,
                         master_listen_fd=sock.detach(),  # the store owns and closes it
                         use_libuv=libuv)


def client_store(host: str, port: int, prefix: str,
                 platform: str = sys.platform) -> dist.PrefixStore:
    """One rank's connection to the run's store, under the run's prefix."""
    return dist.PrefixStore(prefix, dist.TCPStore(
        host, port, is_master=False, timeout=timedelta(seconds=GLOO_TIMEOUT_S),
        use_libuv=uses_libuv(platform)))
