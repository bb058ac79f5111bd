"""Property test: random sequences of Task writes through HTTP (both databases) never answer
5xx, and every Task's stored history is a legal run of the state machine.

Each example works on two fresh Task ids. A step writes one of them: create it (POST with
If-None-Exist, or PUT), move it to a status (PUT, JSON Patch, or a PUT inside a transaction or
batch Bundle), sometimes turning it into a plain (non-referral) Task, or delete it (by id or
conditionally). Whatever the server answers (but 5xx), the histories it keeps must read, per
the IG diagram written out below independently of ``workflow.task_states``:

- the first version is a referral Task in ``draft`` or ``requested`` (or a plain Task);
- each next version follows an allowed move (or keeps its status, or enters entered-in-error
  from a non-final status) and keeps its kind;
- a deletion follows only a ``draft`` referral Task and nothing follows a deletion.

``TASK_PROPERTY_EXAMPLES`` sets the examples per database (default 50, a few seconds). There
is no shrinking (see the settings): a failure shows its draws and the offending history.
"""

from __future__ import annotations

import base64
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from closedloop.testing import app_client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from referral_api.app import create_app
from referral_api.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
IDS = "urn:test:task-property"
FULFILL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
PLAIN = {"text": "file the paperwork"}

STATUSES = [
    "draft",
    "requested",
    "accepted",
    "rejected",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
]
# The SDOHCC referral Task diagram (IG ReferralTaskStateDiagram), plus any -> entered-in-error.
MOVES = {
    ("draft", "requested"),
    ("requested", "accepted"),
    ("requested", "rejected"),
    ("requested", "cancelled"),
    ("accepted", "in-progress"),
    ("accepted", "on-hold"),
    ("accepted", "cancelled"),
    ("accepted", "completed"),
    ("accepted", "failed"),
    ("in-progress", "on-hold"),
    ("in-progress", "completed"),
    ("in-progress", "failed"),
    ("in-progress", "cancelled"),
    ("on-hold", "in-progress"),
    ("on-hold", "cancelled"),
    ("on-hold", "completed"),
    ("on-hold", "failed"),
}
STARTS = {"draft", "requested"}
DELETABLE = {"draft"}

EXAMPLES = int(os.environ.get("TASK_PROPERTY_EXAMPLES", "50"))


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(database_url=database_url, event_sink_url=""))) as c:
        yield c


def body(task_id: str, status: str, plain: bool) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "identifier": [{"system": IDS, "value": task_id}],
        "status": status,
        "statusReason": {"text": "a reason, for the statuses that need one"},
        "intent": "order",
        "code": PLAIN if plain else FULFILL,
        "focus": {"reference": "ServiceRequest/not-stored-here"},
        "for": {"reference": "Patient/p1"},
        "authoredOn": "2026-11-20T10:00:00Z",
        "requester": {"reference": "Organization/clinic"},
    }


def bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


async def write(
    client: httpx.AsyncClient, how: str, task_id: str, status: str, plain: bool
) -> httpx.Response:
    """Send one step; no answer may be a 5xx (nor a batch entry's)."""
    new = body(task_id, status, plain)
    ops = [{"op": "replace", "path": "/status", "value": status}]
    if how == "post":
        r = await client.post(
            "/fhir/Task",
            json={k: v for k, v in new.items() if k != "id"},
            headers={**FHIR_JSON, "If-None-Exist": f"identifier={IDS}|{task_id}"},
        )
    elif how == "put":
        r = await client.put(f"/fhir/Task/{task_id}", json=new, headers=FHIR_JSON)
    elif how == "patch":
        r = await client.patch(
            f"/fhir/Task/{task_id}",
            json=ops,
            headers={"Content-Type": "application/json-patch+json"},
        )
    elif how in ("transaction", "batch"):
        entry = {"resource": new, "request": {"method": "PUT", "url": f"Task/{task_id}"}}
        r = await client.post("/fhir", json=bundle(how, [entry]), headers=FHIR_JSON)
    elif how == "bundle-patch":
        binary = {"resourceType": "Binary", "data": base64.b64encode(orjson.dumps(ops)).decode()}
        entry = {"resource": binary, "request": {"method": "PATCH", "url": f"Task/{task_id}"}}
        r = await client.post("/fhir", json=bundle("transaction", [entry]), headers=FHIR_JSON)
    elif how == "delete":
        r = await client.delete(f"/fhir/Task/{task_id}")
    else:  # conditional delete
        r = await client.delete(f"/fhir/Task?identifier={IDS}|{task_id}")
    assert r.status_code < 500, f"{how} {status}: {r.status_code} {r.text}"
    if how == "batch" and r.status_code == 200:
        assert int(r.json()["entry"][0]["response"]["status"][:3]) < 500, r.text
    return r


async def stored_status(client: httpx.AsyncClient, task_id: str) -> str:
    r = await client.get(f"/fhir/Task/{task_id}")
    return {404: "absent", 410: "deleted"}.get(r.status_code) or str(r.json()["status"])


def succeeded(how: str, r: httpx.Response) -> bool:
    if how == "batch":
        return r.status_code == 200 and r.json()["entry"][0]["response"]["status"][0] == "2"
    return r.is_success


async def history(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any] | None]:
    """Every stored version, oldest first (None for a deletion); [] if never stored."""
    r = await client.get(f"/fhir/Task/{task_id}/_history", params={"_count": "1000"})
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return [e.get("resource") for e in reversed(r.json().get("entry", []))]


def check_history(versions: list[dict[str, Any] | None]) -> None:
    """The history is a legal run of the referral Task state machine (see module docstring)."""
    if not versions:
        return
    first = versions[0]
    assert first is not None, "a history cannot begin with a deletion"
    referral = first["code"] == FULFILL
    if referral:
        assert first["status"] in STARTS, f"created as {first['status']}"
    for before, after in itertools.pairwise(versions):
        assert before is not None, "a version follows a deletion (a deleted id came back)"
        if after is None:
            if referral:
                assert before["status"] in DELETABLE, f"deleted while {before['status']}"
            continue
        assert (after["code"] == FULFILL) == referral, "the Task changed kind"
        if referral:
            old, new = before["status"], after["status"]
            legal = (
                old == new
                or (old, new) in MOVES
                or (new == "entered-in-error" and old != "entered-in-error")
            )
            assert legal, f"stored move {old} -> {new}"


WRITES = [
    "post",
    "put",
    "put",
    "patch",
    "transaction",
    "batch",
    "bundle-patch",
    "delete",
    "cdelete",
]


def likely(known: str) -> list[str]:
    """Statuses the table allows next (to steer most steps to writes that succeed, deep into
    the diagram; entered-in-error and illegal moves come from the undirected draws)."""
    if known in ("absent", "deleted"):
        return sorted(STARTS)
    return sorted(new for old, new in MOVES if old == known) or STATUSES


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # no shrinking: each example is a dozen HTTP calls on a growing database, and shrinking
    # one would take minutes; the draws (labelled) and the history in the message suffice
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_task_histories_follow_the_state_machine(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    seen = set(ids)
    known = dict.fromkeys(ids, "absent")  # steers the draws; the check ignores it
    for _ in range(data.draw(st.integers(4, 24), label="steps")):
        how = data.draw(st.sampled_from(WRITES), label="write")
        slot = data.draw(st.integers(0, 1), label="task")
        plain = data.draw(st.integers(0, 9), label="plain body (0)") == 0
        steer = data.draw(st.integers(0, 3), label="any status (0)") != 0
        options = likely(known[ids[slot]]) if steer else STATUSES
        status = data.draw(st.sampled_from(options), label="status")
        r = await write(client, how, ids[slot], status, plain)
        if how == "post" and r.status_code == 201:  # a new Task: later steps write it
            ids[slot] = r.json()["id"]
            seen.add(ids[slot])
        if succeeded(how, r):
            known[ids[slot]] = await stored_status(client, ids[slot])
    for task_id in seen:
        versions = await history(client, task_id)
        try:
            check_history(versions)
        except AssertionError as exc:
            runs = [v["status"] if v else "(deleted)" for v in versions]
            raise AssertionError(f"Task/{task_id} history {runs}: {exc}") from None
