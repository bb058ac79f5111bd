"""Full-text search (``_content``): the same words, and so the same answers, on both databases.

Words are normalised here, in Python, on both sides: lower-case, accents removed, split on
anything that is not a letter or digit, and a light English plural folding ("pantries" ->
"pantry", "shelters" -> "shelter"). The stored document is those words joined by spaces, so
each database only has to split on spaces: PostgreSQL with the ``simple`` text-search
configuration (no stemming or stop words of its own) over a GIN index, SQLite with FTS5's
``unicode61`` tokenizer. Every query word must match the start of a document word (``food
pan`` finds "Food Pantry"); the query is one bound string.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Boolean

from closedloop import errors
from closedloop.fhir.search.index.text import words

MAX_QUERY_WORDS = 16


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
