"""Rows for ``sp_text`` and the full-text search (``_content``) over them: the same words, and
so the same answers, on both databases.

One document of normalised words per resource and parameter. Words (``words``) are normalised
in Python for both the document and the query: lower-case, accents removed, split on anything
that is not a letter or digit, and a light English plural folding ("pantries" -> "pantry").
The words come from every string the expression reaches, and from the ``text``/``display`` of
codings and concepts, so ``_content=pantry`` finds "Food Pantry" in a name or in a program.

The stored document is those words joined by spaces, so each database only has to split on
spaces: PostgreSQL with the ``simple`` text-search configuration (no stemming or stop words of
its own) over a GIN index, SQLite with FTS5's ``unicode61`` tokenizer. Every query word must
match the start of a document word (``food pan`` finds "Food Pantry"); the query is one bound
string.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Boolean

from closedloop import errors
from closedloop.fhir.search.index.kind import IndexKind
from closedloop.fhir.search.index.string import normalize
from closedloop.fhir.search.syntax import unescape

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node
    from closedloop.fhir.search.query import Criterion

MAX_WORDS = 4000
MAX_QUERY_WORDS = 16
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


def query_words(value: str) -> list[str]:
    found = list(dict.fromkeys(words(value)))
    if not found:
        raise errors.invalid(
            f"_content needs at least one word (letters or digits), not {value!r}",
            cl_code="CL-3460",
        )
    if len(found) > MAX_QUERY_WORDS:
        raise errors.invalid(f"_content takes at most {MAX_QUERY_WORDS} words", cl_code="CL-3461")
    return found


class _Matches(FunctionElement[bool]):
    """An ``sp_text`` row whose document holds a word starting with each query word. The query
    is written in the syntax of the database the statement compiles for and bound as one value
    (words are ``[a-z0-9]+`` only, so they cannot break either syntax). Not cached: the words
    live outside the clause's bound parameters."""

    type = Boolean()
    inherit_cache = False
    name = "cl_text_matches"

    def __init__(self, row_id: Any, document: Any, found: list[str]) -> None:
        self.found = found
        super().__init__(row_id, document)


@compiles(_Matches, "postgresql")
def _postgres(element: _Matches, compiler: Any, **kw: Any) -> str:
    _row_id, document = list(element.clauses)
    query = literal(" & ".join(f"{w}:*" for w in element.found))
    return (
        f"to_tsvector('simple'::regconfig, {compiler.process(document, **kw)}) @@ "
        f"to_tsquery('simple'::regconfig, {compiler.process(query, **kw)})"
    )


@compiles(_Matches, "sqlite")
def _sqlite(element: _Matches, compiler: Any, **kw: Any) -> str:
    row_id, _document = list(element.clauses)
    query = literal(" AND ".join(f'"{w}"*' for w in element.found))
    return (
        f"{compiler.process(row_id, **kw)} IN (SELECT rowid FROM sp_text_fts "
        f"WHERE sp_text_fts MATCH {compiler.process(query, **kw)})"
    )


def matches(t: Any, value: str) -> ColumnElement[bool]:
    """The condition on an ``sp_text`` alias ``t`` for one ``_content`` value."""
    return _Matches(t.c.id, t.c.document, query_words(value))


class TextIndex(IndexKind):
    name = "text"
    sortable = False
    extract = staticmethod(extract)

    def match(
        self, t: Any, value: str, modifier: str | None, c: Criterion, base_url: str
    ) -> ColumnElement[bool]:
        return matches(t, unescape(value))


KIND = TextIndex()
