"""Finds the public key that verifies a client's assertion, from the client's inline JWKS or
its JWKS URL.

A fetched JWKS is cached for ``AUTH_JWKS_CACHE_SECONDS`` (less if its Cache-Control max-age
says so). A kid missing from the cached set triggers one refetch: that is how a client rotates
its key without telling us.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from joserfc import jwk

from auth.clients import KTY_FOR_ALG, Client, ClientError, check_public_jwks

MAX_JWKS_BYTES = 64 * 1024
_MAX_AGE = re.compile(r"max-age=(\d+)")


class KeyNotFound(Exception):
    """No usable key: the message says why (it goes back as the invalid_client description)."""


class JwksCache:
    def __init__(self, ttl: float, timeout: float) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._sets: dict[str, tuple[float, dict[str, Any]]] = {}  # url -> (expires, jwks)

    async def _fetch(self, url: str) -> dict[str, Any]:
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as r,
            ):
                if r.status_code != 200:
                    raise KeyNotFound(f"the client's JWKS URL answered {r.status_code}")
                body = b""
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise KeyNotFound("the client's JWKS is too large")
                jwks = check_public_jwks(httpx.Response(200, content=body).json())
                ttl = float(self.ttl)
                cache_control = r.headers.get("cache-control", "")
                if "no-store" in cache_control or "no-cache" in cache_control:
                    ttl = 0.0
                elif m := _MAX_AGE.search(cache_control):
                    ttl = min(ttl, float(m.group(1)))
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            raise KeyNotFound(f"the client's JWKS URL could not be fetched ({reason})") from None
        except (ValueError, ClientError) as exc:
            raise KeyNotFound(f"the client's JWKS URL did not give a valid JWKS: {exc}") from None
        self._sets[url] = (time.monotonic() + ttl, jwks)
        return jwks

    async def _jwks(self, url: str, refetch: bool) -> tuple[dict[str, Any], bool]:
        """(the set, whether it was just fetched)."""
        cached = self._sets.get(url)
        if cached and cached[0] > time.monotonic() and not refetch:
            return cached[1], False
        return await self._fetch(url), True

    async def key_for(self, client: Client, header: dict[str, Any]) -> Any:
        alg = header.get("alg")
        if alg not in KTY_FOR_ALG:
            raise KeyNotFound("the assertion must be signed with RS384 or ES384")
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise KeyNotFound("the assertion's jku is not the client's registered JWKS URL")
        if client.jwks is not None:
            return _pick(client.jwks, header, alg)
        assert client.jwks_url is not None
        jwks, fresh = await self._jwks(client.jwks_url, refetch=False)
        try:
            return _pick(jwks, header, alg)
        except KeyNotFound:
            if fresh:
                raise
        jwks, _ = await self._jwks(client.jwks_url, refetch=True)
        return _pick(jwks, header, alg)


def _pick(jwks: dict[str, Any], header: dict[str, Any], alg: str) -> Any:
    """Exactly one key with the header's kid and the kty its alg needs."""
    kid = header.get("kid")
    matches = [
        k
        for k in jwks["keys"]
        if k.get("kty") == KTY_FOR_ALG[alg] and (kid is None or k.get("kid") == kid)
    ]
    if len(matches) != 1:
        raise KeyNotFound(
            f"the client's JWKS has {len(matches)} {KTY_FOR_ALG[alg]} keys for kid {kid!r}"
            " (exactly one is needed)"
        )
    try:
        return jwk.import_key(matches[0])
    except Exception:
        raise KeyNotFound(f"the client's key {kid!r} cannot be read") from None
