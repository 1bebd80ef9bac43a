"""Whether a visitor's address is this machine: personal mode opens the app only to its owner's computer.

A personal-mode app started with `--server.address 0.0.0.0` (so that the room's phones can reach its
voting link) would otherwise show every conversation, and spend the owner's API key, for anyone on the
network. "This machine" is a loopback address or one of the addresses its network interfaces hold:
the owner may open the app through the machine's network address, as the voting link does.
"""

from __future__ import annotations

import ipaddress
import socket
import time

_CACHE: tuple[float, frozenset[str]] = (0.0, frozenset())
_TTL = 30.0  # seconds: a laptop's address changes when it joins another network


def _interface_addresses() -> set[str]:
    """The IPv4 addresses of this machine's interfaces (Linux: SIOCGIFADDR per interface)."""
    found: set[str] = set()
    try:
        import fcntl
        import struct
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _index, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
                    found.add(socket.inet_ntoa(packed[20:24]))
                except OSError:  # an interface with no IPv4 address
                    continue
    except (ImportError, OSError, AttributeError):  # not Linux
        pass
    return found


def _routed_addresses() -> set[str]:
    """The addresses this machine sends from (no packet leaves: a UDP socket's connect only routes)."""
    found: set[str] = set()
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                found.add(s.getsockname()[0])
        except OSError:  # no route of that family
            continue
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return found


def this_machines_addresses() -> frozenset[str]:
    """Every address of this machine that a browser here could come from (kept for 30 s)."""
    global _CACHE
    at, addresses = _CACHE
    if time.monotonic() - at > _TTL or not addresses:
        addresses = frozenset(_normal(a) for a in _interface_addresses() | _routed_addresses() if _normal(a))
        _CACHE = (time.monotonic(), addresses)
    return addresses


def _normal(address: str) -> str:
    """An address as one spelling ("::ffff:10.0.0.5" is 10.0.0.5; a zone "%eth0" is dropped); "" if none."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def is_this_machine(address: str | None) -> bool:
    """Whether a visitor at `address` is on this machine (None: Streamlit's word for a loopback visitor)."""
    if address is None:
        return True
    normal = _normal(address)
    if not normal:
        return False  # an address we cannot read is not ours
    return ipaddress.ip_address(normal).is_loopback or normal in this_machines_addresses()
