"""The auth database: registered clients, the server's signing keys, used assertion ids, and
the people side: users, EHR launches, authorization codes, refresh tokens and sign-ins in
progress at an external issuer. The audit trail's tables are closedloop.audit's.

Migrations spell out their own tables (``migrations/versions``): this module is the current
shape the code reads and writes."""

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
    # apps people sign in to (revision 0002): their exact redirect URIs (JSON list), and
    # whether the app is public (no keys: PKCE is its only proof)
    Column("redirect_uris", Text, nullable=True),
    Column("public", Boolean, nullable=False, default=False),
    # revision 0003: the client's role (closedloop.auth.roles.CLIENT_ROLES), into its tokens
    Column("role", String(40), nullable=True),
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

# --- people: local accounts, and what their sign-ins leave behind (revision 0002) ---

users = Table(
    "auth_users",
    metadata,
    Column("user_id", String(64), primary_key=True),  # the tokens' sub: never reused
    Column("username", String(200), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id, the PHC string
    Column("organization", Text, nullable=False),  # e.g. Organization/123
    Column("role", String(40), nullable=False),  # clinician, case-manager, cbo-staff, admin
    Column("fhir_user", Text, nullable=True),  # e.g. Practitioner/123 (the fhirUser claim)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    # revision 0005: the subject (or e-mail) this user has at the trusted external OpenID
    # Connect issuer (AUTH_EXTERNAL_OIDC_*), when they sign in there
    Column("external_subject", String(255), nullable=True, unique=True),
)

# a sign-in sent to the external issuer, until it comes back (revision 0005): found by the
# hash of its state, bound to the browser that started it, single-use, short-lived
external_logins = Table(
    "auth_external_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("browser_hash", String(64), nullable=False),  # of the auth_external cookie
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),  # PKCE, toward the issuer
    Column("request", Text, nullable=False),  # JSON: the app's authorization parameters
    Column("expires_at", Float, nullable=False, index=True),
)

# an EHR's launch: an opaque id the EHR hands the app, naming the context (the patient) the
# app is launched in; only its hash is stored
launches = Table(
    "auth_launches",
    metadata,
    Column("launch_hash", String(64), primary_key=True),
    Column("context", Text, nullable=False),  # JSON: {"patient": "123", "encounter": ...}
    Column("created_by", String(200), nullable=False),  # the client or "cli"
    Column("expires_at", Float, nullable=False, index=True),
)

# authorization codes, by hash: single-use (used_at set once), short-lived
codes = Table(
    "auth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(200), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),  # S256 only
    Column("nonce", Text, nullable=True),
    Column("context", Text, nullable=False),  # JSON launch context for the token response
    Column("auth_time", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("used_at", Float, nullable=True),
)

# refresh tokens, by hash: each is used once and replaced by a new one of the same grant (the
# grant is the code they all descend from); a reused one revokes the whole grant
refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False, index=True),
    Column("client_id", String(200), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("expires_at", Float, nullable=False),  # the grant's: rotation does not extend it
    Column("used_at", Float, nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)
