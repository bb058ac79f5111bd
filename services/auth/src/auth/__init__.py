"""auth: the SMART authorization server: backend services (client_credentials grant with
private_key_jwt client assertions) and people (authorization code with PKCE, sign-in page,
id_token, refresh tokens, EHR launch; optionally at a trusted external OpenID Connect issuer);
signed JWT access tokens for the FHIR services; an audit trail of its decisions."""

__all__ = [
    "app",
    "audit",
    "authorize",
    "cli",
    "client_keys",
    "clients",
    "external",
    "grants",
    "jtis",
    "keys",
    "launches",
    "login_page",
    "scopes",
    "server",
    "settings",
    "tables",
    "throttle",
    "users",
]
