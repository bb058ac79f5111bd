"""Calling other services and third parties over HTTP: timeouts and retries in one place."""

from closedloop.http.client import get_with_retry, service_client

__all__ = ["get_with_retry", "service_client"]
