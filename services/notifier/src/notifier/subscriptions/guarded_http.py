"""The notifier's outbound HTTP client: the SSRF guard runs where the connection is made.

Checking an endpoint and then letting the client resolve its name again leaves a window: the
name can resolve somewhere public for the check and somewhere private for the connection (DNS
rebinding). Here the network backend resolves once, judges every address with the
``EndpointPolicy`` and connects to a judged address, so what was checked is what is connected
to. The host name stays in the request (Host header, TLS SNI and certificate check) and in the
connection pool key. Every request passes, redirects included (the client follows none).

The notifier's own configured services (referral-api, the SMS API) are trusted origins: they
are the operator's choice, not a subscriber's, and may well be on loopback or a private network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore
import httpx
from closedloop import errors
from httpcore import AnyIOBackend, AsyncNetworkBackend, AsyncNetworkStream

from notifier.subscriptions.ssrf import DEFAULT_PORTS, EndpointPolicy


class EndpointRefused(httpx.ConnectError):
    """The guard refused the address a request would connect to (the text says why)."""


class GuardedBackend(AsyncNetworkBackend):
    def __init__(self, policy: EndpointPolicy, trusted: Iterable[tuple[str, int]] = ()) -> None:
        self.policy = policy
        self.trusted = frozenset(trusted)
        self._backend = AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        host = host.lower()
        targets = [host]
        if (host, port) not in self.trusted:
            where = "connect"
            try:
                self.policy.host_allowed(host, where)
                self.policy.port_allowed(port, where)
                targets = [
                    str(ip) for ip in await asyncio.to_thread(self.policy.resolve, host, where)
                ]
            except errors.FhirError as exc:
                raise EndpointRefused(str(exc)) from None
        last: Exception | None = None
        for target in targets:  # every one was judged; the first that answers is used
            try:
                return await self._backend.connect_tcp(
                    target,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise EndpointRefused("Unix sockets are not an endpoint")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on the ``GuardedBackend``."""

    def __init__(self, policy: EndpointPolicy, trusted_urls: Iterable[str] = ()) -> None:
        super().__init__(trust_env=False)
        trusted = []
        for url in trusted_urls:
            parsed = httpx.URL(url)
            port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 80)
            trusted.append((parsed.raw_host.decode("ascii").lower(), port))
        # httpx builds its pool without a network backend argument: the same pool, guarded
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, trusted),
        )


def guarded_client(policy: EndpointPolicy, trusted_urls: Iterable[str] = ()) -> httpx.AsyncClient:
    """The client for everything the notifier sends. Proxy variables from the environment are
    ignored: a proxy would resolve the name itself, out of the guard's sight."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, trusted_urls),
        follow_redirects=False,
        trust_env=False,
    )
