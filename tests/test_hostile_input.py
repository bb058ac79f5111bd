"""Hostile input against all three services as real processes: no 5xx, ever.

Property-based (hypothesis): malformed and abusive searches, resource bodies, bundles, raw HTTP
and operation calls are sent to referral-api, directory-api and notifier over one keep-alive
connection per service, on SQLite and on PostgreSQL. Every answer must be below 500; every
error must be a FHIR OperationOutcome; and the connection must still serve the next request
(an error that resets it fails the following call). In CI the examples are derandomized, so a
run is repeatable; ``HOSTILE_RANDOM=1`` explores new ones and ``HOSTILE_EXAMPLES=N`` sets how
many per test.
"""

from __future__ import annotations

import json
import os
import string
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from closedloop.testing import admin_auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

FHIR_JSON = "application/fhir+json"

HOSTILE_SETTINGS = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "60")),
    deadline=None,
    derandomize=not os.environ.get("HOSTILE_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


class Service:
    """One running service: its keep-alive client and what its CapabilityStatement lists.
    (Not a dataclass: hypothesis prints a dataclass field by field in a failing example.)"""

    def __init__(
        self,
        name: str,
        client: httpx.Client,
        params: dict[str, list[dict[str, str]]],
        operations: list[tuple[str, str]],
    ) -> None:
        self.name = name
        self.client = client  # one keep-alive connection reused across calls
        self.params = params  # resource type -> search parameters listed
        self.operations = operations  # (type, or "" for system level; name)

    def __repr__(self) -> str:
        return f"Service({self.name})"


def _capabilities(client: httpx.Client) -> tuple[dict[str, list[dict[str, str]]], list[Any]]:
    cs = client.get("/fhir/metadata").json()
    params: dict[str, list[dict[str, str]]] = {}
    operations: list[tuple[str, str]] = []
    for res in cs["rest"][0]["resource"]:
        params[res["type"]] = res.get("searchParam", [])
        for op in res.get("operation", []):
            operations.append((res["type"], op["name"]))
    for op in cs["rest"][0].get("operation", []):
        operations.append(("", op["name"]))
    return params, operations


@pytest.fixture(scope="module")
def services(three_services: dict[str, str]) -> Iterator[list[Service]]:
    """The three services as real processes (tests/conftest.py), each with a client and what
    its CapabilityStatement says it serves."""
    with ExitStack() as stack:
        out = []
        for name, base in three_services.items():
            client = stack.enter_context(httpx.Client(base_url=base, timeout=30, auth=admin_auth()))
            params, operations = _capabilities(client)
            out.append(Service(name, client, params, operations))
        yield out


def _xml_outcome(response: httpx.Response) -> dict[str, object]:
    """An XML OperationOutcome (answers to clients that asked for XML) as much of its JSON
    form as ``check`` looks at."""
    if not response.headers.get("content-type", "").startswith("application/fhir+xml"):
        return {}
    root = etree.fromstring(response.content)
    return {
        "resourceType": etree.QName(root).localname,
        "issue": root.findall("{http://hl7.org/fhir}issue"),
    }


def check(service: Service, response: httpx.Response, what: str) -> None:
    """The contract for any answer to hostile input."""
    assert response.status_code < 500, (
        f"{service.name}: {what} -> {response.status_code} {response.text[:500]}"
    )
    if response.status_code >= 400 and response.content:
        try:
            body = response.json()
        except ValueError:
            body = _xml_outcome(response)
        assert body.get("resourceType") == "OperationOutcome", (
            f"{service.name}: {what} -> {response.status_code} not an OperationOutcome: "
            f"{response.text[:300]}"
        )
        assert body.get("issue"), f"{service.name}: {what}: OperationOutcome without issue"


def still_serves(service: Service) -> None:
    """The same keep-alive connection answers the next request."""
    r = service.client.get("/healthz")
    assert r.status_code == 200, f"{service.name}: connection no longer serves: {r.status_code}"


# ---- value strategies -----------------------------------------------------------------------

HUGE_INTS = st.sampled_from(
    [
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999999999",
        "1e309",
        "-0",
        "0x10",
        "1_000",
        "NaN",
        "Infinity",
        "1" * 400,
    ]
)
NASTY_TEXT = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "%00",
        "'; DROP TABLE resources; --",
        "\\",
        "\\,",
        "a\\|b",
        "|",
        "||",
        "|||",
        ",",
        ",,,,",
        "$",
        "*",
        "%",
        "_",
        "\ud7ff\ue000",
        "\u202e",
        "ﬀ",
        "😀" * 50,
        "x" * 5000,
        "urn:uuid:",
        "http://",
        "Patient/",
        "/",
        "..",
        "../../etc/passwd",
    ]
)
PREFIXED = st.builds(
    lambda p, v: p + v,
    st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz"]),
    st.one_of(
        HUGE_INTS,
        st.sampled_from(
            [
                "2026",
                "2026-13-45",
                "2026-02-30T25:61:61Z",
                "99999-01-01",
                "0000-01-01",
                "2026-01-01T00:00:00+99:00",
                "1|http://unitsofmeasure.org|kg",
                "1||",
                "-1.5e-400",
            ]
        ),
    ),
)
VALUE = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=60),
    NASTY_TEXT,
    HUGE_INTS,
    PREFIXED,
    st.lists(st.sampled_from(["a", "1", "\x00", "", "x|y", "Patient/1"]), max_size=30).map(
        ",".join
    ),
)
MODIFIER = st.sampled_from(
    [
        "",
        "",
        "",
        ":missing",
        ":exact",
        ":contains",
        ":not",
        ":text",
        ":in",
        ":not-in",
        ":below",
        ":above",
        ":identifier",
        ":of-type",
        ":Patient",
        ":bogus",
        ":",
        ".name",
        ":Organization.name",
    ]
)
CONTROL_PARAMS = st.sampled_from(
    [
        "_count",
        "_offset",
        "_sort",
        "_include",
        "_revinclude",
        "_include:iterate",
        "_summary",
        "_elements",
        "_total",
        "_id",
        "_lastUpdated",
        "_has:Task:focus:status",
        "_has:",
        "_has:Task",
        "_content",
        "_text",
        "_format",
        "_pretty",
        "_contained",
        "_since",
        "_at",
        "_cursor",
        "_page",
        "_getpages",
        "_list",
        "_type",
    ]
)


@st.composite
def search_query(draw: st.DrawFn, service: Service) -> tuple[str, list[tuple[str, str]]]:
    rtype = draw(st.sampled_from(sorted(service.params)))
    names = [p["name"] for p in service.params[rtype]]
    pairs = []
    for _ in range(draw(st.integers(1, 6))):
        if names and draw(st.booleans()):
            name = draw(st.sampled_from(names)) + draw(MODIFIER)
        else:
            name = draw(st.one_of(CONTROL_PARAMS, st.text(min_size=1, max_size=12)))
        pairs.append((name, draw(VALUE)))
    if draw(st.integers(0, 9)) == 0:  # a parameter repeated many times
        pairs.extend([pairs[0]] * draw(st.integers(50, 500)))
    return rtype, pairs


# ---- bodies ---------------------------------------------------------------------------------

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    NASTY_TEXT,
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=20,
)
FIELDS = [
    "id",
    "status",
    "intent",
    "meta",
    "text",
    "subject",
    "for",
    "owner",
    "focus",
    "code",
    "category",
    "extension",
    "identifier",
    "contained",
    "name",
    "active",
    "birthDate",
    "telecom",
    "address",
    "criteria",
    "channel",
    "position",
    "availableTime",
    "period",
    "input",
    "output",
    "basedOn",
    "partOf",
    "note",
    "authoredOn",
    "requester",
    "providedBy",
]


def dumps(value: Any) -> bytes:
    """JSON as a client would send it (the standard library: orjson stops at 255 levels)."""
    return json.dumps(value).encode()


def deep_extension(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        node = {"url": "http://example.org/nest", "extension": [node]}
    return node


@st.composite
def resource_body(draw: st.DrawFn, rtype: str) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:  # raw bytes that are not JSON, or JSON that is not an object
        return draw(
            st.one_of(
                st.binary(max_size=200),
                st.sampled_from([b"", b"null", b"[]", b"1", b'"x"', b"{", b'{"a":1,}', b"\xff"]),
            )
        )
    body: dict[str, Any] = {"resourceType": draw(st.sampled_from([rtype, rtype, "Bogus", ""]))}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        body[field] = draw(JSON_VALUE)
    if kind == 1:
        body["extension"] = [deep_extension(draw(st.integers(60, 400)))]
    if kind == 2:
        body["id"] = draw(st.one_of(NASTY_TEXT, st.text(min_size=60, max_size=80)))
    if kind == 3:
        body["meta"] = {"versionId": draw(HUGE_INTS), "lastUpdated": draw(PREFIXED)}
    return dumps(body)


@st.composite
def bundle_body(draw: st.DrawFn, service: Service) -> bytes:
    types = sorted(service.params)
    entries = []
    for i in range(draw(st.integers(0, 6))):
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "FOO"]))
        rtype = draw(st.sampled_from([*types, "Bogus"]))
        url = draw(
            st.sampled_from(
                [
                    rtype,
                    f"{rtype}/x",
                    f"{rtype}?_cursor=%%%",
                    f"{rtype}?_count=99999999999999999999",
                    f"{rtype}/{'x' * 80}",
                    f"{rtype}/x/_history/99999999999999999999",
                    "",
                    "/",
                    "metadata",
                    f"{rtype}?{'a=1&' * 50}",
                ]
            )
        )
        entry: dict[str, Any] = {"request": {"method": method, "url": url}}
        if draw(st.booleans()):
            entry["fullUrl"] = draw(
                st.sampled_from(["urn:uuid:1", "urn:uuid:1", f"urn:uuid:{i}", "x", "", "\x00"])
            )
        if method in ("POST", "PUT") and draw(st.booleans()):
            entry["resource"] = {
                "resourceType": rtype,
                "subject": {"reference": draw(st.sampled_from(["urn:uuid:1", "urn:uuid:404"]))},
                "extension": [deep_extension(150)] if draw(st.booleans()) else [],
                draw(st.sampled_from(FIELDS)): draw(JSON_VALUE),
            }
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "type": draw(st.sampled_from(["batch", "transaction", "collection", "searchset", "x"])),
        "entry": entries,
    }
    return dumps(bundle)


# ---- the tests ------------------------------------------------------------------------------


@HOSTILE_SETTINGS
@given(data=st.data())
def test_hostile_searches(services: list[Service], data: st.DataObject) -> None:
    for service in services:
        rtype, pairs = data.draw(search_query(service), label=service.name)
        method = data.draw(st.sampled_from(["GET", "GET", "POST"]))
        if len(urllib.parse.urlencode(pairs)) > 30_000:
            method = "POST"  # no client sends such a URL (httpx refuses to); a form body can
        if method == "GET":
            r = service.client.get(f"/fhir/{rtype}", params=pairs)
        else:
            r = service.client.post(
                f"/fhir/{rtype}/_search",
                content=urllib.parse.urlencode(pairs),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        check(service, r, f"{method} {rtype}?{urllib.parse.urlencode(pairs)[:300]}")
        still_serves(service)


@HOSTILE_SETTINGS
@given(data=st.data())
def test_hostile_bodies(services: list[Service], data: st.DataObject) -> None:
    for service in services:
        rtype = data.draw(st.sampled_from(sorted(service.params)))
        body = data.draw(resource_body(rtype))
        method = data.draw(st.sampled_from(["POST", "PUT", "PATCH"]))
        rid = data.draw(st.sampled_from(["x", "a" * 65, "%00", "..", "x y"]))
        url = f"/fhir/{rtype}" if method == "POST" else f"/fhir/{rtype}/{rid}"
        ctype = data.draw(
            st.sampled_from(
                [FHIR_JSON, "application/json", "text/plain", "application/fhir+xml", "", "*/*"]
            )
        )
        headers = {"Content-Type": ctype} if ctype else {}
        if data.draw(st.booleans()):
            headers[data.draw(st.sampled_from(["If-Match", "If-None-Exist", "If-None-Match"]))] = (
                data.draw(st.sampled_from(['W/"x"', 'W/"99999999999999999999"', "*", "W/", "a=b"]))
            )
        r = service.client.request(method, url, content=body, headers=headers)
        check(service, r, f"{method} {url} {body[:200]!r}")
        still_serves(service)


@HOSTILE_SETTINGS
@given(data=st.data())
def test_hostile_bundles(services: list[Service], data: st.DataObject) -> None:
    for service in services:
        body = data.draw(bundle_body(service))
        r = service.client.post("/fhir", content=body, headers={"Content-Type": FHIR_JSON})
        check(service, r, f"POST /fhir {body[:300]!r}")
        still_serves(service)


RAW_PATHS = st.sampled_from(
    [
        "/fhir/Task/x/_history/99999999999999999999",
        "/fhir/Task/x/_history/-1",
        "/fhir/Task/_history?_count=99999999999999999999",
        "/fhir/_history?_since=2026-99-99",
        "/fhir/Task?_cursor=AAAA",
        "/fhir/Task?_cursor=%FF%FE",
        "/fhir/Task/%00",
        "/fhir/Task/" + "y" * 100,
        "/fhir/%2e%2e/%2e%2e/etc/passwd",
        "/fhir/Subscription/x/$status",
        "/fhir/Subscription/x/$events?eventsSinceNumber=99999999999999999999",
        "/fhir/Subscription/$status?id=%00",
        "/fhir/HealthcareService?age=99999999999999999999",
        "/fhir/metadata?mode=%00",
        "/fhir/$validate",
        "/fhir/Task/$validate",
        "/fhir/Basic/x",
        "/fhir/Task?" + "status=requested&" * 300,
        "/fhir/Task?status=" + ",".join(["requested"] * 600),
        "/fhir/Patient?name=" + "x" * 20000,
    ]
)


@HOSTILE_SETTINGS
@given(data=st.data())
def test_hostile_raw_requests(services: list[Service], data: st.DataObject) -> None:
    for service in services:
        path = data.draw(RAW_PATHS)
        method = data.draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
        headers = {
            "Accept": data.draw(
                st.sampled_from(
                    [FHIR_JSON, "application/fhir+xml", "text/html", "*/*", "x/y;q=abc", ""]
                )
            ),
            "Prefer": data.draw(
                st.sampled_from(
                    ["", "return=minimal", "handling=strict", "respond-async", "return=bogus"]
                )
            ),
            "Content-Type": FHIR_JSON,
        }
        body = data.draw(st.sampled_from([b"", b"{}", b'{"resourceType":"Parameters"}', b"\x00"]))
        r = service.client.request(method, path, headers=headers, content=body)
        check(service, r, f"{method} {path[:200]}")
        still_serves(service)


@HOSTILE_SETTINGS
@given(data=st.data())
def test_hostile_operations(services: list[Service], data: st.DataObject) -> None:
    for service in services:
        if not service.operations:
            continue
        level, name = data.draw(st.sampled_from(service.operations))
        target = data.draw(st.sampled_from(["", "/x", "/" + "z" * 70]))
        path = f"/fhir/{level}{target if level else ''}/${name}".replace("//", "/")
        params = data.draw(
            st.lists(
                st.tuples(st.text(min_size=1, max_size=20), VALUE),
                max_size=4,
            )
        )
        if data.draw(st.booleans()):
            r = service.client.get(path, params=params)
        else:
            body = {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": k, data.draw(st.sampled_from(["valueString", "valueInteger"])): v}
                    for k, v in params
                ],
            }
            r = service.client.post(path, json=body, headers={"Content-Type": FHIR_JSON})
        check(service, r, f"{path} {params!r}"[:400])
        still_serves(service)


@HOSTILE_SETTINGS
@given(body=st.one_of(JSON_VALUE.map(dumps), st.binary(max_size=100)))
def test_hostile_events_are_refused_without_the_secret(
    services: list[Service], body: bytes
) -> None:
    """Forged events from anyone but referral-api never reach the notifier's subscribers."""
    notifier = next(s for s in services if s.name == "notifier")
    r = notifier.client.post("/events", content=body, headers={"Content-Type": "application/json"})
    check(notifier, r, f"POST /events {body[:200]!r}")
    assert r.status_code in (401, 403), r.text
    still_serves(notifier)
