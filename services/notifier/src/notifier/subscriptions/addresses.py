"""What an endpoint host really points at, whatever its spelling, and what kind of address it is.

Resolvers accept more than dotted quads: ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and
``127.1`` all mean 127.0.0.1 (``inet_aton``). IPv6 literals can carry an IPv4 destination:
IPv4-mapped ``::ffff:127.0.0.1``, IPv4-compatible ``::127.0.0.1``, NAT64 ``64:ff9b::7f00:1``,
6to4 ``2002:7f00:1::``. The SSRF guard classifies the addresses a host means (``meaning``), so
no spelling of a forbidden address gets through.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

IPAddress = IPv4Address | IPv6Address

_NUMBER = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the IPv4 is the last 32 bits
_COMPATIBLE = IPv6Network("::/96")  # deprecated IPv4-compatible addresses (RFC 4291 2.5.5.1)
# the private ranges ``allow_private`` opens (Python's is_private also covers reserved ranges)
PRIVATE = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv6Network("fc00::/7"),
)

LOOPBACK = "loopback"
LINK_LOCAL = "link-local (cloud metadata lives here)"
PRIVATE_KIND = "private"
RESERVED = "reserved or special-purpose"


def _number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)  # "08" is no octal number: ValueError
    return int(label)


def numeric_ipv4(host: str) -> IPv4Address | None:
    """The IPv4 address a numeric host names (``inet_aton``: one to four decimal, ``0x`` hex or
    ``0`` octal parts, the last filling the remaining bytes; one trailing dot allowed). None
    for a host name; ValueError for a host that ends in a number but is no address (as the URL
    standard does: ``a.1`` or ``1.2.3.4.5`` is refused, not looked up)."""
    labels = host.lower().split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not _NUMBER.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.match(label) for label in labels):
        raise ValueError("not an IPv4 address")
    *head, last = (_number(label) for label in labels)
    if any(part > 255 for part in head) or last >= 256 ** (4 - len(head)):
        raise ValueError("not an IPv4 address")
    value = last
    for i, part in enumerate(head):
        value += part << (8 * (3 - i))
    return IPv4Address(value)


def literal(host: str) -> IPAddress | None:
    """The address an IP-literal host names (IPv6 without brackets, or any IPv4 spelling);
    None for a host name, ValueError for a malformed literal (zone ids are refused: only
    link-local addresses have them)."""
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone ids are not accepted")
        return ip_address(host)
    return numeric_ipv4(host)


def meaning(ip: IPAddress) -> list[IPAddress]:
    """The addresses to judge for ``ip``, the destination first: an IPv4 carried in an IPv6
    address is judged as itself (and, for 6to4, the relay address too)."""
    if isinstance(ip, IPv4Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        return [IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip, ip.sixtofour]
    return [ip]


def kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is no public destination (one of the constants above), or None."""
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if any(ip in net for net in PRIVATE):
        return PRIVATE_KIND
    if ip.is_unspecified or ip.is_multicast or not ip.is_global:
        return RESERVED
    return None
