"""SMART scopes (App Launch 2.x, https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html)
turned into rules, and which scope letter each FHIR interaction needs.

A scope is ``<context>/<type>.<permissions>``: context ``system``, ``user`` or ``patient``;
type a resource type or ``*``; permissions the v2 letters ``c r u d s`` (in that order) or the
v1 words ``read`` (= ``rs``), ``write`` (= ``cud``) and ``*`` (= ``cruds``). Deny by default:

- ``system/`` and ``user/`` scopes grant their letters on their type (a user's organization
  will narrow what ``user/`` reaches; that narrowing is not built yet).
- ``patient/`` scopes grant nothing: they are limited to one patient's compartment, which this
  server cannot yet apply, so honouring them as ``system/`` would grant too much.
- A scope with a ``?param=value`` restriction grants nothing for the same reason.
- Anything else (``openid``, ``launch``, ``offline_access``, a malformed scope) is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

LETTERS = "cruds"
_SCOPE = re.compile(
    r"^(?P<context>system|user|patient)/(?P<type>\*|[A-Z][A-Za-z]{0,63})"
    r"\.(?P<perms>[cruds]+|read|write|\*)(?P<query>\?\S*)?$"
)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}

# the letter each interaction needs (SMART v2: r = read, vread, instance history; s = search,
# type and system history; u = update and patch)
INTERACTION_LETTER = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "search-system": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
AUTHENTICATED_ONLY = frozenset({"batch", "transaction"})
"""Interactions that need a valid token but no scope of their own: each entry of a batch or
transaction is judged by itself."""
PUBLIC = frozenset({"capabilities"})
"""Interactions anyone may ask for (the CapabilityStatement says how to authorize)."""


@dataclass(frozen=True)
class Scope:
    context: str  # system | user | patient
    resource_type: str  # a type or "*"
    letters: str  # a subset of "cruds", in that order
    query: str  # "" or "?param=value..."


def parse_scope(text: str) -> Scope | None:
    """The scope, or None when ``text`` is not a SMART resource scope."""
    m = _SCOPE.match(text)
    if m is None:
        return None
    perms = m["perms"]
    letters = _V1.get(perms, perms)
    if perms not in _V1 and letters != "".join(c for c in LETTERS if c in letters):
        return None  # v2 letters must come in order, each once ("rc", "rr" are malformed)
    return Scope(m["context"], m["type"], letters, m["query"] or "")


@dataclass(frozen=True)
class ScopeRules:
    """What a set of scopes grants: letters per resource type (``*`` for every type)."""

    grants: dict[str, frozenset[str]]

    def allows(self, resource_type: str, letter: str) -> bool:
        return letter in self.grants.get(resource_type, ()) or letter in self.grants.get("*", ())


def rules_from(scopes: Iterable[str]) -> ScopeRules:
    grants: dict[str, set[str]] = {}
    for text in scopes:
        scope = parse_scope(text)
        if scope is None or scope.context == "patient" or scope.query:
            continue
        grants.setdefault(scope.resource_type, set()).update(scope.letters)
    return ScopeRules({t: frozenset(letters) for t, letters in grants.items()})


@lru_cache(maxsize=1024)
def rules_for(scopes: frozenset[str]) -> ScopeRules:
    """``rules_from``, once per distinct set of scopes (a client sends the same set each time)."""
    return rules_from(scopes)


def needed_scope(resource_type: str, letter: str) -> str:
    """The scope to name in a refusal: the narrowest system scope that would allow it."""
    return f"system/{resource_type}.{letter}"
