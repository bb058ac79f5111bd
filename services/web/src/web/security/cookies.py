"""Sealed cookies: the sign-in (tokens, role) and the login in flight (PKCE verifier, state)
are kept in the browser, encrypted and authenticated (Fernet, with a key derived from
``WEB_SESSION_SECRET``), so any replica can read them and the browser cannot read or change
them. Every cookie is HttpOnly and SameSite; Secure unless ``WEB_COOKIE_SECURE=false``."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

SESSION = "web_session"
LOGIN = "web_login"


class Sealer:
    def __init__(self, secret: str, secure: bool) -> None:
        key = hashlib.sha256(f"web-cookies|{secret}".encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.secure = secure

    def read(self, request: Request, name: str, max_age: int) -> dict[str, Any] | None:
        """The cookie's content, or None when it is missing, older than ``max_age`` seconds,
        or was not sealed by this app's secret."""
        raw = request.cookies.get(name)
        if not raw:
            return None
        try:
            data = json.loads(self._fernet.decrypt(raw.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(
        self,
        response: Response,
        name: str,
        data: dict[str, Any],
        max_age: int,
        samesite: str = "lax",
    ) -> None:
        sealed = self._fernet.encrypt(json.dumps(data).encode()).decode()
        response.set_cookie(
            name,
            sealed,
            max_age=max_age,
            httponly=True,
            secure=self.secure,
            samesite=samesite,  # type: ignore[arg-type]
            path="/",
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, secure=self.secure)
