"""SMART v2 scopes: what a client may be registered for, and which requested scopes a
registration covers (``system/Task.rs`` covers ``system/Task.r``; ``user/*.rs`` covers every
type for the signed-in user).

Backend clients hold only ``system/`` scopes. Apps people sign in to (clients with redirect
URIs) also hold ``user/`` and ``patient/`` scopes and the SMART/OpenID ones without a resource
type (``openid``, ``fhirUser``, ``launch``, ``launch/patient``, ``offline_access`` ...), which a
registration covers only by naming them exactly; so is ``system/launch``, the backend scope
that lets an EHR register launches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"^(system|user|patient)/(\*|[A-Z][A-Za-z]{0,63})\.(c?r?u?d?s?)(\?[^\s]+)?$")
# the scopes without a resource type a person's app may ask for
PEOPLE_ONLY = (
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
)
# a backend scope without a resource type: an EHR registering launches at POST /launch
LAUNCH_API = "system/launch"
SYSTEM = ("system",)
PEOPLE = ("system", "user", "patient")  # what an app people sign in to may register
PERSON = ("user", "patient")  # the resource scopes a person's token may hold


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class ResourceScope:
    context: str  # system, user or patient
    resource_type: str  # a type, or "*"
    permissions: str  # letters of "cruds", in that order
    query: str  # "" or "?param=value&..."

    def covers(self, other: ResourceScope) -> bool:
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and set(other.permissions) <= set(self.permissions)
            and self.query in ("", other.query)
        )


def parse_scope(text: str, contexts: tuple[str, ...] = SYSTEM) -> ResourceScope:
    m = _SCOPE.match(text)
    if not m or not m.group(3) or m.group(1) not in contexts:
        if contexts == SYSTEM:
            raise ScopeError(
                f"{text!r} is not a SMART v2 system scope (system/Type.cruds, letters in "
                "that order)"
            )
        raise ScopeError(
            f"{text!r} is not a SMART v2 scope (system|user|patient/Type.cruds, letters in "
            f"that order, or one of {' '.join(PEOPLE_ONLY)})"
        )
    return ResourceScope(m.group(1), m.group(2), m.group(3), m.group(4) or "")


def _check(item: str, people: bool) -> None:
    if item == LAUNCH_API or (people and item in PEOPLE_ONLY):
        return
    parse_scope(item, PEOPLE if people else SYSTEM)


def parse_scopes(text: str, *, people: bool = False) -> list[str]:
    """Space-separated scopes, each checked, duplicates dropped (order kept); ``people``
    allows the user/patient and sign-in scopes as well as system ones."""
    out: list[str] = []
    for item in text.split():
        _check(item, people)
        if item not in out:
            out.append(item)
    return out


def granted_scopes(
    requested: str, registered: list[str], contexts: tuple[str, ...] = PEOPLE
) -> tuple[list[str], list[str]]:
    """(granted, refused): a requested scope is granted when a registered one covers it and
    its context is one of ``contexts`` (the client_credentials grant passes ``SYSTEM``)."""
    allowed = [
        parse_scope(s, PEOPLE) for s in registered if s not in PEOPLE_ONLY and s != LAUNCH_API
    ]
    named = {s for s in registered if s in PEOPLE_ONLY or s == LAUNCH_API}
    granted: list[str] = []
    refused: list[str] = []
    for item in requested.split():
        if item in PEOPLE_ONLY:
            ok = contexts != SYSTEM and item in named
        elif item == LAUNCH_API:
            ok = "system" in contexts and item in named
        else:
            try:
                wanted = parse_scope(item, contexts)
            except ScopeError:
                refused.append(item)
                continue
            ok = any(a.covers(wanted) for a in allowed)
        if ok:
            if item not in granted:
                granted.append(item)
        else:
            refused.append(item)
    return granted, refused
