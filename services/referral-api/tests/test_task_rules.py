"""The Task rule table without HTTP: moves, and who may make them once callers have identity."""

from __future__ import annotations

import pytest
from closedloop.context import RequestContext
from closedloop.errors import FhirError
from referral_api.rules import role_of
from referral_api.workflow import task_states as ts

TASK = {
    "resourceType": "Task",
    "status": "requested",
    "requester": {"reference": "Organization/clinic"},
    "owner": {"reference": "http://dir.example/fhir/Organization/cbo"},
}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("draft", "requested"),
        ("requested", "accepted"),
        ("requested", "rejected"),
        ("requested", "cancelled"),
        ("accepted", "in-progress"),
        ("accepted", "completed"),
        ("in-progress", "on-hold"),
        ("on-hold", "in-progress"),
        ("on-hold", "failed"),
        ("completed", "entered-in-error"),
        ("accepted", "accepted"),
    ],
)
def test_allowed_referral_moves(old: str, new: str) -> None:
    ts.check_move(old, new, ts.REFERRAL_MOVES, "referral")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("requested", "completed"),
        ("requested", "in-progress"),
        ("draft", "accepted"),
        ("completed", "in-progress"),
        ("rejected", "accepted"),
        ("cancelled", "requested"),
        ("in-progress", "requested"),
        ("entered-in-error", "requested"),
    ],
)
def test_refused_referral_moves(old: str, new: str) -> None:
    with pytest.raises(FhirError) as err:
        ts.check_move(old, new, ts.REFERRAL_MOVES, "referral")
    assert err.value.status == 409


def test_anonymous_callers_are_not_checked_yet() -> None:
    ts.check_actor(RequestContext(), TASK, {**TASK, "status": "accepted"}, ts.ACTORS, role_of)


def test_only_the_owner_accepts() -> None:
    clinic = RequestContext(subject="u1", organization="Organization/clinic")
    cbo = RequestContext(subject="u2", organization="Organization/cbo")
    with pytest.raises(FhirError) as err:
        ts.check_actor(clinic, TASK, {**TASK, "status": "accepted"}, ts.ACTORS, role_of)
    assert err.value.status == 403
    ts.check_actor(cbo, TASK, {**TASK, "status": "accepted"}, ts.ACTORS, role_of)
    ts.check_actor(clinic, TASK, {**TASK, "status": "cancelled"}, ts.ACTORS, role_of)


def test_the_owner_changes_only_status_reason_and_output() -> None:
    cbo = RequestContext(subject="u2", organization="Organization/cbo")
    changed = {**TASK, "status": "accepted", "priority": "urgent"}
    with pytest.raises(FhirError) as err:
        ts.check_actor(cbo, TASK, changed, ts.ACTORS, role_of)
    assert "priority" in str(err.value)
    ts.check_actor(
        cbo,
        TASK,
        {**TASK, "status": "accepted", "statusReason": {"text": "ok"}},
        ts.ACTORS,
        role_of,
    )


def test_only_the_requester_creates() -> None:
    clinic = RequestContext(subject="u1", organization="Organization/clinic")
    cbo = RequestContext(subject="u2", organization="Organization/cbo")
    ts.check_creator(clinic, TASK, ts.ACTORS, role_of)
    ts.check_creator(RequestContext(), TASK, ts.ACTORS, role_of)
    with pytest.raises(FhirError) as err:
        ts.check_creator(cbo, TASK, ts.ACTORS, role_of)
    assert err.value.status == 403
