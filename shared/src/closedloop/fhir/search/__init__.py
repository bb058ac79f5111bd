"""FHIR search: parameter definitions and a compiled FHIRPath subset for indexing; parse
(``query``) -> plan (``predicates``/``ordering`` over the ``index`` kinds) -> SQL (``compiled``)
-> run (``engine``, ``execution``, ``includes``, narrowed by ``narrowing``) -> Bundle
(``searchset``)."""

# The package's public modules (nothing is re-exported here: import from the module).
__all__ = [
    "areas",
    "compiled",
    "definitions",
    "engine",
    "execution",
    "extract",
    "fhirpath",
    "geo",
    "includes",
    "index",
    "limits",
    "narrowing",
    "ordering",
    "paging",
    "predicates",
    "query",
    "searchset",
    "subsets",
    "syntax",
]
