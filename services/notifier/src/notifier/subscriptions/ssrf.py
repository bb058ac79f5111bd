"""The SSRF guard for rest-hook endpoints: http(s) only, to hosts the configuration allows;
private, loopback, link-local and other special addresses are refused unless explicitly allowed
(tests allow loopback; link-local and reserved addresses never are).

Checked when a Subscription is written, and again when the delivery client connects
(``guarded_http``): there the addresses checked are the addresses connected to, so a name that
resolves somewhere public at creation and somewhere private later (DNS rebinding) is refused.
Every spelling of an address is reduced to what it means first (``addresses``), and the URL
must read the same to Python's parser and to httpx's (the one the client connects with).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import urlsplit

import httpx
from closedloop import errors

from notifier.subscriptions import addresses
from notifier.subscriptions.addresses import IPAddress

Resolver = Callable[[str], list[str]]
"""A host name -> the addresses it resolves to (text); injectable so tests can play DNS."""

_HOST_NAME = re.compile(r"^(?=.{1,253}\.?$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.?)+$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
DEFAULT_PORTS = {"http": 80, "https": 443}


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver gives for ``host`` (blocking: run it in a thread
    where an event loop must not wait)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class EndpointPolicy:
    allowed_hosts: frozenset[str] = frozenset()  # empty: any host with a public address
    allow_loopback: bool = False
    allow_private: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)

    def check(self, url: str, where: str = "Subscription.channel.endpoint") -> None:
        """Refuse (400 OperationOutcome naming ``where``) an endpoint the notifier must not
        post to: a malformed or ambiguous URL, a port outside 1-65535, a host not allowed, or
        one that means or resolves to a forbidden address."""
        _, host, port = self._parse(url, where)
        self.host_allowed(host, where)
        self.port_allowed(port, where)
        self.resolve(host, where)

    def host_allowed(self, host: str, where: str) -> None:
        if self.allowed_hosts and host.rstrip(".") not in self.allowed_hosts:
            raise errors.invalid(
                f"Endpoint host {host} is not in the allowed hosts", (where,), cl_code="CL-8402"
            )

    def port_allowed(self, port: int, where: str) -> None:
        if not 1 <= port <= 65535:
            raise _bad(f"Endpoint port {port} is outside 1-65535", where)

    def resolve(self, host: str, where: str) -> list[IPAddress]:
        """The addresses to connect to for ``host`` (an IP literal in any spelling, or a name
        the resolver looks up), each already judged: any forbidden one refuses the host."""
        try:
            ip = addresses.literal(host)
        except ValueError:
            raise _bad(f"Endpoint host {host!r} is not a valid IP address", where) from None
        found = [ip] if ip is not None else self._lookup(host, where)
        targets: list[IPAddress] = []
        for address in found:
            meant = addresses.meaning(address)
            for each in meant:
                self._judge(each, address, host, where)
            targets.append(meant[0])
        return targets

    def _lookup(self, host: str, where: str) -> list[IPAddress]:
        if not _HOST_NAME.match(host):
            raise _bad(f"Endpoint host {host!r} is not a valid host name", where)
        try:  # a zone id (fe80::1%eth0) is dropped: the address alone says it is link-local
            found = [ip_address(a.partition("%")[0]) for a in self.resolver(host)]
        except (OSError, UnicodeError, ValueError):
            found = []
        if not found:
            raise errors.invalid(
                f"Endpoint host {host} does not resolve", (where,), cl_code="CL-8403"
            )
        return found

    def _judge(self, ip: IPAddress, written: IPAddress, host: str, where: str) -> None:
        kind = addresses.kind(ip)
        if kind is None:
            return
        if (kind == addresses.LOOPBACK and self.allow_loopback) or (
            kind == addresses.PRIVATE_KIND and self.allow_private
        ):
            return
        shown = f"{ip}" if ip == written else f"{written}, that is {ip}"
        raise errors.invalid(
            f"Endpoint {host} is a {kind} address ({shown}); refused",
            (where,),
            cl_code="CL-8404",
        )

    def _parse(self, url: str, where: str) -> tuple[str, str, int]:
        """(scheme, host, port) as both parsers read them; the host lower-case, IDNA-encoded,
        IPv6 without brackets."""
        if _CONTROL.search(url):
            raise _bad("The endpoint URL contains spaces or control characters", where)
        try:
            parts = urlsplit(url)
            parsed = httpx.URL(url)
        except (ValueError, httpx.InvalidURL):
            raise _bad(f"The endpoint {url!r} is not a valid URL", where) from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise _bad(f"A rest-hook endpoint must be an http(s) URL, not {url!r}", where)
        authority = parts.netloc.rpartition("@")[2]
        _, _, port_text = authority.rpartition("]")[2].partition(":")
        if port_text and not _PORT.match(port_text):
            raise _bad(f"Endpoint port {port_text!r} is not a port number", where)
        port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
        host = parsed.raw_host.decode("ascii").lower()
        if parsed.host != parts.hostname.lower() or (parsed.port or port) != port:
            raise _bad(f"The endpoint {url!r} is ambiguous (parsers disagree on it)", where)
        return scheme, host, port


def _bad(text: str, where: str) -> errors.FhirError:
    return errors.invalid(text, (where,), cl_code="CL-8401")
