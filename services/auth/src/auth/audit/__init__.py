"""The authorization server's audit trail: every token issued or refused (with why), every
sign-in, and every change an administrator makes from the CLI, in this service's own database
through the shared ``closedloop.audit`` tables and writer; admins search it as FHIR
AuditEvents at ``GET /fhir/AuditEvent``.

- ``decisions``: what is recorded, and from what (never a password, a client secret, an
  assertion, a code or a token: who, what, the outcome and a reason code);
- ``router``: the search, behind an admin access token checked as the resource servers check
  theirs.
"""

__all__ = ["decisions", "router"]
