"""The patient's voice on both databases, through the HTTP API: the published Questionnaire
(English and Spanish), QuestionnaireResponses checked against it (422) and tied to one
completed referral (422, 409), and the per-CBO aggregates with small cells hidden at the 10/11
boundary, a CBO seeing its own figures only and an admin every CBO's, as Parameters and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from closedloop.testing import TokenIssuer, app_client
from referral_api.app import create_app
from referral_api.settings import Settings
from referral_api.voice.aggregate import _suppress_item

from .measures_data import AUD, History, Writer

CANONICAL = "urn:closedloop:Questionnaire:patient-voice"
ANSWERS = "urn:closedloop:CodeSystem:patient-voice"
AGGREGATE = "/fhir/Questionnaire/patient-voice/$aggregate"
REQ = "Organization/req-voice"
CBO_A, CBO_B = "Organization/cbo-voice-a", "Organization/cbo-voice-b"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


class Env:
    def __init__(self, client: httpx.AsyncClient, writer: Writer) -> None:
        self.client, self.writer = client, writer

    def admin(self) -> dict[str, str]:
        return self.writer.auth("admin", "Organization/ops")

    async def referral(self, cbo: str, completed: bool = True) -> dict[str, Any]:
        moves = [("requested", T0)]
        if completed:
            moves += [
                ("accepted", T0 + timedelta(hours=1)),
                ("in-progress", T0 + timedelta(hours=2)),
                ("completed", T0 + timedelta(days=2)),
            ]
        h = History(cbo, REQ, "food-insecurity", "es", None, None, None, moves)
        await self.writer.write(h)
        r = await self.client.get(f"/fhir/Task/{h.task_id}", headers=self.admin())
        return dict(r.json())

    async def answer(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            "/fhir/QuestionnaireResponse", json=body, headers=self.writer.auth("requester", REQ)
        )

    async def aggregate(self, headers: dict[str, str], **params: str) -> httpx.Response:
        return await self.client.get(AGGREGATE, params=params, headers=headers)


def response(task: dict[str, Any], **answers: Any) -> dict[str, Any]:
    items = []
    for link_id, value in answers.items():
        if isinstance(value, bool):
            answer = {"valueBoolean": value}
        elif isinstance(value, str):
            answer = {"valueCoding": {"system": ANSWERS, "code": value}}
        else:
            answer = value
        items.append({"linkId": link_id.replace("_", "-"), "answer": [answer]})
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": CANONICAL,
        "basedOn": [{"reference": f"Task/{task['id']}"}],
        "subject": task["for"],
        "authored": "2025-03-05T10:00:00Z",
        "item": items,
    }


@pytest.fixture(scope="module")
async def env(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[Env]:
    settings = Settings(
        database_url=database_url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",
        followup_sweep_seconds=0,
        **token_issuer.settings(AUD),
    )
    async with app_client(create_app(settings)) as client:
        yield Env(client, Writer(client, token_issuer))


async def test_the_questionnaire_is_published_in_english_and_spanish(env: Env) -> None:
    r = await env.client.get(
        "/fhir/Questionnaire", params={"url": CANONICAL}, headers=env.writer.auth("cbo", CBO_A)
    )
    assert r.status_code == 200, r.text
    [entry] = r.json()["entry"]
    q = entry["resource"]
    assert [i["linkId"] for i in q["item"]] == [
        "help-received",
        "helpfulness",
        "respect",
        "language-access",
    ]
    spanish = q["item"][0]["_text"]["extension"][0]["extension"]
    assert {"url": "lang", "valueCode": "es"} in spanish
    r = await env.client.put(
        "/fhir/Questionnaire/patient-voice", json={**q, "title": "changed"}, headers=env.admin()
    )
    assert r.status_code in (403, 405), r.text  # the server's own


async def test_answers_are_checked_against_the_questionnaire(env: Env) -> None:
    task = await env.referral(CBO_A)
    bad = [
        response(task, help_received={"valueString": "yes"}),  # boolean item
        response(task, help_received=True, helpfulness="brilliant"),  # not an option
        response(task, help_received=True, mood="good"),  # no such item
        response(task, helpfulness="very-helpful"),  # required item missing
        {**response(task, help_received=True), "basedOn": []},  # about no referral
        response(task, help_received=True, respect={"valueBoolean": True}),  # choice item
    ]
    for body in bad:
        r = await env.answer(body)
        assert r.status_code == 422, (body["item"], r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    waiting = await env.referral(CBO_A, completed=False)
    r = await env.answer(response(waiting, help_received=True))
    assert r.status_code == 422 and "CL-6452" in r.text  # asked after completion only
    ok = response(task, help_received=True, helpfulness="very-helpful", respect="always")
    r = await env.answer(ok)
    assert r.status_code == 201, r.text
    r = await env.answer(ok)
    assert r.status_code == 409 and "CL-6454" in r.text  # one response per referral
    # an in-progress response may leave the required item for later
    other = await env.referral(CBO_A)
    r = await env.answer({**response(other, respect="always"), "status": "in-progress"})
    assert r.status_code == 201, r.text


def figures(body: dict[str, Any]) -> dict[str, dict[str, int | None]]:
    """{organization: {"responses" | "item=answer": count or None}} from the Parameters."""
    out: dict[str, dict[str, int | None]] = {}
    for p in body["parameter"]:
        if p["name"] != "organization":
            continue
        parts = p["part"]
        org = parts[0].get("valueReference", {}).get("reference") or parts[0]["valueString"]
        cells: dict[str, int | None] = {}
        for part in parts[1:]:
            sub = {x["name"]: x for x in part["part"]}
            n = sub["count"]["valueInteger"] if "count" in sub else None
            assert ("count" in sub) != ("suppressed" in sub)
            if part["name"] == "responses":
                cells["responses"] = n
            else:
                value = sub["value"]
                answer = (
                    str(value["valueBoolean"]).lower()
                    if "valueBoolean" in value
                    else value["valueCoding"]["code"]
                )
                cells[f"{sub['item']['valueString']}={answer}"] = n
        out[org] = cells
    return out


@pytest.fixture(scope="module")
async def answered(env: Env) -> Env:
    """CBO A: 11 counted responses (plus the one above); CBO B: 10."""
    for cbo, n in ((CBO_A, 10), (CBO_B, 10)):
        for _ in range(n):
            task = await env.referral(cbo)
            r = await env.answer(
                response(task, help_received=True, helpfulness="very-helpful", respect="always")
            )
            assert r.status_code == 201, r.text
    return env


async def test_small_cells_are_hidden_at_the_boundary(answered: Env) -> None:
    r = await answered.aggregate(answered.admin())
    assert r.status_code == 200, r.text
    got = figures(r.json())
    a, b = got[CBO_A], got[CBO_B]
    assert a["responses"] == 11  # 11 shown
    assert a["help-received=true"] == 11 and a["help-received=false"] == 0
    assert a["helpfulness=very-helpful"] == 11 and a["helpfulness=not-helpful"] == 0
    assert a["respect=always"] == 11
    assert a["language-access=yes"] == 0  # nobody answered it: zero reveals no one
    assert b["responses"] is None  # 10 hidden
    assert b["help-received=true"] is None and b["respect=always"] is None
    assert b["help-received=false"] == 0


async def test_a_cbo_sees_its_own_figures_only(answered: Env) -> None:
    mine = answered.writer.auth("cbo", CBO_B)
    r = await answered.aggregate(mine)
    assert r.status_code == 200, r.text
    assert set(figures(r.json())) == {CBO_B}
    r = await answered.aggregate(mine, organization=CBO_A)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    # an admin narrows to one CBO
    r = await answered.aggregate(answered.admin(), organization=CBO_A)
    assert set(figures(r.json())) == {CBO_A}
    # the requesting organization sees the CBOs it referred to
    r = await answered.aggregate(answered.writer.auth("case-manager", REQ))
    assert {CBO_A, CBO_B} <= set(figures(r.json()))
    # nobody else's responses are readable by the CBO one by one
    r = await answered.client.get("/fhir/QuestionnaireResponse", headers=mine)
    assert not r.json().get("entry")


async def test_csv_carries_the_same_figures(answered: Env) -> None:
    r = await answered.aggregate(answered.admin(), _format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    cell = {(x["organization"], x["item"], x["answer"]): x["count"] for x in rows}
    assert cell[(CBO_A, "responses", "")] == "11"
    assert cell[(CBO_B, "responses", "")] == ""
    assert cell[(CBO_A, "help-received", "true")] == "11"
    assert cell[(CBO_B, "help-received", "true")] == ""
    assert cell[(CBO_B, "help-received", "false")] == "0"


def test_one_hidden_answer_hides_the_next_smallest() -> None:
    # 3 hidden: subtracting 11 + 12 from the 26 responses would give it back
    assert _suppress_item({"a": 11, "b": 12, "c": 3}, 11) == {"a": None, "b": 12, "c": None}
    assert _suppress_item({"a": 11, "b": 0, "c": 3}, 11) == {"a": None, "b": 0, "c": None}
    assert _suppress_item({"a": 11, "b": 12}, 11) == {"a": 11, "b": 12}
    assert _suppress_item({"a": 10, "b": 0}, 11) == {"a": None, "b": 0}
