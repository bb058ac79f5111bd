"""auth: the SMART authorization server: backend services (client_credentials grant with
private_key_jwt client assertions) and people (authorization code with PKCE, sign-in page,
id_token, refresh tokens, EHR launch); signed JWT access tokens for the FHIR services."""

__all__ = [
    "app",
    "authorize",
    "cli",
    "client_keys",
    "clients",
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
