"""auth: the SMART Backend Services authorization server (client_credentials grant with
private_key_jwt client assertions; signed JWT access tokens for the FHIR services)."""

__all__ = [
    "app",
    "cli",
    "client_keys",
    "clients",
    "jtis",
    "keys",
    "scopes",
    "server",
    "settings",
    "tables",
]
