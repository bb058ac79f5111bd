"""The roles a token may carry (its ``role`` claim), as the SDOH Clinical Care IG's actors.

A person's role comes from their account (``auth users add --role``); a backend client's from
its registration (``auth clients add --role``). Policy reads the groups, never the names:

- requesters (a clinic, its clinicians and case managers, an EHR acting for it) see what
  their Organization requested;
- CBOs (a CBO's staff, a CBO platform) see the Tasks their Organization owns and what those
  Tasks reference, and change only their progress;
- ``admin`` sees everything; ``service`` is one of Closed Loop's own services calling another
  (referral-api checking targets in directory-api, the notifier reading a patient's language):
  not narrowed to an organization, limited by its scopes.
"""

from __future__ import annotations

__all__ = [
    "ADMIN",
    "CBO_ROLES",
    "CLIENT_ROLES",
    "REQUESTER_ROLES",
    "SERVICE",
    "UNRESTRICTED_ROLES",
    "USER_ROLES",
]

ADMIN = "admin"
SERVICE = "service"
USER_ROLES = ("clinician", "case-manager", "cbo-staff", "admin")
CLIENT_ROLES = ("requester", "cbo", "service", "admin")
REQUESTER_ROLES = frozenset({"clinician", "case-manager", "requester"})
CBO_ROLES = frozenset({"cbo-staff", "cbo"})
UNRESTRICTED_ROLES = frozenset({ADMIN, SERVICE})
