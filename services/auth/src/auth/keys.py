"""The server's own signing keys: created, rotated, published, and loaded for signing.

Two kinds of key, each rotated on its own: access-token keys (RS384 or ES384, what SMART
resource servers accept) and the id_token key (RS256, what OpenID Connect clients accept
without configuration). The newest unretired key of a kind signs. ``rotate`` adds a new key
and retires the previous one of its kind; a
retired key stays published at ``/jwks`` until the last token it signed has expired (token
lifetime plus a minute of clock skew), then it is deleted. The private parts are encrypted
at rest when ``AUTH_KEY_SECRET`` is set, and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from closedloop.db import Database
from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwk
from sqlalchemy import delete, insert, select, update

from auth.tables import signing_keys

SKEW = 60.0  # seconds a resource server's clock may lag ours
_ENCRYPTED = "fernet:"
ACCESS_ALGS = ("RS384", "ES384")
ID_TOKEN_ALG = "RS256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: Any  # joserfc key with the private parts


def new_key(alg: str) -> jwk.Key:
    """A fresh key pair for ``alg`` (RS384, RS256: RSA 3072, ES384: P-384), its kid the
    thumbprint."""
    key: jwk.Key
    if alg in ("RS384", ID_TOKEN_ALG):
        key = jwk.RSAKey.generate_key(3072, private=True)
    elif alg == "ES384":
        key = jwk.ECKey.generate_key("P-384", private=True)
    else:
        raise ValueError(f"unsupported signing alg {alg}")
    key.ensure_kid()
    return key


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def _seal(private: dict[str, Any], secret: str | None) -> str:
    text = json.dumps(private)
    if secret is None:
        return text
    return _ENCRYPTED + _fernet(secret).encrypt(text.encode()).decode()


def _open(stored: str, secret: str | None) -> dict[str, Any]:
    if stored.startswith(_ENCRYPTED):
        if secret is None:
            raise RuntimeError("the signing keys are encrypted: set AUTH_KEY_SECRET")
        try:
            stored = _fernet(secret).decrypt(stored[len(_ENCRYPTED) :].encode()).decode()
        except InvalidToken:
            raise RuntimeError("AUTH_KEY_SECRET does not decrypt the signing keys") from None
    result: dict[str, Any] = json.loads(stored)
    return result


def _kind(alg: str) -> tuple[str, ...]:
    return (ID_TOKEN_ALG,) if alg == ID_TOKEN_ALG else ACCESS_ALGS


async def rotate(db: Database, alg: str, secret: str | None) -> str:
    """Add a new signing key and retire the current one of its kind; returns the new kid."""
    key = new_key(alg)
    now = time.time()
    public = {**key.as_dict(private=False), "alg": alg, "use": "sig"}
    async with db.write() as conn:
        await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.retired_at.is_(None), signing_keys.c.alg.in_(_kind(alg)))
            .values(retired_at=now)
        )
        await conn.execute(
            insert(signing_keys).values(
                kid=key.kid,
                alg=alg,
                private_jwk=_seal(key.as_dict(private=True), secret),
                public_jwk=json.dumps(public),
                created_at=now,
                retired_at=None,
            )
        )
    return str(key.kid)


async def ensure_key(db: Database, alg: str, secret: str | None) -> None:
    """A first key of each kind on a fresh database (``alg`` for access tokens)."""
    for wanted in (alg, ID_TOKEN_ALG):
        async with db.read() as conn:
            unretired = select(signing_keys.c.kid).where(
                signing_keys.c.retired_at.is_(None), signing_keys.c.alg.in_(_kind(wanted))
            )
            current = (await conn.execute(unretired)).first()
        if current is None:
            await rotate(db, wanted, secret)


async def current_key(db: Database, secret: str | None, alg: str | None = None) -> SigningKey:
    """The key signing access tokens, or with ``alg=ID_TOKEN_ALG`` the id_token key."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(signing_keys)
                .where(
                    signing_keys.c.retired_at.is_(None),
                    signing_keys.c.alg.in_(_kind(alg or ACCESS_ALGS[0])),
                )
                .order_by(signing_keys.c.created_at.desc())
            )
        ).first()
    if row is None:
        raise RuntimeError("no signing key: run `auth keys rotate`")
    return SigningKey(row.kid, row.alg, jwk.import_key(_open(row.private_jwk, secret)))


async def published_keys(db: Database, token_lifetime: int) -> list[dict[str, Any]]:
    """Public JWKs of the current key and of retired keys whose tokens may still be live;
    retired keys past that are deleted."""
    cutoff = time.time() - token_lifetime - SKEW
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(signing_keys.c.public_jwk, signing_keys.c.retired_at).order_by(
                    signing_keys.c.created_at.desc()
                )
            )
        ).all()
    if any(r.retired_at is not None and r.retired_at < cutoff for r in rows):
        async with db.write() as conn:
            await conn.execute(delete(signing_keys).where(signing_keys.c.retired_at < cutoff))
    live = [r for r in rows if r.retired_at is None or r.retired_at >= cutoff]
    return [json.loads(r.public_jwk) for r in live]
