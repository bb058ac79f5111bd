"""httpx clients for service-to-service calls.

Every call has a timeout (a hung peer must not hold a request, or a database transaction,
open) and a short retry on transport errors and 502/503/504, with a small backoff. Callers
decide what a final failure means (referral-api answers 503).
"""

from __future__ import annotations

import asyncio

import httpx

RETRY_STATUSES = frozenset({502, 503, 504})


def service_client(timeout: float = 2.0, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    """``auth``: the service's own credentials (``closedloop.http.credentials``) for a peer
    that checks tokens; never for third parties."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        auth=auth,
        headers={"Accept": "application/fhir+json", "User-Agent": "closed-loop"},
        follow_redirects=False,
    )


async def get_with_retry(
    client: httpx.AsyncClient, url: str, *, attempts: int = 2, backoff: float = 0.2
) -> httpx.Response:
    """GET ``url``; retry transport errors and 502/503/504. Raises ``httpx.TransportError``
    (or returns the last 5xx response) once the attempts are used up."""
    for attempt in range(attempts):
        try:
            response = await client.get(url)
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
        else:
            if response.status_code not in RETRY_STATUSES or attempt == attempts - 1:
                return response
        await asyncio.sleep(backoff * (2**attempt))
    raise AssertionError("unreachable")
