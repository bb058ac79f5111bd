"""``/metrics``: the request series by route template and status (never an id), the database
pool, on both databases; the trace id of a request's ``traceparent`` in its log lines."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from closedloop.logs import JsonFormatter
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client
from prometheus_client.parser import text_string_to_metric_families

MIGRATIONS = Path(__file__).parents[1] / "fhir" / "rest" / "migrations"
FHIR = {"Content-Type": "application/fhir+json"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def requests(found: dict, method: str, route: str, status: str) -> float:
    key = (
        "closedloop_http_requests_total",
        (("method", method), ("route", route), ("status", status)),
    )
    return found.get(key, 0.0)


async def test_requests_are_counted_by_route_template(database_url: str) -> None:
    settings = ServiceSettings(database_url=database_url)
    app = create_service_app(
        name="metrics-test", settings=settings, resource_types=["Patient"], migrations=MIGRATIONS
    )
    async with app_client(app) as client:
        created = await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR)
        assert created.status_code == 201
        pid = created.json()["id"]
        for _ in range(2):
            assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 200  # fast path
        assert (await client.get(f"/fhir/Patient/{pid}?_pretty=true")).status_code == 200
        assert (await client.get("/fhir/Patient/no-such-one")).status_code == 404
        assert (await client.get("/fhir/Patient?name=Zyxwvut")).status_code == 200
        assert (await client.get(f"/fhir/Patient/{pid}/_history/1")).status_code == 200
        assert (await client.get("/fhir/Invented/abc-123")).status_code == 404
        assert (await client.post("/fhir/Patient/$nonsense-op", json={})).status_code == 404
        assert (await client.get("/nowhere-at-all")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
        scraped = await client.get("/metrics")  # no token needed
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        text = scraped.text
    found = samples(text)
    assert requests(found, "POST", "/fhir/Patient", "201") == 1
    assert requests(found, "GET", "/fhir/Patient/{id}", "200") == 3
    assert requests(found, "GET", "/fhir/Patient/{id}", "404") == 1
    assert requests(found, "GET", "/fhir/Patient", "200") == 1
    assert requests(found, "GET", "/fhir/Patient/{id}/_history/{vid}", "200") == 1
    assert requests(found, "GET", "/fhir/{type}/{id}", "404") == 1
    assert requests(found, "POST", "/fhir/Patient/${operation}", "404") == 1
    assert requests(found, "GET", "(unmatched)", "404") == 1
    assert requests(found, "GET", "/healthz", "200") == 1
    duration = (
        "closedloop_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/fhir/Patient/{id}"), ("status", "200")),
    )
    assert found[duration] == 3
    # no id, no client's invention, no search value in any label
    for leak in (pid, "no-such-one", "Invented", "nonsense", "Zyxwvut", "nowhere"):
        assert leak not in text
    # the pool: its size and the connections in use (the audit trail's writer may hold one)
    size = found[("closedloop_db_pool_size", ())]
    assert size >= 1
    assert 0 <= found[("closedloop_db_pool_checked_out", ())] <= 1


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    settings = ServiceSettings(database_url=f"sqlite:///{tmp_path}/m.db", metrics_enabled=False)
    app = create_service_app(
        name="metrics-off", settings=settings, resource_types=["Patient"], migrations=MIGRATIONS
    )
    async with app_client(app) as client:
        assert (await client.get("/metrics")).status_code == 404


class Lines(logging.Handler):
    """Formats each record as it is emitted (inside the request's trace)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("trace-log"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


async def test_log_lines_carry_the_callers_trace_id(tmp_path: Path) -> None:
    settings = ServiceSettings(database_url=f"sqlite:///{tmp_path}/t.db")
    app = create_service_app(
        name="trace-log", settings=settings, resource_types=["Patient"], migrations=MIGRATIONS
    )
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    handler = Lines()
    access_log = logging.getLogger("closedloop.access")
    access_log.addHandler(handler)
    level = access_log.level
    access_log.setLevel(logging.INFO)
    try:
        async with app_client(app) as client:
            r = await client.get(
                "/fhir/Patient/none", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
            )
            assert r.status_code == 404
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)
    access = [line for line in handler.lines if line["msg"] == "request"]
    assert access[-1]["trace_id"] == trace_id
    assert len(access[-1]["span_id"]) == 16
