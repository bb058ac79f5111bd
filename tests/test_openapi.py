"""The FHIR API's OpenAPI document (``/fhir/openapi.json``) against the services themselves.

schemathesis generates requests from each service's own document and sends them to the
service as a real process, on SQLite and on PostgreSQL; every answer must be below 500 and
must match the document (status code, content type, body schema). Examples are derandomized,
so a run is repeatable; ``OPENAPI_EXAMPLES=N`` sets how many per operation (default 6).
``/docs`` must load Swagger UI from the service itself, never from another host.
"""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from closedloop.testing import AdminTokens, admin_auth
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SERVICES = ("referral-api", "directory-api", "notifier")


@pytest.fixture(scope="module")
def services(three_services: dict[str, str]) -> dict[str, str]:
    """The three services as real processes (tests/conftest.py)."""
    return three_services


class _Admin(requests.auth.AuthBase):
    """An admin token from the test authority on every request the fuzzer sends (renewed
    before it expires: a run can outlast one token)."""

    def __init__(self, tokens: AdminTokens) -> None:
        self.tokens = tokens

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.setdefault("Authorization", f"Bearer {self.tokens.token()}")
        return r


def _fuzz(base: str) -> list[str]:
    """schemathesis over every operation of the service's document; the failures found."""
    schema = schemathesis.openapi.from_url(f"{base}/fhir/openapi.json")
    schema.validate()  # a valid OpenAPI 3.0 document first
    failures: list[str] = []
    with requests.Session() as session:
        session.auth = _Admin(admin_auth())
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=f"{base}/fhir", session=session, checks=CHECKS)

            try:
                check()
            # every operation is tried and all failures are reported (schemathesis raises a
            # BaseExceptionGroup of its failures)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label}: {exc}")
    return failures


@pytest.mark.parametrize("name", SERVICES)
def test_schemathesis_finds_nothing(services: dict[str, str], name: str) -> None:
    failures = _fuzz(services[name])
    assert not failures, "\n\n".join(failures)
