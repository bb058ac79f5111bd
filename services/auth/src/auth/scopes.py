"""SMART v2 system scopes: what a backend client may be registered for, and which requested
scopes a registration covers (``system/Task.rs`` covers ``system/Task.r``; ``system/*.rs``
covers every type)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{0,63})\.(c?r?u?d?s?)(\?[^\s]+)?$")


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class SystemScope:
    resource_type: str  # a type, or "*"
    permissions: str  # letters of "cruds", in that order
    query: str  # "" or "?param=value&..."

    def covers(self, other: SystemScope) -> bool:
        return (
            self.resource_type in ("*", other.resource_type)
            and set(other.permissions) <= set(self.permissions)
            and self.query in ("", other.query)
        )


def parse_scope(text: str) -> SystemScope:
    m = _SCOPE.match(text)
    if not m or not m.group(2):
        raise ScopeError(
            f"{text!r} is not a SMART v2 system scope (system/Type.cruds, letters in that order)"
        )
    return SystemScope(m.group(1), m.group(2), m.group(3) or "")


def parse_scopes(text: str) -> list[str]:
    """Space-separated scopes, each checked, duplicates dropped (order kept)."""
    out: list[str] = []
    for item in text.split():
        parse_scope(item)
        if item not in out:
            out.append(item)
    return out


def granted_scopes(requested: str, registered: list[str]) -> tuple[list[str], list[str]]:
    """(granted, refused): a requested scope is granted when a registered one covers it."""
    allowed = [parse_scope(s) for s in registered]
    granted: list[str] = []
    refused: list[str] = []
    for item in requested.split():
        try:
            wanted = parse_scope(item)
        except ScopeError:
            refused.append(item)
            continue
        if any(a.covers(wanted) for a in allowed):
            if item not in granted:
                granted.append(item)
        else:
            refused.append(item)
    return granted, refused
