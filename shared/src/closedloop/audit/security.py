"""The vocabulary of security events: an authorization server's decisions (a token issued or
refused, a sign-in) and its administrators' changes (a client or user added or disabled, keys
rotated), kept in the same tables as the FHIR interactions and told apart by their subtype.

Such an event renders with a DICOM audit event type instead of ``rest``, its subtype from
``SUBTYPE_SYSTEM``, and its reason code (why a token was refused: ``bad_signature``,
``replayed_jti``...) as ``outcomeDesc``. The reason is kept as an entity row of type
``REASON`` (the tables have no column for it, and every service shares their shape); the
things an event is about that are not FHIR resources (an OAuth client, an account) are entity
rows of a lower-case type, rendered as identifiers rather than references.
"""

from __future__ import annotations

from typing import Any

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SUBTYPE_SYSTEM = "urn:closedloop:audit:security-event"
IDENTIFIER_SYSTEM = "urn:closedloop:auth:"  # + "client", "user", "external-subject"
REASON = "reason"  # the entity type that holds a decision's reason code

AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
ATTRIBUTES_CHANGED = {
    "system": DCM,
    "code": "110137",
    "display": "User Security Attributes Changed",
}
SECURITY_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}

# subtype -> the event type it renders with
SUBTYPES: dict[str, dict[str, str]] = {
    "client_credentials": AUTHENTICATION,
    "authorization_code": AUTHENTICATION,
    "refresh_token": AUTHENTICATION,
    "token": AUTHENTICATION,  # a token request whose grant type was missing or unknown
    "login": AUTHENTICATION,
    "external-login": AUTHENTICATION,
    "client-add": ATTRIBUTES_CHANGED,
    "client-disable": ATTRIBUTES_CHANGED,
    "user-add": ATTRIBUTES_CHANGED,
    "user-disable": ATTRIBUTES_CHANGED,
    "keys-rotate": SECURITY_ALERT,
}


def is_security(subtype: str) -> bool:
    return subtype in SUBTYPES


def entity(entity_type: str, entity_id: str) -> dict[str, Any]:
    """A FHIR type (``Practitioner``) is a reference; a lower-case one an identifier."""
    if entity_type[:1].isupper():
        return {"what": {"reference": f"{entity_type}/{entity_id}"}}
    return {"what": {"identifier": {"system": IDENTIFIER_SYSTEM + entity_type, "value": entity_id}}}
