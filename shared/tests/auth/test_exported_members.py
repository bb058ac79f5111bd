"""closedloop.auth's public API is what ``__all__`` says, and everything in it exists."""

from __future__ import annotations

import closedloop.auth as auth


def test_public_api() -> None:
    assert sorted(auth.__all__) == [
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
    for name in auth.__all__:
        assert hasattr(auth, name), name
