"""Calls to the FHIR services and what their refusals mean to a person.

Every failure becomes an ``ApiError`` naming a text the error page shows (never a stack
trace, never a raw response): the service is down, the caller may not, the thing is gone, it
changed meanwhile, or the server's own diagnostics for a refused write."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

FHIR_JSON = "application/fhir+json"


class ApiError(Exception):
    """``key`` is a text of ``web.i18n``; ``detail`` the server's diagnostics, if any."""

    def __init__(self, key: str, status: int, detail: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.detail = detail


class Bearer(httpx.Auth):
    """A person's access token, from their sign-in."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def _diagnostics(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    issues = body.get("issue") if isinstance(body, dict) else None
    if not isinstance(issues, list) or not issues:
        return ""
    first = issues[0] if isinstance(issues[0], dict) else {}
    return str(first.get("diagnostics") or (first.get("details") or {}).get("text") or "")[:300]


def raise_for(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        raise ApiError("signed_out", 401)
    if status == 403:
        raise ApiError("api_refused", 403)
    if status in (404, 410):
        raise ApiError("api_not_found", 404)
    if status in (409, 412):
        raise ApiError("api_conflict", 409)
    if status in (400, 422):
        raise ApiError("api_invalid", 422, _diagnostics(response))
    raise ApiError("api_unavailable", 503)


class Api:
    """One shared httpx client for every call; ``auth`` per call (the app's own credentials
    or a person's token)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _send(self, method: str, url: str, auth: httpx.Auth | None, **kw: Any) -> Any:
        try:
            response = await self.http.request(method, url, auth=auth, **kw)
        except httpx.HTTPError:  # transport errors, and the credentials' token fetch failing
            raise ApiError("api_unavailable", 503) from None
        raise_for(response)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise ApiError("api_unavailable", 503) from None

    async def text(
        self, url: str, params: dict[str, str], auth: httpx.Auth | None, limit: int = 2_000_000
    ) -> tuple[str, str]:
        """A body that is not FHIR JSON (CSV, SVG) and its media type; a body over ``limit``
        characters is refused as if the service failed."""
        try:
            response = await self.http.get(url, params=params, auth=auth)
        except httpx.HTTPError:
            raise ApiError("api_unavailable", 503) from None
        raise_for(response)
        if len(response.content) > limit:
            raise ApiError("api_unavailable", 503)
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        return response.text, media

    async def read(self, url: str, auth: httpx.Auth | None) -> dict[str, Any]:
        return dict(await self._send("GET", url, auth))

    async def search(
        self, url: str, params: dict[str, str], auth: httpx.Auth | None
    ) -> dict[str, Any]:
        """The search Bundle."""
        return dict(await self._send("GET", url, auth, params=params))

    async def create(
        self,
        url: str,
        resource: dict[str, Any],
        auth: httpx.Auth | None,
        if_none_exist: str | None = None,
    ) -> Any:
        headers = {"Content-Type": FHIR_JSON}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        return await self._send("POST", url, auth, json=resource, headers=headers)

    async def update(
        self, url: str, resource: dict[str, Any], auth: httpx.Auth | None, version: str | None
    ) -> dict[str, Any]:
        """PUT, only if nobody changed it since ``version`` (412 -> "changed meanwhile")."""
        headers = {"Content-Type": FHIR_JSON}
        if version:
            headers["If-Match"] = f'W/"{version}"'
        return dict(await self._send("PUT", url, auth, json=resource, headers=headers))


def entries(bundle: dict[str, Any], resource_type: str | None = None) -> list[dict[str, Any]]:
    out = []
    for entry in bundle.get("entry") or []:
        resource = (entry or {}).get("resource")
        if isinstance(resource, dict) and (
            resource_type is None or resource.get("resourceType") == resource_type
        ):
            out.append(resource)
    return out
