"""A service's own tokens (closedloop.http.credentials) against the test authority's real
``/token``: one token serves calls until it is close to expiry, a peer's 401 gets a new token
and the call sent once more, a refused client is a transport error, and no credentials (or
authorization off) means calls without a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from closedloop.http import ClientCredentials, credentials_from
from closedloop.http.credentials import CredentialsError, load_private_key
from closedloop.settings import FhirServiceSettings
from closedloop.testing import LoopbackServer, TokenIssuer
from joserfc import jwk


class Peer(LoopbackServer):
    """Records the bearer token of each request; refuses the tokens in ``refuse`` with 401."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.refuse: set[str] = set()
        self.refuse_all = False

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
        self.seen.append(token)
        status = 401 if self.refuse_all or token in self.refuse or not token else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def client_key(authority: TokenIssuer, tmp_path: Path) -> Path:
    key_file = tmp_path / "caller.json"
    authority.register(f"caller-{tmp_path.name}", "system/Patient.r", "service", key_file)
    return key_file


def credentials(authority: TokenIssuer, key_file: Path, **kw: Any) -> ClientCredentials:
    key, alg = load_private_key(key_file)
    client_id = f"caller-{key_file.parent.name}"
    return ClientCredentials(authority.token_url, client_id, key, alg, "system/Patient.r", **kw)


async def test_one_token_serves_until_a_peer_refuses_it(
    authority: TokenIssuer, client_key: Path
) -> None:
    creds = credentials(authority, client_key)
    async with Peer() as peer, httpx.AsyncClient(auth=creds) as http:
        assert (await http.get(peer.url)).status_code == 200
        assert (await http.get(peer.url)).status_code == 200
        assert creds.fetches == 1 and peer.seen[0] == peer.seen[1]
        peer.refuse.add(peer.seen[0])  # keys rotated, say
        assert (await http.get(peer.url)).status_code == 200
        assert creds.fetches == 2 and peer.seen[2] == peer.seen[0] != peer.seen[3]
        peer.refuse_all = True  # refused whatever it sends: one retry only, then the 401
        before = len(peer.seen)
        assert (await http.get(peer.url)).status_code == 401
        assert len(peer.seen) - before == 2 and creds.fetches == 3


async def test_a_token_close_to_expiry_is_renewed(authority: TokenIssuer, client_key: Path) -> None:
    creds = credentials(authority, client_key, refresh_margin=300)  # always "about to expire"
    async with Peer() as peer, httpx.AsyncClient(auth=creds) as http:
        await http.get(peer.url)
        await http.get(peer.url)
    assert creds.fetches == 2 and peer.seen[0] != peer.seen[1]


async def test_a_refused_client_is_a_transport_error(
    authority: TokenIssuer, client_key: Path, tmp_path: Path
) -> None:
    key = jwk.ECKey.generate_key("P-384", private=True)  # a key no client was registered with
    creds = ClientCredentials(authority.token_url, "nobody", key, "ES384", "system/Patient.r")
    async with Peer() as peer, httpx.AsyncClient(auth=creds) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.get(peer.url)
    assert isinstance(caught.value, CredentialsError) and "401" in str(caught.value)
    assert peer.seen == []
    creds = credentials(authority, client_key)
    creds.scope = "system/Task.cruds"  # more than its registration covers
    with pytest.raises(CredentialsError, match="400"):
        await creds.token()


def test_credentials_only_with_authorization_on_and_a_client(client_key: Path) -> None:
    base = {"auth_issuer": "http://127.0.0.1:1", "client_scope": "system/Patient.r"}
    assert credentials_from(FhirServiceSettings(**base)) is None
    with_client = {**base, "client_id": "caller", "client_key_file": client_key}
    assert credentials_from(FhirServiceSettings(**with_client, auth_enabled=False)) is None
    creds = credentials_from(FhirServiceSettings(**with_client))
    assert creds is not None and creds.token_url == "http://127.0.0.1:1/token"
