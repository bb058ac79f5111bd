"""Authorization on notifier: the scope table over every type and interaction it serves (from
its FhirConfig), on both databases."""

from __future__ import annotations

from closedloop.testing import TokenIssuer, app_client, assert_scopes_enforced
from notifier.app import create_app
from notifier.settings import Settings

AUD = "http://testserver/fhir"


async def test_every_interaction_of_every_type(
    database_url: str, token_issuer: TokenIssuer
) -> None:
    app = create_app(Settings(database_url=database_url, **token_issuer.settings(AUD)))
    async with app_client(app) as client:
        server = app.state.fhir
        calls = await assert_scopes_enforced(
            client, token_issuer, AUD, server.config.resource_types, sorted(server.operations)
        )
    assert calls > 200


def test_off_by_default() -> None:
    """Until every test carries a token, authorization is opt-in (NOTIFIER_AUTH_ENABLED)."""
    assert Settings().auth_enabled is False
