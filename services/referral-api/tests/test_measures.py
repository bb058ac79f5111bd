"""Loop metrics on both databases: a year of synthetic referral histories (fixed seed) written
through the HTTP API, every figure of the MeasureReport checked against an independent Python
computation from the generated histories; CSV and SVG carry the same figures; each caller sees
only its own referrals; small cells are suppressed at the 10/11 boundary; the backfill rebuilds
the same projection from history."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from closedloop.testing import TokenIssuer, app_client, bearer
from fhir.resources.R4B.measurereport import MeasureReport
from referral_api.app import create_app
from referral_api.measures.backfill import backfill
from referral_api.measures.compute import Cell
from referral_api.measures.suppress import suppress_cell
from referral_api.settings import Settings

from .measures_data import (
    AUD,
    SCOPES,
    SDOHCC,
    TASK_CODE,
    History,
    Writer,
    consent_for,
    expected,
    from_report,
    generate,
)

SEED, COUNT = 20261204, 240
STALL = {"transportation-insecurity": 100_000}  # never stalled: the per-category override
EVALUATE = "/fhir/Measure/closed-loop/$evaluate-measure"
YEAR = {"periodStart": "2025-01-01", "periodEnd": "2025-12-31"}


class Loaded:
    def __init__(self, client: httpx.AsyncClient, writer: Writer, histories: list[History]):
        self.client, self.writer, self.histories = client, writer, histories

    def admin(self) -> dict[str, str]:
        return self.writer.auth("admin", "Organization/ops")

    async def report(self, headers: dict[str, str], **params: str) -> dict[str, Any]:
        r = await self.client.get(EVALUATE, params={**YEAR, **params}, headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
async def loaded(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[Loaded]:
    settings = Settings(
        database_url=database_url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",  # never asked: owners are local references
        measures_stall_days=30,
        measures_stall_days_by_category="transportation-insecurity=100000",
        **token_issuer.settings(AUD),
    )
    histories = generate(SEED, COUNT)
    async with app_client(create_app(settings)) as client:
        writer = Writer(client, token_issuer)
        for h in histories:
            await writer.write(h)
        yield Loaded(client, writer, histories)


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for name in want:
        assert set(got[name]) == set(want[name]), name
        for key, cell in want[name].items():
            g = got[name][key]
            assert g["counts"] == cell["counts"], (name, key)
            for label, a, b in [("rate", g["rate"], cell["rate"])] + [
                (t, g["times"][t], v) for t, v in cell["times"].items()
            ]:
                assert (a is None) == (b is None), (name, key, label, a, b)
                if a is not None:
                    assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-5), (name, key, label)


def now() -> datetime:
    return datetime.now(UTC)


async def test_every_figure_matches_an_independent_computation(loaded: Loaded) -> None:
    report = await loaded.report(loaded.admin())
    MeasureReport.model_validate(report)  # a valid R4 MeasureReport
    want = expected(loaded.histories, now(), STALL, 30)
    assert want["all"]["all"]["counts"]["sent"] == COUNT
    assert_same(from_report(report), want)
    masked = [
        s
        for g in report["group"]
        for st in g["stratifier"]
        for s in st["stratum"]
        if "extension" in s
    ]
    assert masked, "the generated year has small cells, and they are suppressed"


async def test_a_cbo_and_a_requester_see_their_own_only(loaded: Loaded) -> None:
    cbo = await loaded.report(loaded.writer.auth("cbo", "Organization/cbo-2"))
    mine = [h for h in loaded.histories if h.cbo == "Organization/cbo-2"]
    assert_same(from_report(cbo), expected(mine, now(), STALL, 30))
    assert cbo["reporter"] == {"reference": "Organization/cbo-2"}
    assert {s["value"]["text"] for s in cbo["group"][0]["stratifier"][0]["stratum"]} == {
        "Organization/cbo-2"
    }
    req = await loaded.report(loaded.writer.auth("clinician", "Organization/req-1"))
    ours = [h for h in loaded.histories if h.requester == "Organization/req-1"]
    assert_same(from_report(req), expected(ours, now(), STALL, 30))


async def test_callers_without_a_role_or_organization_are_refused(
    loaded: Loaded, token_issuer: TokenIssuer
) -> None:
    # such a token sees no resource at all (referral_api.access): the Measure is 404 to it;
    # at type level, the report refuses it (403)
    for token in (
        token_issuer.token(SCOPES, AUD, organization="Organization/cbo-1"),  # no role
        token_issuer.token(SCOPES, AUD, organization="Organization/x", role="patient"),
        token_issuer.token(SCOPES, AUD, role="cbo"),  # a CBO of no organization
    ):
        r = await loaded.client.get(EVALUATE, params=YEAR, headers=bearer(token))
        assert r.status_code == 404, r.text
        r = await loaded.client.get(
            "/fhir/Measure/$evaluate-measure",
            params={**YEAR, "measure": "urn:closedloop:Measure:closed-loop"},
            headers=bearer(token),
        )
        assert r.status_code == 403, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await loaded.client.get(EVALUATE, params=YEAR)
    assert r.status_code == 401


async def test_csv_and_svg_carry_the_same_figures(loaded: Loaded) -> None:
    admin = loaded.admin()
    report = from_report(await loaded.report(admin))
    r = await loaded.client.get(EVALUATE, params={**YEAR, "_format": "csv"}, headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == sum(len(cells) for cells in report.values())
    for row in rows:
        cell = report[row["stratifier"]][row["stratum"]]
        for name, count in cell["counts"].items():
            assert row[name] == ("" if count is None else str(count))
        median = cell["times"]["accept.median"]
        got = row["time_to_accept_median_hours"]
        assert (got == "") == (median is None)
        if median is not None:
            assert math.isclose(float(got), median, rel_tol=1e-5)
    r = await loaded.client.get(
        EVALUATE, params={**YEAR, "_format": "svg", "figure": "sent", "by": "cbo"}, headers=admin
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    svg = ElementTree.fromstring(r.text)
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    for cbo, cell in report["cbo"].items():
        assert cbo in texts and str(cell["counts"]["sent"]) in texts


async def test_bad_requests_are_operation_outcomes(loaded: Loaded) -> None:
    admin = loaded.admin()
    for params, status in (
        ({}, 400),
        ({"periodStart": "2025-01-01"}, 400),
        ({**YEAR, "periodStart": "yesterday"}, 400),
        ({"periodStart": "2025-02-01", "periodEnd": "2025-01-01"}, 400),
        ({**YEAR, "_format": "svg", "figure": "sent"}, 400),
        ({**YEAR, "_format": "svg", "figure": "<x>", "by": "cbo"}, 400),
        ({**YEAR, "_format": "pdf"}, 400),
        ({**YEAR, "subject": "Patient/1"}, 400),
        ({**YEAR, "reportType": "individual"}, 400),
    ):
        r = await loaded.client.get(EVALUATE, params=params, headers=admin)
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await loaded.client.get("/fhir/Measure/other/$evaluate-measure", params=YEAR, headers=admin)
    assert r.status_code == 404
    r = await loaded.client.get(
        "/fhir/Measure/$evaluate-measure",
        params={**YEAR, "measure": "urn:closedloop:Measure:closed-loop"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["resourceType"] == "MeasureReport"


async def test_the_measure_is_published_read_only(loaded: Loaded) -> None:
    admin = loaded.admin()
    r = await loaded.client.get("/fhir/Measure/closed-loop", headers=admin)
    assert r.status_code == 200 and r.json()["url"] == "urn:closedloop:Measure:closed-loop"
    r = await loaded.client.put("/fhir/Measure/closed-loop", json=r.json(), headers=admin)
    assert r.status_code == 405


async def test_backfill_rebuilds_the_same_figures(loaded: Loaded) -> None:
    admin = loaded.admin()
    before = await loaded.report(admin)
    app = loaded.client._transport.app  # type: ignore[attr-defined]
    async with app.state.fhir.db.read() as conn:
        rows = (await conn.exec_driver_sql("SELECT count(*) FROM referral_facts")).scalar()
    assert rows is not None and rows >= COUNT
    assert await backfill(app.state.fhir.db) == rows
    after = await loaded.report(admin)
    assert after["group"] == before["group"]


async def test_a_patients_new_language_moves_its_referrals(loaded: Loaded) -> None:
    h = loaded.histories[0]
    task = (await loaded.client.get(f"/fhir/Task/{h.task_id}", headers=loaded.admin())).json()
    pid = task["for"]["reference"].split("/")[1]
    headers = loaded.writer.auth("requester", h.requester)
    pat = (await loaded.client.get(f"/fhir/Patient/{pid}", headers=headers)).json()
    pat["communication"] = [{"language": {"coding": [{"code": "vi"}]}, "preferred": True}]
    r = await loaded.client.put(f"/fhir/Patient/{pid}", json=pat, headers=headers)
    assert r.status_code == 200, r.text
    app = loaded.client._transport.app  # type: ignore[attr-defined]
    async with app.state.fhir.db.read() as conn:
        row = (
            await conn.exec_driver_sql(
                f"SELECT language FROM referral_facts WHERE task_id = '{h.task_id}'"
            )
        ).first()
    assert row is not None and row[0] == "vi"
    pat["communication"] = [{"language": {"coding": [{"code": h.language}]}}] if h.language else []
    r = await loaded.client.put(f"/fhir/Patient/{pid}", json=pat, headers=headers)
    assert r.status_code == 200, r.text


def _cell(**counts: int) -> Cell:
    base = dict.fromkeys(("sent", "accepted", "declined", "completed", "cancelled"), 0)
    base.update({"stalled": 0, "responded": 0, **counts})
    times = {"accept.median": 3600.0, "accept.p90": 7200.0}
    return Cell(dict(base), base["completed"] / base["sent"] if base["sent"] else None, times)


@pytest.mark.parametrize("n", [10, 11])
def test_suppression_at_the_boundary(n: int) -> None:
    shown = n >= 11
    cell = suppress_cell(_cell(sent=40, accepted=n, completed=n, declined=0), 11)
    assert cell.counts["accepted"] == (n if shown else None)
    assert cell.counts["declined"] == 0  # a zero reveals no one
    assert (cell.rate is not None) == shown  # completed / sent would reveal the hidden count
    assert (cell.times["accept.median"] is not None) == shown
    small = suppress_cell(_cell(sent=n, accepted=n, completed=n), 11)
    assert (small.counts["sent"] is not None) == shown


async def test_suppression_boundary_through_the_api(loaded: Loaded) -> None:
    """11 referrals to one CBO and 10 to another in March 2024: one shows, one is hidden."""
    from datetime import timedelta

    base = datetime(2024, 3, 5, tzinfo=UTC)
    extra = []
    for i in range(21):
        h = History(
            "Organization/cbo-eleven" if i < 11 else "Organization/cbo-ten",
            "Organization/req-1",
            "food-insecurity",
            "en",
            None,
            None,
            "F",
            [("requested", base + timedelta(hours=i)), ("accepted", base + timedelta(hours=i + 2))],
        )
        await loaded.writer.write(h)
        extra.append(h)
    r = await loaded.client.get(
        EVALUATE,
        params={"periodStart": "2024-03-01", "periodEnd": "2024-03-31"},
        headers=loaded.admin(),
    )
    got = from_report(r.json())
    assert got["cbo"]["Organization/cbo-eleven"]["counts"]["sent"] == 11
    assert got["cbo"]["Organization/cbo-ten"]["counts"]["sent"] is None
    assert got["all"]["all"]["counts"]["accepted"] == 21
    assert got["all"]["all"]["times"]["accept.median"] == pytest.approx(2.0)
    assert_same(got, expected(extra, now(), STALL, 30))


async def test_the_readme_examples_answer(loaded: Loaded) -> None:
    readme = Path(__file__).parents[3] / "README.md"
    block = readme.read_text().split("<!-- loop-metrics -->", 1)[1].split("```", 2)[1]
    urls = re.findall(r"curl -s '?http://127\.0\.0\.1:8081(/fhir/[^'\s]+)", block)
    assert len(urls) == 4
    kinds = []
    for url in urls:
        r = await loaded.client.get(url, headers=loaded.admin())
        assert r.status_code == 200, (url, r.text)
        kinds.append(r.headers["content-type"].split(";")[0])
    assert kinds == ["application/fhir+json"] * 2 + ["text/csv", "image/svg+xml"]


async def test_backfill_command_rebuilds_a_lost_projection(tmp_path: Path) -> None:
    """A database whose Tasks predate the projection: `referral-api measures-backfill` fills
    it from the Tasks' history."""
    import asyncio
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/r.db"
    settings = Settings(
        database_url=url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",
        auth_enabled=False,  # explicit: this test is about the command, not about tokens
    )
    histories = generate(SEED, 12)
    app = create_app(settings)
    async with app_client(app) as client:
        writer = Writer(client, TokenIssuer())  # authorization off: the tokens are not read
        for h in histories:
            await writer.write(h)
        async with app.state.fhir.db.write() as conn:
            await conn.exec_driver_sql("DELETE FROM referral_facts")
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "referral_api.cli", "measures-backfill"],
        env={"REFERRAL_API_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "referral_facts: 12 referral Tasks" in out.stdout
    async with app_client(create_app(settings)) as client:
        r = await client.get(EVALUATE, params=YEAR)
        assert_same(from_report(r.json()), expected(histories, now(), {}, 7))


async def test_a_transaction_bundle_projects_with_its_own_patient_and_request(
    loaded: Loaded,
) -> None:
    """Patient, ServiceRequest and Task in one transaction: the Task's fact row reads the
    others inside the same unit of work (they are not committed yet)."""
    pat = "urn:uuid:5b0e2f4e-0000-4000-8000-000000000001"
    sr = "urn:uuid:5b0e2f4e-0000-4000-8000-000000000002"
    consent = "urn:uuid:5b0e2f4e-0000-4000-8000-000000000003"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": consent,
                "resource": {**consent_for("x"), "patient": {"reference": pat}},
                "request": {"method": "POST", "url": "Consent"},
            },
            {
                "fullUrl": pat,
                "resource": {
                    "resourceType": "Patient",
                    "gender": "female",
                    "communication": [{"language": {"coding": [{"code": "so"}]}}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": sr,
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "category": [{"coding": [{"system": SDOHCC, "code": "homelessness"}]}],
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
                    "subject": {"reference": pat},
                    "requester": {"reference": "Organization/req-1"},
                    "supportingInfo": [{"reference": consent}],
                },
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "code": TASK_CODE,
                    "focus": {"reference": sr},
                    "for": {"reference": pat},
                    "authoredOn": "2024-07-04T12:00:00Z",
                    "lastModified": "2024-07-04T12:00:00Z",
                    "requester": {"reference": "Organization/req-1"},
                    "owner": {"reference": "Organization/cbo-1"},
                },
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }
    headers = loaded.writer.auth("requester", "Organization/req-1")
    r = await loaded.client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    task_id = r.json()["entry"][3]["resource"]["id"]
    app = loaded.client._transport.app  # type: ignore[attr-defined]
    async with app.state.fhir.db.read() as conn:
        row = (
            await conn.exec_driver_sql(
                "SELECT category, language, sex, sent_month, owner_org FROM referral_facts "
                f"WHERE task_id = '{task_id}'"
            )
        ).first()
    assert tuple(row or ()) == ("homelessness", "so", "female", "2024-07", "Organization/cbo-1")


async def test_narrowed_to_one_cbo_and_requester(loaded: Loaded) -> None:
    """An admin asks for one CBO's referrals from one requester (the CBO by month, say); a
    CBO may narrow its own figures, never widen them to another CBO's."""
    got = await loaded.report(
        loaded.admin(), owner="Organization/cbo-3", requester="Organization/req-2"
    )
    both = [
        h
        for h in loaded.histories
        if h.cbo == "Organization/cbo-3" and h.requester == "Organization/req-2"
    ]
    assert_same(from_report(got), expected(both, now(), STALL, 30))
    cbo = loaded.writer.auth("cbo-staff", "Organization/cbo-3")
    mine = await loaded.report(cbo, owner="Organization/cbo-3", requester="Organization/req-2")
    assert mine["group"] == got["group"]
    r = await loaded.client.get(
        EVALUATE, params={**YEAR, "owner": "Organization/cbo-1"}, headers=cbo
    )
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
