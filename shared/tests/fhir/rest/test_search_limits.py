"""What a hostile or careless search may cost, through HTTP on both databases: the caps on
parameters and values, the time limit, cancellation when the client leaves, 64-bit numbers and
forged paging cursors. Each answer is an OperationOutcome, never a 500.

GET searches take the fast path (``rest/fast.py``); POST ``_search`` and a GET with ``_pretty``
take the routes: both are exercised.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import orjson
import pytest
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client, free_port, running_process

from .conftest import FHIR_JSON
from .slow_service import build

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TIME_LIMIT_MS = 1500


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(database_url=database_url, statement_timeout_ms=TIME_LIMIT_MS)
    async with app_client(build(settings)) as c:
        for gender, family in (("female", "Ada"), ("male", "Bo"), ("female", "Cy")):
            body = {"resourceType": "Patient", "gender": gender, "name": [{"family": family}]}
            r = await c.post(
                "/fhir/Patient", json={**body, "birthDate": "1990-01-01"}, headers=FHIR_JSON
            )
            assert r.status_code == 201, r.text
        yield c


async def search(client: httpx.AsyncClient, query: str, how: str) -> httpx.Response:
    """``GET`` (fast path), ``PRETTY`` (routes) or ``POST`` (routes) of ``Patient?query``."""
    if how == "POST":
        return await client.post("/fhir/Patient/_search", content=query, headers=FORM)
    suffix = "&_pretty=true" if how == "PRETTY" else ""
    return await client.get(f"/fhir/Patient?{query}{suffix}")


def outcome(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code, body
    return str(body["issue"][0]["diagnostics"])


HOW = ["GET", "PRETTY", "POST"]


# -- caps on parameters and values ----------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
async def test_too_many_values_are_refused(client: httpx.AsyncClient, how: str) -> None:
    many = ",".join(f"g{i}" for i in range(600))  # was a 500 on SQLite: expression too large
    text = outcome(await search(client, f"gender={many}", how), 400, "too-costly")
    assert "600 values" in text and "at most 400" in text
    split = "&".join(f"family=x{i},y{i}" for i in range(30)) + "&gender=" + ",".join(["a"] * 350)
    text = outcome(await search(client, split, how), 400, "too-costly")
    assert "at most 400" in text


@pytest.mark.parametrize("how", HOW)
async def test_too_many_parameters_are_refused(client: httpx.AsyncClient, how: str) -> None:
    # each repeated parameter is one more join to plan: 200 took PostgreSQL 12 s to plan
    query = "&".join(f"family=n{i}" for i in range(200))
    text = outcome(await search(client, query, how), 400, "too-costly")
    assert "200 parameters" in text and "at most 64" in text


@pytest.mark.parametrize(
    "param, value, expected",
    [
        ("gender", "female", {"Ada", "Cy"}),
        ("family", "Bo", {"Bo"}),
        ("birthdate", "1990-01-01", {"Ada", "Bo", "Cy"}),
        ("birthdate", "ge1990-01-01", {"Ada", "Bo", "Cy"}),
        ("general-practitioner", "Practitioner/p", set()),
        ("_id", "x", set()),
    ],
)
async def test_values_up_to_the_cap_work(
    client: httpx.AsyncClient, param: str, value: str, expected: set[str]
) -> None:
    others = [value if param == "birthdate" else f"{value}{i}" for i in range(398)]
    values = ",".join([value, *others])  # 399 values and _count: exactly the cap
    for how in ("GET", "POST"):
        r = await search(client, f"{param}={values}&_count=10", how)
        assert r.status_code == 200, r.text
        got = {e["resource"]["name"][0]["family"] for e in r.json().get("entry", [])}
        assert got == expected


# -- whole numbers beyond 64 bits -------------------------------------------------------------


HUGE = "9" * 30


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("query", [f"_count={HUGE}", "_count=%C2%B2", f"_count={'9' * 5000}"])
async def test_count_beyond_64_bits_is_400(client: httpx.AsyncClient, how: str, query: str) -> None:
    outcome(await search(client, query, how), 400, "invalid")


@pytest.mark.parametrize(
    "path",
    [
        f"Patient/_history?_before_seq={HUGE}",
        f"_history?_before_seq={HUGE}",
        f"Patient/_history?_count={HUGE}",
        "Patient/_history?_count=%C2%B2",
    ],
)
async def test_history_paging_beyond_64_bits_is_400(client: httpx.AsyncClient, path: str) -> None:
    outcome(await client.get(f"/fhir/{path}"), 400, "invalid")


async def test_vread_of_a_huge_version_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient?family=Ada")
    pid = r.json()["entry"][0]["resource"]["id"]
    outcome(await client.get(f"/fhir/Patient/{pid}/_history/{HUGE}"), 404, "not-found")


@pytest.mark.parametrize("etag", [f'W/"{HUGE}"'.encode(), b'W/"\xb2"'])
async def test_if_match_beyond_64_bits_or_not_ascii(client: httpx.AsyncClient, etag: bytes) -> None:
    r = await client.get("/fhir/Patient?family=Bo")
    patient = r.json()["entry"][0]["resource"]
    headers = {**FHIR_JSON, "If-Match": etag}
    r = await client.put(f"/fhir/Patient/{patient['id']}", json=patient, headers=headers)
    assert r.status_code in (400, 412), r.text
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("value", [HUGE, f"-{HUGE}", "1e400", f"gt{HUGE}", f"ap{HUGE}"])
async def test_huge_numbers_in_number_params_never_fail(
    client: httpx.AsyncClient, value: str
) -> None:
    for query in (
        f"/fhir/Observation?value-quantity={value}",
        f"/fhir/Observation?value-quantity={value}|u|kg",
    ):
        r = await client.get(query)
        assert r.status_code in (200, 400), r.text
        assert r.json()["resourceType"] in ("Bundle", "OperationOutcome")


# -- forged paging cursors --------------------------------------------------------------------


def cursor_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["_cursor"][0]


def forge(cursor: str, **changes: object) -> str:
    data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    text = json.dumps({**data, **changes})  # the stdlib's: orjson refuses ints beyond 64 bits
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def next_cursor(client: httpx.AsyncClient, query: str) -> str:
    r = await client.get(f"/fhir/Patient?{query}&_count=1")
    assert r.status_code == 200, r.text
    link = next(x["url"] for x in r.json()["link"] if x["relation"] == "next")
    return cursor_of(link)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("sort", ["", "_sort=-_lastUpdated", "_sort=birthdate", "_sort=family"])
async def test_forged_cursors_are_400(client: httpx.AsyncClient, how: str, sort: str) -> None:
    query = "&".join(p for p in ("gender=female,male", sort) if p)
    good = await next_cursor(client, query)
    key = orjson.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))["k"]
    forged = [
        good[: len(good) // 2],  # truncated
        "!!not-base64!!",
        base64.urlsafe_b64encode(b"\xff\xfe garbage").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        forge(good, d="sideways"),
        forge(good, k="abc"),
        forge(good, k=[]),
        forge(good, k=[*key, 1]),
        forge(good, k=[2**70] * len(key)),
        forge(good, k=[-(2**70)] * len(key)),
        forge(good, k=[{"a": 1}] * len(key)),
        forge(good, k=[[1]] * len(key)),
        forge(good, k=["abc"] * len(key)),
        forge(good, k=[1.5] * len(key)),
        forge(good, k=[True] * len(key)),
        forge(good, k=[None] * len(key)),
        forge(good, k=[*key[:-1], "pk"]),
        forge(good, s=123),
        forge(good, s="another"),
    ]
    if len(key) > 1:
        forged += [forge(good, k=["x", *key[1:]]), forge(good, k=[2**64, *key[1:]])]
    for cursor in forged:
        r = await search(client, f"{query}&_count=1&_cursor={cursor}", how)
        assert "CL-3420" in outcome(r, 400, "invalid"), cursor


@pytest.mark.parametrize("how", HOW)
async def test_a_cursor_of_another_search_is_400(client: httpx.AsyncClient, how: str) -> None:
    theirs = await next_cursor(client, "gender=female")
    r = await search(client, f"gender=male,other&_count=1&_cursor={theirs}", how)
    assert "another search" in outcome(r, 400, "invalid")
    # the same search with another page size or _total still pages on
    r = await search(client, f"gender=female&_count=5&_total=accurate&_cursor={theirs}", how)
    assert r.status_code == 200, r.text
    assert [e["resource"]["name"][0]["family"] for e in r.json()["entry"]] == ["Cy"]


# -- the time limit ---------------------------------------------------------------------------


async def busy_backends(database_url: str) -> int:
    """PostgreSQL backends of the test database still running a ``pg_sleep``."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def backends_settle(database_url: str, seconds: float) -> int:
    """``busy_backends`` once it is 0, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (busy := await busy_backends(database_url)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return busy


@pytest.mark.parametrize("how", HOW)
async def test_a_search_past_the_time_limit_is_stopped(
    client: httpx.AsyncClient, backend: str, database_url: str, how: str
) -> None:
    start = time.monotonic()
    r = await search(client, "slow=60", how)
    took = time.monotonic() - start
    text = outcome(r, 503, "too-costly")
    assert f"{TIME_LIMIT_MS} ms" in text
    assert took < TIME_LIMIT_MS / 1000 + 3, took
    if backend == "postgres":  # asyncpg's cancel request reaches PostgreSQL a moment later
        assert await backends_settle(database_url, 2.0) == 0
    else:  # the counting query ran on aiosqlite's thread: it must not go on burning a core
        cpu = time.process_time()
        await asyncio.sleep(1.5)
        assert time.process_time() - cpu < 0.5
    r = await search(client, "family=Ada", how)  # the service still answers
    assert r.status_code == 200, r.text


# -- a client that leaves -----------------------------------------------------------------------


def server_cpu_seconds(port: int) -> float:
    """CPU time (user + system) of the process serving ``port`` (a uvicorn started here)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"slow_service:create_app" not in cmdline or str(port).encode() not in cmdline:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise AssertionError(f"no server process on port {port}")


@pytest.fixture(scope="module")
async def served(database_url: str, client: httpx.AsyncClient) -> AsyncIterator[tuple[str, int]]:
    """The slow service in a real uvicorn process (a time limit far beyond the tests' waits)."""
    port = free_port()
    env = {"SLOWTEST_DATABASE_URL": database_url, "SLOWTEST_STATEMENT_TIMEOUT_MS": "120000"}
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "slow_service:create_app",
        "--app-dir",
        str(Path(__file__).parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    async with running_process(args, port, env, "slow_service") as base:
        yield base, port


@pytest.mark.parametrize("how", HOW)
async def test_a_search_stops_when_its_client_leaves(
    served: tuple[str, int], backend: str, database_url: str, how: str
) -> None:
    base, port = served
    async with httpx.AsyncClient(base_url=base, timeout=1.0) as gone:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up after a second
            await search(gone, "slow=60", how)
    if backend == "postgres":
        assert await backends_settle(database_url, 3.0) == 0, "PostgreSQL still runs the search"
    else:
        await asyncio.sleep(1)
        cpu = server_cpu_seconds(port)
        await asyncio.sleep(2)
        assert server_cpu_seconds(port) - cpu < 0.5, "SQLite still runs the search"
    async with httpx.AsyncClient(base_url=base, timeout=10) as still:
        r = await search(still, "family=Ada", how)
        assert r.status_code == 200, r.text
