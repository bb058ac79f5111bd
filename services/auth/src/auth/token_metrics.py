"""``POST /token`` counted by grant type and outcome (``issued``, or the OAuth error code):
both closed sets, so a client's invention never becomes a label."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from closedloop.observability import ServiceMetrics
from starlette.responses import Response

GRANT_TYPES = frozenset(
    {"client_credentials", "authorization_code", "refresh_token", "password", "implicit"}
)
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
    }
)


class TokenMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.requests = metrics.counter(
            "auth_token_requests",
            "Token requests, by grant type and outcome (issued, or the OAuth error code)",
            ("grant_type", "outcome"),
        )

    def record(self, body: bytes, response: Response) -> None:
        self.requests.labels(grant_type_of(body), outcome_of(response)).inc()


def grant_type_of(body: bytes) -> str:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return "other"
    grant = next((v for k, v in pairs if k == "grant_type"), None)
    if grant is None:
        return "none"
    return grant if grant in GRANT_TYPES else "other"


def outcome_of(response: Response) -> str:
    if response.status_code == 200:
        return "issued"
    try:
        error = orjson.loads(bytes(response.body)).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    return error if isinstance(error, str) and error in OAUTH_ERRORS else "error"
