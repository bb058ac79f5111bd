"""Property tests: generated resources and generated searches, the engine's answer (over HTTP,
in process, on SQLite and PostgreSQL) against ``oracle.evaluate`` (the spec, in memory).

How it runs: pytest-asyncio drives ``@given``-decorated ``async def`` tests itself (it wraps
Hypothesis' inner test so each example runs on the session event loop), so the tests below are
plain async tests taking the module-scoped ``client``; ``st.data()`` lets an example draw its
queries after its population exists (queries pick values, and ids, from the data). Each example
posts its population in one transaction Bundle, every resource tagged ``urn:prop|<uuid>``, and
every query carries ``_tag=urn:prop|<uuid>``, so examples (and other modules) never see each
other's data. The example database is off (``database=None``): nothing is written to the tree.

What is generated:

- Patient: gender (male/female/other/unknown or none); birthDate at year, month or day precision
  (1989-1991, biased to month/year boundaries) or none; 1-2 HumanNames with family/given/prefix/
  text from ``a e n o s`` in mixed case with accents (á é ñ ö ...) plus the characters search
  must escape (``, | $ \\``) and SQL LIKE wildcards (``% _``); 1-2 identifiers, value from a
  tiny set (``x`` and ``X``, ``x,y``, ``x|y``, ...) with system ``urn:sys:a``/``urn:sys:b`` or
  none.
- Task: any Task.status; owner ``Organization/o1..o3``, ``Practitioner/o1`` (same id, other
  type), the server's own absolute URL, a foreign absolute URL, or none; authoredOn at year,
  month, day, second or sub-second precision with assorted offsets (2024-2025).
- Queries: 1-3 ANDed criteria, each with 1-2 ORed values: token (plain, ``:not``, ``:missing``,
  ``system|code``, ``code``, ``system|``, ``|code``), string (default, ``:exact``,
  ``:contains``, ``:missing``; values are prefixes/substrings of stored names with case and
  accents scrambled), date (every prefix but ``ap``, values at year ... sub-second precision,
  fresh or truncated from stored ones), reference (``Type/id``, bare id, ``:Type``, absolute,
  foreign, ``:missing``) and ``_id``; then ``_count`` paging forwards and backwards. Every
  query also asks ``_total=accurate``, which must equal the number of matches, and runs once
  more without it (a page-only search, the one the compiled-SQL cache serves).

Each answer must equal the oracle's exactly: the same ids in the same (creation) order. Where
the engine knowingly departs from the spec, the oracle is told so (``KNOWN_QUIRKS``) and a
strict xfail test at the end pins the departure on a minimal case.
"""

from __future__ import annotations

import calendar
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from . import oracle

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MIGRATIONS = Path(__file__).parent.parent / "rest" / "migrations"
SCOPE_SYSTEM = "urn:prop"

KNOWN_QUIRKS = frozenset(oracle.QUIRKS)
"""Engine/spec disagreements the property tests tolerate (each pinned by a strict xfail test at
the end of this module: when the engine is fixed, that test passes, fails as XPASS, and the
quirk should be removed here and in the oracle)."""

EXAMPLES = int(os.environ.get("SEARCH_PROPERTY_EXAMPLES", "40"))
"""Examples per property test; raise it for a deeper run (SEARCH_PROPERTY_EXAMPLES=1000)."""

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings_ = ServiceSettings(database_url=database_url)
    app = create_service_app(
        name="search-properties",
        settings=settings_,
        resource_types=["Patient", "Task", "Organization", "Practitioner"],
        migrations=MIGRATIONS,
    )
    async with app_client(app) as c:
        for rtype, rid in [
            ("Organization", "o1"),
            ("Organization", "o2"),
            ("Organization", "o3"),
            ("Practitioner", "o1"),
        ]:
            r = await c.put(
                f"/fhir/{rtype}/{rid}", json={"resourceType": rtype, "id": rid}, headers=FHIR_JSON
            )
            assert r.status_code in (200, 201), r.text
        yield c


# -- generated data ---------------------------------------------------------------------------

VARIANTS = {"a": "aAáÁ", "e": "eEéÉ", "n": "nNñÑ", "o": "oOöÖ", "s": "sS"}
BASE_LETTER = {v: base for base, vs in VARIANTS.items() for v in vs}
SPECIALS = ",|$\\%_"  # search escapes (, | $ \) and LIKE wildcards (% _)
GENDERS = ["male", "female", "other", "unknown"]
SYSTEMS = ["urn:sys:a", "urn:sys:b"]
ID_VALUES = ["1", "2", "x", "X", "x,y", "x|y", "x\\y", "x$y"]
TASK_STATUSES = [
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
]
OWNERS = [
    "Organization/o1",
    "Organization/o2",
    "Organization/o3",
    "Practitioner/o1",
    f"{oracle.BASE}/Organization/o2",
    "http://other.example/fhir/Organization/o1",
]
OFFSETS = ["Z", "+00:00", "+01:00", "-05:00", "+05:30", "+14:00"]
PRECISIONS = ("year", "month", "day", "minute", "second", "fraction")

name_text = st.lists(
    st.sampled_from(sorted(BASE_LETTER) * 2 + list(SPECIALS)), min_size=1, max_size=5
).map("".join)


@st.composite
def fhir_date(draw: st.DrawFn, years: list[int], precisions: tuple[str, ...]) -> str:
    """A date/dateTime at one of ``precisions``; a time always has an offset."""
    precision = draw(st.sampled_from(precisions))
    year = draw(st.sampled_from(years))
    text = f"{year:04d}"
    if precision == "year":
        return text
    month = draw(st.sampled_from([1, 12]) | st.integers(1, 12))
    text += f"-{month:02d}"
    if precision == "month":
        return text
    last = calendar.monthrange(year, month)[1]
    text += f"-{draw(st.sampled_from([1, 15, last]) | st.integers(1, last)):02d}"
    if precision == "day":
        return text
    hour = draw(st.sampled_from([0, 12, 23]) | st.integers(0, 23))
    text += f"T{hour:02d}:{draw(st.sampled_from([0, 30, 59])):02d}"
    if precision != "minute":
        text += f":{draw(st.sampled_from([0, 30, 59])):02d}"
        if precision == "fraction":
            text += "." + draw(st.sampled_from(["5", "25", "000", "123", "999999"]))
    return text + draw(st.sampled_from(OFFSETS))


human_name = st.fixed_dictionaries(
    {},
    optional={
        "family": name_text,
        "given": st.lists(name_text, min_size=1, max_size=2),
        "prefix": st.lists(name_text, min_size=1, max_size=1),
        "text": name_text,
    },
).map(lambda name: name or {"given": ["ana"]})

identifier = st.fixed_dictionaries(
    {"value": st.sampled_from(ID_VALUES)}, optional={"system": st.sampled_from(SYSTEMS)}
)

patient = st.fixed_dictionaries(
    {"resourceType": st.just("Patient")},
    optional={
        "gender": st.sampled_from(GENDERS),
        "birthDate": fhir_date([1989, 1990, 1991], PRECISIONS[:3]),
        "name": st.lists(human_name, min_size=1, max_size=2),
        "identifier": st.lists(identifier, min_size=1, max_size=2),
    },
)

task = st.fixed_dictionaries(
    {
        "resourceType": st.just("Task"),
        "status": st.sampled_from(TASK_STATUSES),
        "intent": st.just("order"),
    },
    optional={
        "owner": st.sampled_from(OWNERS).map(lambda ref: {"reference": ref}),
        "authoredOn": fhir_date([2024, 2025], ("year", "month", "day", "second", "fraction")),
    },
)

# -- generated queries ------------------------------------------------------------------------

Pair = tuple[str, str]
booleans = st.sampled_from(["true", "false"])


def joined(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """1-2 ORed values (raw values, escaped here as a client must)."""
    return st.lists(values, min_size=1, max_size=2, unique=True).map(
        lambda vs: ",".join(map(oracle.escape, vs))
    )


@st.composite
def scrambled(draw: st.DrawFn, text: str) -> str:
    """``text`` with case and accents changed letter by letter (equal under ``fold``)."""
    return "".join(
        draw(st.sampled_from(VARIANTS[BASE_LETTER[c]])) if c in BASE_LETTER else c for c in text
    )


@st.composite
def token_criterion(draw: st.DrawFn, code: str, value: st.SearchStrategy[str]) -> Pair:
    modifier = draw(st.sampled_from(["", ":not", ":missing"]))
    if modifier == ":missing":
        return f"{code}:missing", draw(booleans)
    return f"{code}{modifier}", draw(joined(value))


@st.composite
def identifier_criterion(draw: st.DrawFn) -> Pair:
    """identifier: ``system|value``, ``value``, ``system|`` or ``|value``, parts escaped."""
    modifier = draw(st.sampled_from(["", ":not", ":missing"]))
    if modifier == ":missing":
        return "identifier:missing", draw(booleans)
    system = st.sampled_from(SYSTEMS).map(oracle.escape)
    value = st.sampled_from(ID_VALUES).map(oracle.escape)
    one = st.one_of(
        st.builds(lambda s, v: f"{s}|{v}", system, value),
        value,
        system.map(lambda s: f"{s}|"),
        value.map(lambda v: f"|{v}"),
    )
    return f"identifier{modifier}", ",".join(draw(st.lists(one, min_size=1, max_size=2)))


@st.composite
def string_value(draw: st.DrawFn, stored: list[str], modifier: str) -> str:
    if not stored or draw(st.integers(0, 4)) == 0:
        return draw(name_text)
    text = draw(st.sampled_from(stored))
    if modifier == ":exact":
        return text if draw(st.integers(0, 3)) else draw(scrambled(text))
    start = draw(st.integers(0, len(text) - 1)) if modifier == ":contains" else 0
    end = draw(st.integers(start + 1, len(text)))
    return draw(scrambled(text[start:end]))


@st.composite
def string_criterion(draw: st.DrawFn, population: list[dict[str, Any]]) -> Pair:
    code = draw(st.sampled_from(["family", "given", "name"]))
    modifier = draw(st.sampled_from(["", ":exact", ":contains", ":missing"]))
    if modifier == ":missing":
        return f"{code}:missing", draw(booleans)
    param = oracle.PARAMS["Patient"][code]
    stored = sorted({s for r in population for s in param.values(r)})
    return f"{code}{modifier}", draw(joined(string_value(stored, modifier)))


@st.composite
def date_criterion(draw: st.DrawFn, code: str, stored: list[str], years: list[int]) -> Pair:
    if draw(st.integers(0, 9)) == 0:
        return f"{code}:missing", draw(booleans)
    fresh = fhir_date(years, PRECISIONS)
    if stored:
        # a stored value, cut to its year, month or day (or kept whole)
        cut = st.builds(
            lambda v, n: v[:n], st.sampled_from(stored), st.sampled_from([4, 7, 10, 99])
        )
        fresh = fresh | cut
    prefix = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
    return code, draw(joined(st.builds(str.__add__, prefix, fresh)))


def id_criterion(population: list[dict[str, Any]]) -> st.SearchStrategy[Pair]:
    ids = st.sampled_from([r["id"] for r in population] + ["no-such-id"])
    return st.tuples(st.sampled_from(["_id", "_id:not"]), joined(ids))


@st.composite
def owner_criterion(draw: st.DrawFn) -> Pair:
    form = draw(st.sampled_from(["", ":Organization", ":Practitioner", ":missing"]))
    if form == ":missing":
        return "owner:missing", draw(booleans)
    ids = st.sampled_from(["o1", "o2", "o3", "o9"])
    if form:
        return f"owner{form}", draw(joined(ids))
    value = st.one_of(
        ids,
        st.sampled_from(OWNERS),
        st.sampled_from([f"{oracle.BASE}/Organization/o1", f"{oracle.BASE}/Practitioner/o1"]),
    )
    return "owner", draw(joined(value))


def patient_criterion(population: list[dict[str, Any]]) -> st.SearchStrategy[Pair]:
    births = [r["birthDate"] for r in population if "birthDate" in r]
    return st.one_of(
        token_criterion("gender", st.sampled_from(GENDERS)),
        identifier_criterion(),
        string_criterion(population),
        date_criterion("birthdate", births, [1989, 1990, 1991]),
        id_criterion(population),
    )


def task_criterion(population: list[dict[str, Any]]) -> st.SearchStrategy[Pair]:
    authored = [r["authoredOn"] for r in population if "authoredOn" in r]
    return st.one_of(
        token_criterion("status", st.sampled_from(TASK_STATUSES)),
        owner_criterion(),
        date_criterion("authored-on", authored, [2024, 2025]),
        id_criterion(population),
    )


# -- running them -----------------------------------------------------------------------------


async def create(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store ``bodies`` (tagged with a fresh scope) in one transaction; the stored resources,
    in creation order."""
    tag = uuid.uuid4().hex
    entries = [
        {
            "resource": {**b, "meta": {"tag": [{"system": SCOPE_SYSTEM, "code": tag}]}},
            "request": {"method": "POST", "url": b["resourceType"]},
        }
        for b in bodies
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json()["entry"]]


def scope(population: list[dict[str, Any]]) -> Pair:
    return "_tag", f"{SCOPE_SYSTEM}|{population[0]['meta']['tag'][0]['code']}"


async def search(client: httpx.AsyncClient, url: str, pairs: list[Pair] | None = None) -> dict:
    r = await client.get(url, params=pairs)
    assert r.status_code == 200, f"{url} {pairs}: {r.status_code} {r.text}"
    return r.json()


def match_ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def link(bundle: dict, relation: str) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == relation), None)


def explain(
    population: list[dict[str, Any]], pairs: list[Pair], got: list[str], want: list[str]
) -> str:
    """The query and every resource the engine and the oracle disagree on."""
    query = "&".join(f"{n}={v}" for n, v in pairs)
    lines = [f"?{query}", f"  engine: {got}", f"  oracle: {want}"]
    for r in population:
        if (r["id"] in got) != (r["id"] in want) or got.count(r["id"]) > 1:
            body = {k: v for k, v in r.items() if k not in ("meta", "resourceType", "intent")}
            lines.append(f"  {'engine only' if r['id'] in got else 'oracle only'}: {body}")
    return "\n".join(lines)


async def check_queries(
    client: httpx.AsyncClient,
    rtype: str,
    population: list[dict[str, Any]],
    queries: list[list[Pair]],
) -> None:
    for query in queries:
        pairs = [scope(population), *query]
        want = oracle.evaluate(rtype, population, pairs, KNOWN_QUIRKS)
        bundle = await search(client, f"/fhir/{rtype}", [*pairs, ("_total", "accurate")])
        got = match_ids(bundle)
        assert got == want, explain(population, pairs, got, want)
        assert bundle["total"] == len(want)
        # without _total a search is one statement, from the SQL compiled for its shape
        # (closedloop.fhir.search.compiled) once the shape has been seen: the same answer
        got = match_ids(await search(client, f"/fhir/{rtype}", pairs))
        assert got == want, explain(population, pairs, got, want)
        for criterion in query:  # coverage, for --hypothesis-show-statistics
            alone = oracle.evaluate(rtype, population, [criterion], KNOWN_QUIRKS)
            share = "none" if not alone else "all" if len(alone) == len(population) else "some"
            event(f"{criterion[0]} alone matches {share}")


@PROPERTY_SETTINGS
@given(data=st.data())
async def test_patient_search_agrees_with_oracle(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    population = await create(client, data.draw(st.lists(patient, min_size=5, max_size=15)))
    criteria = st.lists(patient_criterion(population), min_size=1, max_size=3)
    await check_queries(
        client, "Patient", population, data.draw(st.lists(criteria, min_size=4, max_size=8))
    )


@PROPERTY_SETTINGS
@given(data=st.data())
async def test_task_search_agrees_with_oracle(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    population = await create(client, data.draw(st.lists(task, min_size=5, max_size=15)))
    criteria = st.lists(task_criterion(population), min_size=1, max_size=3)
    await check_queries(
        client, "Task", population, data.draw(st.lists(criteria, min_size=4, max_size=8))
    )


@settings(PROPERTY_SETTINGS, max_examples=max(1, EXAMPLES // 2))
@given(data=st.data())
async def test_paging_returns_every_match_once_in_order(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    """``_count`` pages, followed by their ``next`` links, concatenate to the whole answer (in
    the default order: creation); ``previous`` links from the last page give the same pages."""
    population = await create(client, data.draw(st.lists(patient, min_size=1, max_size=12)))
    query = [scope(population), *data.draw(st.lists(patient_criterion(population), max_size=1))]
    count = data.draw(st.integers(1, 4))
    want = oracle.evaluate("Patient", population, query, KNOWN_QUIRKS)

    pages: list[list[str]] = []
    bundle = await search(client, "/fhir/Patient", [*query, ("_count", str(count))])
    assert link(bundle, "previous") is None
    while True:
        pages.append(match_ids(bundle))
        assert len(pages[-1]) <= count
        url = link(bundle, "next")
        if url is None:
            break
        assert len(pages) <= len(want), "more pages than matches"
        bundle = await search(client, url)
    got = [i for page in pages for i in page]
    assert got == want, explain(population, query, got, want)
    assert all(len(page) == count for page in pages[:-1])
    assert pages[-1] or len(pages) == 1, "an empty last page behind a next link"

    back = [pages[-1]]
    while (url := link(bundle, "previous")) is not None:
        assert len(back) <= len(pages), "more pages backwards than forwards"
        bundle = await search(client, url)
        back.append(match_ids(bundle))
    assert back[::-1] == pages


# -- spec edge cases, and the one deliberate departure ------------------------------------------


@pytest.mark.parametrize("value", ["ge1990-12", "le1990-01"])
async def test_spec_ge_le_need_more_than_an_overlap(client: httpx.AsyncClient, value: str) -> None:
    """Born in 1990 (the whole year) is neither >= December 1990 nor <= January 1990 by the R4
    prefix table: the year reaches neither above December nor below January, and neither month
    contains it. (gt1990-11 and lt1990-02 do match.)"""
    population = await create(client, [{"resourceType": "Patient", "birthDate": "1990"}])
    pairs = [scope(population), ("birthdate", value)]
    assert oracle.evaluate("Patient", population, pairs) == []
    assert match_ids(await search(client, "/fhir/Patient", pairs)) == []


@pytest.mark.xfail(
    strict=True, raises=AssertionError, reason=oracle.QUIRKS["foreign-reference-by-id"]
)
@pytest.mark.parametrize(
    "pair",
    [
        ("owner", "o1"),
        ("owner", "Organization/o1"),
        ("owner:Organization", "o1"),
        ("owner", f"{oracle.BASE}/Organization/o1"),
    ],
)
async def test_spec_foreign_reference_is_not_a_local_one(
    client: httpx.AsyncClient, pair: Pair
) -> None:
    """A Task owned by http://other.example/fhir/Organization/o1 is not owned by this server's
    Organization/o1: relative and bare-id search values are resolved against the local base."""
    body = {
        "resourceType": "Task",
        "status": "draft",
        "intent": "order",
        "owner": {"reference": "http://other.example/fhir/Organization/o1"},
    }
    population = await create(client, [body])
    pairs = [scope(population), pair]
    assert oracle.evaluate("Task", population, pairs) == []
    assert match_ids(await search(client, "/fhir/Task", pairs)) == []


@pytest.mark.parametrize(
    ("pair", "stored"),
    [
        (("family", "a\\\\b"), "a\\b"),
        (("family:exact", "a\\|b"), "a|b"),
        (("identifier", "urn:sys:a|x\\|y"), "x|y"),
        (("identifier", "x\\$y"), "x$y"),
    ],
)
async def test_spec_search_values_unescape(
    client: httpx.AsyncClient, pair: Pair, stored: str
) -> None:
    """``\\\\``, ``\\|`` and ``\\$`` in a search value stand for ``\\``, ``|`` and ``$``
    (R4 search #escaping), like ``\\,`` does for ``,``."""
    body = {
        "resourceType": "Patient",
        "name": [{"family": stored}],
        "identifier": [{"system": "urn:sys:a", "value": stored}],
    }
    population = await create(client, [body])
    pairs = [scope(population), pair]
    want = [population[0]["id"]]
    assert oracle.evaluate("Patient", population, pairs) == want
    assert match_ids(await search(client, "/fhir/Patient", pairs)) == want
