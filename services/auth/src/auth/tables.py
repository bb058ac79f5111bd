"""The auth database: registered clients, the server's signing keys, and used assertion ids."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

clients = Table(
    "auth_clients",
    metadata,
    Column("client_id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("jwks", Text, nullable=True),  # inline public JWKS (JSON), or
    Column("jwks_url", Text, nullable=True),  # where the client publishes it
    Column("scopes", Text, nullable=False),  # space-separated SMART v2 system scopes
    Column("organization", Text, nullable=True),  # e.g. Organization/123
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

signing_keys = Table(
    "auth_signing_keys",
    metadata,
    Column("kid", String(100), primary_key=True),
    Column("alg", String(10), nullable=False),
    Column("private_jwk", Text, nullable=False),  # encrypted when AUTH_KEY_SECRET is set
    Column("public_jwk", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    # set when a newer key took over signing; published until its last tokens expired
    Column("retired_at", Float, nullable=True),
)

used_jtis = Table(
    "auth_used_jtis",
    metadata,
    Column("client_id", String(200), nullable=False),
    Column("jti", String(255), nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    PrimaryKeyConstraint("client_id", "jti"),
)
