"""gloo's interface on the multi-node (torchrun) path: the one holding the address that
reaches rank 0's store, unless GLOO_SOCKET_IFNAME says otherwise.

Nothing here sends a packet: a UDP ``connect`` only asks the kernel for a route.
``tests/test_netns.py`` checks the same choice inside two network namespaces.
"""
from __future__ import annotations

import sys

import pytest

from ddlkit.runtime import interfaces
from ddlkit.runtime.interfaces import gloo_interface, interface_holding

TABLE = {"lo": ("127.0.0.1",), "eth0": ("192.0.2.7",), "veth1": ("10.77.0.2",)}


def test_an_interface_set_by_the_user_is_kept_as_it_is() -> None:
    choice = gloo_interface("127.0.0.1", 29400, environ={"GLOO_SOCKET_IFNAME": "eth1,eth2"},
                            table=TABLE)
    assert choice.ifname == "eth1,eth2" and "was set" in choice.reason


@pytest.mark.parametrize("platform, name", [("linux", "lo"), ("darwin", "lo0"),
                                            ("win32", None)])
def test_a_store_on_loopback_keeps_gloo_on_loopback(platform: str, name: str | None) -> None:
    choice = gloo_interface("127.0.0.1", 29400, environ={}, platform=platform, table={})
    assert (choice.ifname, choice.address) == (name, "127.0.0.1")


def test_the_interface_holding_the_routed_address_is_chosen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interfaces, "source_address", lambda host, port: "10.77.0.2")
    choice = gloo_interface("10.77.0.1", 29400, environ={}, table=TABLE)
    assert (choice.ifname, choice.address) == ("veth1", "10.77.0.2")
    assert "10.77.0.1" in choice.reason


@pytest.mark.parametrize("address", [None, "198.51.100.9", "fe80::1%eth0"])
def test_without_a_route_or_a_known_address_gloo_keeps_its_default(
        monkeypatch: pytest.MonkeyPatch, address: str | None) -> None:
    monkeypatch.setattr(interfaces, "source_address", lambda host, port: address)
    choice = gloo_interface("10.77.0.1", 29400, environ={}, table=TABLE)
    assert choice.ifname is None and "gloo's default" in choice.reason


def test_interface_holding() -> None:
    assert interface_holding("192.0.2.7", TABLE) == "eth0"
    assert interface_holding("192.0.2.8", TABLE) is None
    assert interface_holding("192.0.2.7", {}) is None


def test_other_platforms_read_no_table_so_gloo_keeps_its_default() -> None:
    assert interfaces.interface_addresses("darwin") == {}
    assert interfaces.interface_addresses("win32") == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's interfaces")
def test_this_machine_every_address_routes_back_to_its_own_interface() -> None:
    table = interfaces.interface_addresses()
    assert table.get("lo") == ("127.0.0.1",)
    assert interfaces.source_address("127.0.0.1", 9) == "127.0.0.1"
    for name, (address,) in table.items():
        if interfaces.source_address(address, 9) != address:  # e.g. an interface that is down
            continue
        expected = "lo" if address.startswith("127.") else name
        assert gloo_interface(address, 9, environ={}).ifname == expected
