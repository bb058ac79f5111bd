"""Calling other services and third parties over HTTP: timeouts and retries in one place,
and the service's own access tokens for peers that check them."""

from closedloop.http.client import get_with_retry, service_client
from closedloop.http.credentials import ClientCredentials, credentials_from

__all__ = ["ClientCredentials", "credentials_from", "get_with_retry", "service_client"]
