"""The authorization server's public keys, fetched from its JWKS URL and kept for a while.

Keys are fetched when first needed and again once they are older than the TTL; a token naming
a ``kid`` the cached set lacks (the server rotated its key) fetches them again, at most once
per ``min_refetch`` seconds, so a stream of tokens with made-up kids cannot make this server
hammer the authorization server. Never a fetch per request. While the server cannot be
reached, keys already known keep working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from joserfc import jwk
from joserfc.errors import JoseError

log = logging.getLogger("closedloop.auth")


class KeysUnavailable(Exception):
    """No key set could be fetched (the authorization server is down or answers garbage)."""


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        timeout: float = 5.0,
        min_refetch: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.timeout = timeout
        self.min_refetch = min_refetch
        self._transport = transport
        self._keys: dict[str, jwk.Key] = {}
        self._fetched = 0.0  # monotonic time of the last successful fetch
        self._tried = float("-inf")  # monotonic time of the last attempt
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwk.Key | None:
        """The key named ``kid`` (None when the authorization server does not publish it);
        raises ``KeysUnavailable`` when no key set was ever fetched."""
        now = time.monotonic()
        wanted = not self._keys or kid not in self._keys or now - self._fetched > self.ttl
        if wanted and now - self._tried >= self.min_refetch:
            await self._refresh()
        if not self._keys:
            raise KeysUnavailable(f"{self.url}: no keys fetched yet")
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        attempted = self._tried
        async with self._lock:
            if self._tried != attempted:  # another request fetched while this one waited
                return
            self._tried = time.monotonic()
            try:
                keys = await self._fetch()
            except KeysUnavailable as exc:
                log.warning("JWKS fetch failed", extra={"error": str(exc)})
                return  # keys already known keep working
            self._keys = keys
            self._fetched = time.monotonic()

    async def _fetch(self) -> dict[str, jwk.Key]:
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, follow_redirects=False
            ) as client:
                response = await client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body: Any = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise KeysUnavailable(f"{self.url}: {type(exc).__name__}") from None
        keys: dict[str, jwk.Key] = {}
        for data in body.get("keys", []) if isinstance(body, dict) else []:
            if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
                continue
            if data.get("kty") not in ("RSA", "EC") or data.get("use", "sig") != "sig":
                continue  # only public signature keys (never "oct": no shared secrets)
            try:
                key = jwk.import_key({k: v for k, v in data.items() if k != "d"})
            except (JoseError, ValueError, TypeError):
                continue
            keys[data["kid"]] = key
        if not keys:
            raise KeysUnavailable(f"{self.url}: no usable signing keys")
        return keys
