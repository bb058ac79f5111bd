"""Rows for ``sp_text``: one document of normalised words per resource and parameter.

Words (``words``) are normalised in Python for both the document and the query, so both
databases see the same words: lower-case, accents removed, split on anything that is not a
letter or digit, and a light English plural folding ("pantries" -> "pantry").

The words come from every string the expression reaches, and from the ``text``/``display`` of
codings and concepts, so ``_content=pantry`` finds "Food Pantry" in a name or in a program.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from closedloop.fhir.search.index.string import normalize

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node

MAX_WORDS = 4000
_WORD = re.compile(r"[a-z0-9]+")


def _fold(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    return [_fold(w) for w in _WORD.findall(normalize(text))]


def _texts(value: object, out: list[str]) -> None:
    if type(value) is str:
        out.append(value)
    elif type(value) is list:
        for item in value:
            _texts(item, out)
    elif type(value) is dict:
        for key in ("text", "display", "name"):
            _texts(value.get(key), out)
        _texts(value.get("coding"), out)


def extract(nodes: list[Node]) -> list[dict[str, Any]]:
    texts: list[str] = []
    for value, _type in nodes:
        _texts(value, texts)
    found = list(dict.fromkeys(w for text in texts for w in words(text)))[:MAX_WORDS]
    return [{"document": " ".join(found)}] if found else []
