"""Signing people in at a trusted external OpenID Connect issuer (``AUTH_EXTERNAL_OIDC_*``):
this server is then a relying party of that issuer, and after the person comes back it goes
on with the SMART authorization it was in the middle of, issuing its own code and tokens.

- ``provider``: the issuer: discovery, the authorization URL, the code exchange, and the
  id_token's checks (signature against the issuer's JWKS, ``iss``, ``aud``/``azp``, ``exp``,
  ``nonce``);
- ``login``: ``POST /authorize/external`` (off to the issuer, with state, nonce and PKCE S256)
  and ``GET /authorize/external/callback`` (back: the id_token's subject mapped to a local
  account, which carries the organization and role).
"""

__all__ = ["login", "provider"]
