"""The SSRF guard for rest-hook endpoints: http(s) only, to hosts the configuration allows;
private, loopback, link-local and other special addresses are refused unless explicitly allowed
(tests allow loopback). Checked when a Subscription is written and again before each delivery,
so a name that later resolves somewhere private is still refused."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from closedloop import errors


@dataclass(frozen=True)
class EndpointPolicy:
    allowed_hosts: frozenset[str] = frozenset()  # empty: any host with a public address
    allow_loopback: bool = False
    allow_private: bool = False

    def check(self, url: str, where: str = "Subscription.channel.endpoint") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.invalid(
                f"A rest-hook endpoint must be an http(s) URL, not {url!r}",
                (where,),
                cl_code="CL-8401",
            )
        host = parts.hostname.lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            raise errors.invalid(
                f"Endpoint host {host} is not in the allowed hosts", (where,), cl_code="CL-8402"
            )
        for address in self._addresses(host, where):
            self._check_address(address, host, where)

    def _addresses(
        self, host: str, where: str
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            raise errors.invalid(
                f"Endpoint host {host} does not resolve", (where,), cl_code="CL-8403"
            ) from None
        return [ipaddress.ip_address(info[4][0]) for info in infos]

    def _check_address(
        self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str, where: str
    ) -> None:
        if ip.is_loopback:
            if self.allow_loopback:
                return
            kind = "loopback"
        elif ip.is_link_local:
            kind = "link-local (cloud metadata lives here)"
        elif ip.is_private:
            if self.allow_private:
                return
            kind = "private"
        elif ip.is_multicast or ip.is_reserved or ip.is_unspecified:
            kind = "reserved"
        else:
            return
        raise errors.invalid(
            f"Endpoint {host} resolves to a {kind} address ({ip}); refused",
            (where,),
            cl_code="CL-8404",
        )
