"""Authorization for the FHIR services (resource-server side): bearer tokens verified against
the authorization server's JWKS (``tokens``, ``jwks``), SMART scopes turned into rules
(``scopes``), and the policy that enforces them on the hook points (``policy``). Storage never
imports this package: ``install`` registers the policy on the hooks and hands back the
``Authenticator`` the REST layer uses to read a request's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from closedloop.auth import discovery
from closedloop.auth.discovery import capability_security
from closedloop.auth.jwks import JwksCache
from closedloop.auth.policy import ScopePolicy
from closedloop.auth.scopes import ScopeRules, parse_scope, rules_from
from closedloop.auth.tokens import TokenVerifier
from closedloop.hooks import Hooks


@dataclass(frozen=True)
class AuthConfig:
    """Where the authorization server is, and what tokens for this server look like."""

    issuer: str  # the tokens' iss (the authorization server's base URL)
    audience: str  # what the tokens' aud must contain: this server's FHIR base
    jwks_url: str  # the authorization server's public keys
    token_url: str  # its token endpoint (for discovery)
    jwks_cache_seconds: float = 300.0
    jwks_timeout: float = 5.0
    leeway_seconds: float = 30.0


def install(hooks: Hooks, served_types: list[str], config: AuthConfig) -> ScopePolicy:
    """Register the scope policy on ``hooks`` (before other listeners, so nothing else runs
    for a refused request)."""
    policy = ScopePolicy(config.audience, served_types)
    policy.install(hooks)
    return policy


def smart_configuration(config: AuthConfig) -> dict[str, Any]:
    """The SMART configuration a FHIR base serves, pointing to the authorization server."""
    return discovery.smart_configuration(config.issuer, config.token_url, config.jwks_url)


def token_verifier(config: AuthConfig) -> TokenVerifier:
    """The ``Authenticator`` the REST layer turns bearer tokens into callers with."""
    keys = JwksCache(config.jwks_url, ttl=config.jwks_cache_seconds, timeout=config.jwks_timeout)
    return TokenVerifier(
        keys, issuer=config.issuer, audience=config.audience, leeway=config.leeway_seconds
    )


__all__ = [
    "AuthConfig",
    "JwksCache",
    "ScopePolicy",
    "ScopeRules",
    "TokenVerifier",
    "capability_security",
    "install",
    "parse_scope",
    "rules_from",
    "smart_configuration",
    "token_verifier",
]
