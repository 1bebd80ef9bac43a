"""Who counts as "this machine" for personal mode: loopback and this machine's own addresses only."""

from __future__ import annotations

import socket

import pytest

from egp_core.network import is_this_machine, this_machines_addresses


@pytest.mark.parametrize("address", [None, "127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_this_machine(address):
    assert is_this_machine(address)


@pytest.mark.parametrize("address", ["203.0.113.7", "198.51.100.1", "2001:db8::7", "::ffff:203.0.113.7",
                                     "", " ", "not an address", "10.0.0.1; DROP TABLE", "256.1.1.1"])
def test_another_or_unreadable_address_is_not(address):
    assert not is_this_machine(address)


def test_the_address_this_machine_sends_from_is_this_machine():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # routes only; nothing is sent
        except OSError:
            pytest.fail("this machine has no IPv4 route to test with")
        own = s.getsockname()[0]
    assert own in this_machines_addresses()
    assert is_this_machine(own) and is_this_machine(f"::ffff:{own}")
