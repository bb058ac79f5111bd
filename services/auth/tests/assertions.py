"""auth test helpers (loaded with closedloop.testing.load_script): client key pairs and client
assertions, good and hostile."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from joserfc import jwk, jwt

ISSUER = "http://127.0.0.1:8084"
TOKEN_URL = f"{ISSUER}/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_BASES = ["http://127.0.0.1:8081/fhir", "http://127.0.0.1:8082/fhir"]


def client_key(alg: str, kid: str | None = None) -> jwk.Key:
    key: jwk.Key
    if alg.startswith("RS"):
        key = jwk.RSAKey.generate_key(2048, private=True, parameters={"kid": kid} if kid else None)
    else:
        key = jwk.ECKey.generate_key(
            "P-384", private=True, parameters={"kid": kid} if kid else None
        )
    key.ensure_kid()
    return key


def public_jwks(*keys: jwk.Key) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def assertion(
    key: jwk.Key,
    client_id: str,
    *,
    alg: str | None = None,
    aud: str = TOKEN_URL,
    exp_in: float = 240,
    jti: str | None = None,
    kid: str | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    alg = alg or ("ES384" if key.key_type == "EC" else "RS384")
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": int(now + exp_in),
        "iat": now,
        "jti": jti or uuid.uuid4().hex,
        **(claims or {}),
    }
    header = {"alg": alg, "typ": "JWT", "kid": kid or key.kid}
    return jwt.encode(header, body, key, algorithms=[alg])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_assertion(client_id: str, kid: str) -> str:
    """alg=none: no signature at all."""
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}."


def hs256_with_public_key(key: jwk.Key, client_id: str) -> str:
    """The key-confusion attack: HMAC-signed with the client's *public* key as the secret."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    secret = key.as_pem(private=False)
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def token_form(client_assertion: str, scope: str = "system/Task.rs") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }


def verify(token: str, jwks: dict[str, Any]) -> jwt.Token:
    return jwt.decode(token, jwk.KeySet.import_key_set(jwks), algorithms=["RS384", "ES384"])
