"""Fixtures of the cross-service tests: the three FHIR services as real processes, wired to
each other as ``make run`` wires them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from closedloop.testing import database_url_for, free_port, running_service

EVENTS_TOKEN = "cross-service-events-secret"


@pytest.fixture(scope="module")
async def three_services(backend: str, postgres_admin_url: str) -> AsyncIterator[dict[str, str]]:
    """Each service's base URL by name, on the test's backend with a database each:
    referral-api checks referral targets against directory-api and sends its events to the
    notifier (with the shared secret), which reads patients from referral-api."""
    async with AsyncExitStack() as stack:
        dbs = [
            await stack.enter_async_context(database_url_for(backend, postgres_admin_url))
            for _ in range(3)
        ]
        directory = await stack.enter_async_context(
            running_service("directory_api", "DIRECTORY_API_", dbs[0])
        )
        notifier_port = free_port()
        referral = await stack.enter_async_context(
            running_service(
                "referral_api",
                "REFERRAL_API_",
                dbs[1],
                {
                    "REFERRAL_API_DIRECTORY_URL": f"{directory}/fhir",
                    "REFERRAL_API_EVENT_SINK_URL": f"http://127.0.0.1:{notifier_port}/events",
                    "REFERRAL_API_EVENT_SINK_TOKEN": EVENTS_TOKEN,
                },
            )
        )
        notifier = await stack.enter_async_context(
            running_service(
                "notifier",
                "NOTIFIER_",
                dbs[2],
                {
                    "NOTIFIER_REFERRAL_URL": f"{referral}/fhir",
                    "NOTIFIER_EVENTS_TOKEN": EVENTS_TOKEN,
                },
                port=notifier_port,
            )
        )
        yield {"referral-api": referral, "directory-api": directory, "notifier": notifier}
