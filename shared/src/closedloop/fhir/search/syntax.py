"""The syntax of one search value: backslash escapes and comparison prefixes.

A leaf module (nothing of the search package below it) because both the query parser and the
index kinds, which sit beneath the parser, read values the same way.
"""

from __future__ import annotations

import re

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_ESCAPE = re.compile(r"\\([\\,|$])")


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split at each ``sep`` not escaped with a backslash; parts keep their escapes."""
    if "\\" not in value:
        return value.split(sep)
    parts, current, i = [], "", 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current += value[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    return parts


def unescape(value: str) -> str:
    """Undo the search escapes ``\\,`` ``\\|`` ``\\$`` ``\\\\`` (after splitting on them)."""
    return _ESCAPE.sub(r"\1", value) if "\\" in value else value


def split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2:3].isalpha():
        return value[:2], value[2:]
    return "eq", value
