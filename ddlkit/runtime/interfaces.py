"""Which network interface gloo uses on the multi-node (torchrun) path.

Left alone, gloo listens on the address this machine's host name resolves to, which is
often ``127.0.x.x`` (``/etc/hosts``): the other machines then cannot reach it. A local
run keeps gloo on the loopback (:func:`~ddlkit.runtime.rendezvous.loopback_ifname`); a
rank under torchrun picks the interface that holds the address it reaches rank 0's store
(``MASTER_ADDR``) from, in this order:

1. ``GLOO_SOCKET_IFNAME``, when it is set, is honoured as it is;
2. the local address the kernel routes to ``MASTER_ADDR`` from (a UDP socket's
   ``connect`` picks it; no packet is sent): on rank 0's machine that is ``MASTER_ADDR``
   itself, elsewhere the address of the interface facing it;
3. the interface holding that address: the loopback's name for a loopback address
   (torchrun's "nodes" are then processes of this one machine, as in the tests),
   otherwise the interface whose IPv4 address it is, read per interface with
   ``ioctl(SIOCGIFADDR)`` (Linux: one primary IPv4 address per interface).

Where any step finds nothing (no route, an IPv6 or secondary address, another
platform), the choice is None and gloo keeps its own default.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Mapping

from ddlkit.runtime.rendezvous import loopback_ifname

ENV = "GLOO_SOCKET_IFNAME"
#: Linux's ioctl request for an interface's (primary) IPv4 address, <linux/sockios.h>
SIOCGIFADDR = 0x8915


@dataclass(frozen=True)
class InterfaceChoice:
    """gloo's interface for this rank (None: gloo's default), the local address it was
    chosen for, and why, in words (it goes into the record's ``meta``)."""

    ifname: str | None
    address: str | None
    reason: str


def source_address(host: str, port: int) -> str | None:
    """The local address this machine sends from to reach ``host:port``, or None.

    ``connect`` on a UDP socket only asks the kernel for a route; nothing is sent.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        return None
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.connect(sockaddr)
                return str(sock.getsockname()[0])
        except OSError:  # no route for this family: try the next address
            continue
    return None


def interface_addresses(platform: str = sys.platform) -> dict[str, tuple[str, ...]]:
    """Each interface's IPv4 address (Linux: ``SIOCGIFADDR``, the primary one); an
    empty mapping elsewhere, so that gloo keeps its default."""
    if not platform.startswith("linux"):
        return {}
    import fcntl

    table: dict[str, tuple[str, ...]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:  # no IPv4 address on this interface
                continue
            table[name] = (socket.inet_ntoa(reply[20:24]),)  # ifreq: name[16], sockaddr_in
    return table


def interface_holding(address: str, table: Mapping[str, tuple[str, ...]]) -> str | None:
    """The interface in ``table`` whose addresses include ``address``, or None."""
    return next((name for name, addrs in table.items() if address in addrs), None)


def gloo_interface(host: str, port: int, environ: Mapping[str, str] = os.environ,
                   platform: str = sys.platform,
                   table: Mapping[str, tuple[str, ...]] | None = None) -> InterfaceChoice:
    """The interface gloo should use to reach rank 0's store at ``host:port`` (see the
    module docstring for the order of the rules). ``table`` replaces
    :func:`interface_addresses` (for tests)."""
    if environ.get(ENV):
        return InterfaceChoice(environ[ENV], None, f"{ENV} was set")
    address = source_address(host, port)
    if address is None:
        return InterfaceChoice(None, None, f"no route to {host}: gloo's default")
    if ipaddress.ip_address(address.split("%")[0]).is_loopback:
        name = loopback_ifname(platform)
        return InterfaceChoice(name, address, f"{host} is reached over loopback "
                                              "(only this machine's processes can join)")
    name = interface_holding(address, interface_addresses(platform) if table is None else table)
    if name is None:
        return InterfaceChoice(None, address, f"no interface found holding {address}: "
                                              "gloo's default")
    return InterfaceChoice(name, address, f"{name} holds {address}, which reaches {host}")
