"""Authorization on directory-api and the notifier: the scope table over every type and
interaction each serves (from its FhirConfig), on both databases. (referral-api's, which needs
its directory and event settings, is in its own tests.)"""

from __future__ import annotations

from typing import Any

import directory_api.app
import directory_api.settings
import notifier.app
import notifier.settings
import pytest
from closedloop.testing import TokenIssuer, app_client, assert_scopes_enforced, database_url_for

AUD = "http://testserver/fhir"
SERVICES: dict[str, tuple[Any, Any]] = {
    "directory-api": (directory_api.app.create_app, directory_api.settings.Settings),
    "notifier": (notifier.app.create_app, notifier.settings.Settings),
}


@pytest.mark.parametrize("service", SERVICES)
async def test_every_interaction_of_every_type(
    service: str, backend: str, postgres_admin_url: str, token_issuer: TokenIssuer
) -> None:
    create_app, settings = SERVICES[service]
    async with database_url_for(backend, postgres_admin_url) as url:  # a database each
        app = create_app(settings(database_url=url, **token_issuer.settings(AUD)))
        async with app_client(app) as client:
            server = app.state.fhir
            calls = await assert_scopes_enforced(
                client, token_issuer, AUD, server.config.resource_types, sorted(server.operations)
            )
    assert calls > 200


@pytest.mark.parametrize("service", SERVICES)
def test_on_by_default(service: str) -> None:
    """Authorization is on unless <PREFIX>AUTH_ENABLED=false."""
    assert SERVICES[service][1]().auth_enabled is True
