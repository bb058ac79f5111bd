"""Follow-up of stalled referrals on both databases, through the HTTP API with the requester's
and the CBO's own tokens, the sweep's clock set by the test (``create_app(clock=...)``):

- the stall boundary per category (a minute before the limit nothing, a minute after a
  follow-up Task on the requesting organization's worklist);
- escalation M days later (priority urgent, businessStatus escalated), once;
- two apps sweeping the same database at once make one follow-up and one escalation each;
- the CBO's answer completes the follow-up, a cancellation cancels it;
- who sees the worklist, who may sweep, and the notifications (outbox events) of each step.

Each test works in its own stretch of time, earlier than the previous test's, so the sweeps of
one never reach another's referrals (they are "not sent yet" at its clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from closedloop.fhir.instant import to_us
from closedloop.testing import TokenIssuer, app_client
from referral_api.app import create_app
from referral_api.outbox.tables import outbox_events
from referral_api.settings import Settings
from sqlalchemy import select

from .measures_data import AUD, SDOHCC, TASK_CODE, History, Writer, consent_for

SWEEP = "/fhir/Task/$sweep-stalled"
FOLLOW_UP = "urn:closedloop:CodeSystem:task-code|follow-up"
CBO = "Organization/cbo-1"
MINUTE = timedelta(minutes=1)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2020, 1, 1, tzinfo=UTC)

    def __call__(self) -> int:
        return to_us(self.at)


def settings_for(database_url: str, issuer: TokenIssuer) -> Settings:
    return Settings(
        database_url=database_url,
        event_sink_url="",
        directory_url="http://127.0.0.1:9/fhir",  # never asked: owners are local references
        measures_stall_days=7,
        measures_stall_days_by_category="food-insecurity=3,housing-instability=5",
        escalate_after_days=2,
        followup_sweep_seconds=0,
        **issuer.settings(AUD),
    )


class Env:
    def __init__(self, client: httpx.AsyncClient, writer: Writer, clock: Clock, app: Any):
        self.client, self.writer, self.clock, self.app = client, writer, clock, app
        self.era = 0

    def start(self) -> datetime:
        """A stretch of time of its own for the calling test (see the module docstring)."""
        self.era += 1
        return datetime(2026, 1, 1, tzinfo=UTC) - timedelta(days=60 * self.era)

    def admin(self) -> dict[str, str]:
        return self.writer.auth("admin", "Organization/ops")

    async def refer(self, requester: str, category: str, sent: datetime) -> str:
        h = History(CBO, requester, category, "es", None, None, None, [("requested", sent)])
        await self.writer.write(h)
        return h.task_id

    async def sweep(self, at: datetime, client: httpx.AsyncClient | None = None) -> dict[str, int]:
        self.clock.at = at
        r = await (client or self.client).post(SWEEP, headers=self.admin())
        assert r.status_code == 200, r.text
        return {p["name"]: p["valueInteger"] for p in r.json()["parameter"]}

    async def worklist(self, requester: str, **params: str) -> list[dict[str, Any]]:
        r = await self.client.get(
            "/fhir/Task",
            params={"code": "follow-up", "owner": requester, **params},
            headers=self.writer.auth("case-manager", requester),
        )
        assert r.status_code == 200, r.text
        return [e["resource"] for e in r.json().get("entry", [])]

    async def followups_of(self, referral: str) -> list[dict[str, Any]]:
        r = await self.client.get(
            "/fhir/Task", params={"code": FOLLOW_UP, "part-of": referral}, headers=self.admin()
        )
        assert r.status_code == 200, r.text
        return [e["resource"] for e in r.json().get("entry", [])]


@pytest.fixture(scope="module")
async def env(database_url: str, token_issuer: TokenIssuer) -> AsyncIterator[Env]:
    clock = Clock()
    app = create_app(settings_for(database_url, token_issuer), clock=clock)
    async with app_client(app) as client:
        yield Env(client, Writer(client, token_issuer), clock, app)


def business(task: dict[str, Any]) -> str:
    return str(task["businessStatus"]["coding"][0]["code"])


async def test_stalled_after_the_limit_of_its_category(env: Env) -> None:
    t0, req = env.start(), "Organization/req-boundary"
    food = await env.refer(req, "food-insecurity", t0)
    housing = await env.refer(req, "housing-instability", t0)
    other = await env.refer(req, "transportation-insecurity", t0)

    await env.sweep(t0 + timedelta(days=3) - MINUTE)
    assert await env.worklist(req) == []
    await env.sweep(t0 + timedelta(days=3) + MINUTE)
    [task] = await env.worklist(req, status="requested")
    assert task["focus"] == {"reference": f"Task/{food}"}
    assert task["partOf"] == [{"reference": f"Task/{food}"}]
    assert task["owner"] == {"reference": req}
    assert (task["status"], task["priority"], task["intent"]) == ("requested", "routine", "order")
    assert business(task) == "stalled"

    await env.sweep(t0 + timedelta(days=5) - MINUTE)
    assert len(await env.worklist(req)) == 1
    await env.sweep(t0 + timedelta(days=5) + MINUTE)
    assert {t["focus"]["reference"] for t in await env.worklist(req)} == {
        f"Task/{food}",
        f"Task/{housing}",
    }
    await env.sweep(t0 + timedelta(days=7) - MINUTE)
    assert len(await env.worklist(req)) == 2
    await env.sweep(t0 + timedelta(days=7) + MINUTE)
    assert len(await env.worklist(req)) == 3
    assert len(await env.followups_of(f"Task/{other}")) == 1
    # sweeping again makes nothing new
    assert (await env.sweep(t0 + timedelta(days=8)))["stalled"] == 0
    assert len(await env.worklist(req)) == 3


async def test_escalated_m_days_after_it_stalled(env: Env) -> None:
    t0, req = env.start(), "Organization/req-escalate"
    referral = await env.refer(req, "food-insecurity", t0)
    later = await env.refer(req, "food-insecurity", t0 + timedelta(days=1))
    stalled = t0 + timedelta(days=3)
    await env.sweep(stalled + MINUTE)
    [task] = await env.worklist(req)
    await env.sweep(stalled + timedelta(days=2) - MINUTE)
    assert await env.worklist(req, priority="urgent") == []
    result = await env.sweep(stalled + timedelta(days=2) + MINUTE)
    assert result["escalated"] >= 1
    [urgent] = await env.worklist(req, priority="urgent", status="requested")
    assert urgent["id"] == task["id"] and business(urgent) == "escalated"
    assert urgent["focus"] == {"reference": f"Task/{referral}"}
    # the worklist, urgent first: the later referral's follow-up is still routine
    listed = await env.worklist(req, status="requested", _sort="-priority")
    assert [t["focus"]["reference"] for t in listed] == [f"Task/{referral}", f"Task/{later}"]
    assert [t["priority"] for t in listed] == ["urgent", "routine"]
    version = urgent["meta"]["versionId"]
    await env.sweep(stalled + timedelta(days=6))
    again = {t["id"]: t for t in await env.worklist(req, **{"business-status": "escalated"})}
    assert again[task["id"]]["meta"]["versionId"] == version  # escalated once
    assert len(again) == 2  # the later one, at its own time


async def test_two_sweeping_apps_act_once(
    env: Env, database_url: str, token_issuer: TokenIssuer
) -> None:
    t0, req = env.start(), "Organization/req-replicas"
    referrals = [await env.refer(req, "food-insecurity", t0) for _ in range(12)]
    other = create_app(settings_for(database_url, token_issuer), clock=env.clock)
    async with app_client(other) as second:
        for at, key in (
            (t0 + timedelta(days=3, hours=1), "stalled"),
            (t0 + timedelta(days=6), "escalated"),
        ):
            env.clock.at = at
            one, two = await asyncio.gather(
                env.client.post(SWEEP, headers=env.admin()),
                second.post(SWEEP, headers=env.admin()),
            )
            assert one.status_code == two.status_code == 200, (one.text, two.text)
            counts = [
                {p["name"]: p["valueInteger"] for p in r.json()["parameter"]}[key]
                for r in (one, two)
            ]
            assert sum(counts) == len(referrals), counts
    for referral in referrals:
        [task] = await env.followups_of(f"Task/{referral}")
        assert task["priority"] == "urgent"
        assert task["meta"]["versionId"] == "2"  # created, escalated: nothing twice
    assert len(await env.worklist(req, priority="urgent")) == len(referrals)


async def test_the_answer_closes_the_follow_up(env: Env) -> None:
    t0, req = env.start(), "Organization/req-answer"
    accepted = await env.refer(req, "food-insecurity", t0)
    cancelled = await env.refer(req, "food-insecurity", t0)
    await env.sweep(t0 + timedelta(days=3) + MINUTE)
    assert len(await env.worklist(req, status="requested")) == 2

    cbo = env.writer.auth("cbo", CBO)
    task = (await env.client.get(f"/fhir/Task/{accepted}", headers=cbo)).json()
    r = await env.client.put(
        f"/fhir/Task/{accepted}", json={**task, "status": "accepted"}, headers=cbo
    )
    assert r.status_code == 200, r.text
    [done] = await env.followups_of(f"Task/{accepted}")
    assert (done["status"], business(done)) == ("completed", "answered")

    mine = env.writer.auth("requester", req)
    task = (await env.client.get(f"/fhir/Task/{cancelled}", headers=mine)).json()
    body = {**task, "status": "cancelled", "statusReason": {"text": "moved away"}}
    r = await env.client.put(f"/fhir/Task/{cancelled}", json=body, headers=mine)
    assert r.status_code == 200, r.text
    [ended] = await env.followups_of(f"Task/{cancelled}")
    assert (ended["status"], business(ended)) == ("cancelled", "ended")

    assert await env.worklist(req, status="requested") == []
    # nothing to escalate, nothing new
    result = await env.sweep(t0 + timedelta(days=20))
    assert len(await env.followups_of(f"Task/{accepted}")) == 1
    assert (await env.followups_of(f"Task/{accepted}"))[0]["status"] == "completed"
    assert result["stalled"] == 0


async def test_who_sees_and_sweeps_and_what_is_notified(env: Env) -> None:
    t0, req = env.start(), "Organization/req-access"
    referral = await env.refer(req, "food-insecurity", t0)
    await env.sweep(t0 + timedelta(days=3) + MINUTE)
    [task] = await env.worklist(req)
    # the CBO and another requesting organization do not see it
    for role, org in (("cbo", CBO), ("case-manager", "Organization/req-other")):
        headers = env.writer.auth(role, org)
        r = await env.client.get(f"/fhir/Task/{task['id']}", headers=headers)
        assert r.status_code == 404, (role, r.text)
        r = await env.client.get("/fhir/Task", params={"code": "follow-up"}, headers=headers)
        assert r.json()["total"] == 0 if "total" in r.json() else not r.json().get("entry")
    # only an admin (or our services) may sweep
    for role, org in (("cbo", CBO), ("case-manager", req)):
        r = await env.client.post(SWEEP, headers=env.writer.auth(role, org))
        assert r.status_code == 403, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
    # the follow-up's creation is an event for the notifier (the IG's Task topic)
    async with env.app.state.fhir.db.read() as conn:
        events = (
            await conn.execute(
                select(outbox_events.c.interaction).where(
                    outbox_events.c.resource_type == "Task",
                    outbox_events.c.resource_id == task["id"],
                )
            )
        ).all()
    assert [e[0] for e in events] == ["create"]
    assert task["focus"]["reference"] == f"Task/{referral}"


async def test_a_practitioner_roles_referral_goes_to_its_organization(env: Env) -> None:
    t0, org = env.start(), "Organization/req-role"
    admin, post = env.admin(), env.writer.post
    role = await post(
        {"resourceType": "PractitionerRole", "organization": {"reference": org}}, admin
    )
    requester = {"reference": f"PractitionerRole/{role['id']}"}
    patient = await post({"resourceType": "Patient"}, admin)
    consent = await post(consent_for(patient["id"]), admin)
    sr = await post(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]},
            "subject": {"reference": f"Patient/{patient['id']}"},
            "requester": requester,
            "supportingInfo": [{"reference": f"Consent/{consent['id']}"}],
        },
        admin,
    )
    sent = t0.strftime("%Y-%m-%dT%H:%M:%SZ")
    task = await post(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": TASK_CODE,
            "focus": {"reference": f"ServiceRequest/{sr['id']}"},
            "for": {"reference": f"Patient/{patient['id']}"},
            "authoredOn": sent,
            "lastModified": sent,
            "requester": requester,
            "owner": {"reference": CBO},
        },
        admin,
    )
    await env.sweep(t0 + timedelta(days=3) + MINUTE)
    [followup] = await env.worklist(org)  # read with the organization's case-manager token
    assert followup["owner"] == {"reference": org}
    assert followup["requester"] == requester
    assert followup["focus"] == {"reference": f"Task/{task['id']}"}
