"""Access token verification against a JWKS served on loopback (``TokenIssuer``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import pytest
from closedloop.auth import AuthConfig, token_verifier
from closedloop.auth.jwks import JwksCache
from closedloop.auth.tokens import TokenVerifier
from closedloop.errors import FhirError
from closedloop.testing import TokenIssuer
from joserfc import jwk

AUD = "http://testserver/fhir"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with TokenIssuer() as i:
        yield i


def verifier_for(issuer: TokenIssuer, **kw: float) -> TokenVerifier:
    return token_verifier(
        AuthConfig(
            issuer=issuer.issuer,
            audience=AUD,
            jwks_url=issuer.jwks_url,
            token_url=f"{issuer.issuer}/token",
            **kw,
        )
    )


async def refused(verifier: TokenVerifier, header: str) -> FhirError:
    with pytest.raises(FhirError) as caught:
        await verifier(header)
    error = caught.value
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith(f'Bearer realm="{AUD}"')
    return error


class TestAccepted:
    async def test_a_good_token_names_the_caller(self, issuer: TokenIssuer) -> None:
        token = issuer.token(
            "system/Task.rs openid", AUD, subject="ehr-1", organization="Organization/7"
        )
        caller = await verifier_for(issuer)(f"Bearer {token}")
        assert caller is not None
        assert caller.subject == "ehr-1" and caller.client_id == "ehr-1"
        assert caller.scopes == {"system/Task.rs", "openid"}
        assert caller.organization == "Organization/7"

    async def test_aud_may_be_a_list_and_rs384_works(self, issuer: TokenIssuer) -> None:
        issuer.rotate("RS384")
        token = issuer.token("system/Task.r", ["http://other/fhir", AUD])
        assert await verifier_for(issuer)(f"bearer {token}") is not None

    async def test_no_header_is_anonymous(self, issuer: TokenIssuer) -> None:
        assert await verifier_for(issuer)(None) is None

    async def test_keys_are_fetched_once_and_tokens_remembered(self, issuer: TokenIssuer) -> None:
        verifier = verifier_for(issuer)
        for _ in range(5):
            await verifier(f"Bearer {issuer.token('system/Task.r', AUD)}")
        assert issuer.fetches == 1


class TestRefused:
    @pytest.mark.parametrize(
        ("claims", "why"),
        [
            ({"aud": "http://other.example/fhir"}, "aud"),
            ({"iss": "http://evil.example"}, "issuer"),
            ({"exp": int(time.time()) - 120}, "expired"),
            ({"exp": None}, "expired"),
            ({"nbf": int(time.time()) + 600}, "nbf"),
            ({"sub": None}, "subject"),
        ],
    )
    async def test_claims(self, issuer: TokenIssuer, claims: dict, why: str) -> None:
        error = await refused(
            verifier_for(issuer), f"Bearer {issuer.token('system/Task.r', AUD, claims=claims)}"
        )
        assert why in str(error)
        assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]

    async def test_small_clock_skew_is_allowed(self, issuer: TokenIssuer) -> None:
        token = issuer.token("system/Task.r", AUD, claims={"exp": int(time.time()) - 5})
        assert await verifier_for(issuer)(f"Bearer {token}") is not None

    async def test_bad_signature(self, issuer: TokenIssuer) -> None:
        other = jwk.ECKey.generate_key("P-384", private=True)  # signs, with the real kid
        token = issuer.token("system/Task.r", AUD, key=other)
        assert "signature" in str(await refused(verifier_for(issuer), f"Bearer {token}"))

    async def test_tampered_payload(self, issuer: TokenIssuer) -> None:
        head, body, sig = issuer.token("system/Task.r", AUD).split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        claims["scope"] = "system/*.cruds"
        forged = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
        await refused(verifier_for(issuer), f"Bearer {forged}")

    async def test_alg_none(self, issuer: TokenIssuer) -> None:
        good = issuer.token("system/*.cruds", AUD)
        _, body, _ = good.split(".")
        kid = issuer.keys[-1][1].kid
        head = _b64(json.dumps({"alg": "none", "kid": kid, "typ": "at+jwt"}).encode())
        error = await refused(verifier_for(issuer), f"Bearer {head}.{body}.")
        assert "alg" in str(error)
        await refused(verifier_for(issuer), f"Bearer {head}.{body}")

    async def test_hs256_with_the_public_key_as_secret(self, issuer: TokenIssuer) -> None:
        """The classic key-confusion forgery: an HMAC keyed with the published public key
        (as JWK JSON and as PEM), which a verifier trusting the header's alg would accept."""
        _, key = issuer.keys[-1]
        now = int(time.time())
        claims = {
            "iss": issuer.issuer,
            "sub": "x",
            "aud": AUD,
            "exp": now + 60,
            "scope": "system/*.cruds",
        }
        head = _b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "at+jwt"}).encode())
        body = _b64(json.dumps(claims).encode())
        for secret in (json.dumps(key.as_dict(private=False)).encode(), key.as_pem(private=False)):
            mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
            error = await refused(verifier_for(issuer), f"Bearer {head}.{body}.{_b64(mac)}")
            assert "alg" in str(error)

    async def test_unknown_kid(self, issuer: TokenIssuer) -> None:
        token = issuer.token("system/Task.r", AUD, header={"kid": "no-such-key"})
        assert "unknown key" in str(await refused(verifier_for(issuer), f"Bearer {token}"))

    async def test_not_an_access_token(self, issuer: TokenIssuer) -> None:
        token = issuer.token("system/Task.r", AUD, header={"typ": "JWT"})
        await refused(verifier_for(issuer), f"Bearer {token}")

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer garbage",
            "Bearer a.b.c",
            "Bearer ...",
            "Bearer",
            "Basic dXNlcjpwYXNz",
            "Bearer " + "x" * 20000,
            "Bearer \u00e9t\u00e9.x.y",
        ],
    )
    async def test_garbage(self, issuer: TokenIssuer, header: str) -> None:
        await refused(verifier_for(issuer), header)


class TestKeyRotation:
    async def test_an_unknown_kid_fetches_the_keys_again_once(self, issuer: TokenIssuer) -> None:
        """A rotated key is fetched when a token first names it; made-up kids fetch at most
        once per ``min_refetch`` seconds, never once per request."""
        keys = JwksCache(issuer.jwks_url, min_refetch=0.3)
        verifier = TokenVerifier(keys, issuer=issuer.issuer, audience=AUD)
        await verifier(f"Bearer {issuer.token('system/Task.r', AUD)}")
        issuer.rotate()
        await asyncio.sleep(0.35)
        assert await verifier(f"Bearer {issuer.token('system/Task.r', AUD)}") is not None
        assert issuer.fetches == 2
        for n in range(20):
            token = issuer.token("system/Task.r", AUD, header={"kid": f"made-up-{n}"})
            await refused(verifier, f"Bearer {token}")
        assert issuer.fetches <= 3

    async def test_keys_unreachable_is_503(self) -> None:
        cache = JwksCache("http://127.0.0.1:9/jwks", timeout=0.5)
        verifier = TokenVerifier(cache, issuer="http://127.0.0.1:9", audience=AUD)
        async with TokenIssuer() as issuer:
            token = issuer.token("system/Task.r", AUD)
        with pytest.raises(FhirError) as caught:
            await verifier(f"Bearer {token}")
        assert caught.value.status == 503
