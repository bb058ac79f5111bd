"""The Task state machines of the SDOH Clinical Care IG, as data.

Referral Tasks (code ``fulfill``): draft -> requested; requested -> accepted | rejected |
cancelled; accepted -> in-progress | on-hold | cancelled | completed | failed; in-progress <->
on-hold; in-progress -> completed | failed | cancelled; on-hold -> cancelled | completed |
failed; any -> entered-in-error. Patient Tasks start at ``ready``. Final states allow no move
but entered-in-error.

A Task's life begins only where the IG's diagrams begin (``REFERRAL_STARTS``,
``PATIENT_STARTS``): creating one further along, or re-creating a deleted id, would skip the
moves. So a deleted Task's id is retired, and a referral Task may be deleted only while it is a
``draft`` (never sent, not on the IG's subscription topic); once requested it is part of the
closed-loop record and is retracted with ``entered-in-error`` (or ended with ``cancelled``).

``ACTORS`` says who may make each move (the Task's requester or its owner) and
``OWNER_EDITABLE`` what an owner may change; ``check_actor`` enforces both once callers are
identified (anonymous callers are not checked yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from closedloop import errors
from closedloop.context import RequestContext

REFERRAL_MOVES: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested"}),
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in-progress", "on-hold", "cancelled", "completed", "failed"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "cancelled", "completed", "failed"}),
}
PATIENT_MOVES: dict[str, frozenset[str]] = {
    "ready": frozenset({"in-progress", "on-hold", "completed", "failed", "cancelled"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "completed", "failed", "cancelled"}),
}
FINAL = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})
# The statuses a new Task may have: the requester creates a referral Task as requested (IG
# refer-5), or as a draft it has not sent yet; a patient Task is created ready.
REFERRAL_STARTS = frozenset({"draft", "requested"})
PATIENT_STARTS = frozenset({"ready"})

REQUESTER, OWNER = "requester", "owner"
# The role that may move a referral Task *into* a status (IG "who sets each status").
ACTORS: dict[str, frozenset[str]] = {
    "draft": frozenset({REQUESTER}),
    "requested": frozenset({REQUESTER}),
    "accepted": frozenset({OWNER}),
    "rejected": frozenset({OWNER}),
    "in-progress": frozenset({OWNER}),
    "on-hold": frozenset({OWNER}),
    "completed": frozenset({OWNER}),
    "failed": frozenset({OWNER}),
    "cancelled": frozenset({REQUESTER, OWNER}),
    "entered-in-error": frozenset({REQUESTER}),
}
PATIENT_ACTORS: dict[str, frozenset[str]] = {
    "ready": frozenset({REQUESTER}),
    "in-progress": frozenset({OWNER}),
    "on-hold": frozenset({OWNER}),
    "completed": frozenset({OWNER}),
    "failed": frozenset({OWNER}),
    "cancelled": frozenset({REQUESTER, OWNER}),
    "entered-in-error": frozenset({REQUESTER}),
}


@dataclass(frozen=True)
class Machine:
    """One kind of Task's life: where it starts, its moves, who makes them, and in which
    statuses it may be deleted (None: any)."""

    kind: str
    starts: frozenset[str]
    moves: dict[str, frozenset[str]]
    actors: dict[str, frozenset[str]]
    deletable: frozenset[str] | None


REFERRAL = Machine("referral", REFERRAL_STARTS, REFERRAL_MOVES, ACTORS, frozenset({"draft"}))
PATIENT = Machine("patient", PATIENT_STARTS, PATIENT_MOVES, PATIENT_ACTORS, None)

OWNER_EDITABLE = frozenset(
    {"status", "statusReason", "businessStatus", "output", "note", "meta", "text", "lastModified"}
)


def check_move(old: str, new: str, moves: dict[str, frozenset[str]], kind: str) -> None:
    """Raise 409 unless ``old -> new`` is a move of this state machine."""
    if old == new:
        return
    if new == "entered-in-error" and old != "entered-in-error":
        return
    allowed = moves.get(old, frozenset())
    if new not in allowed:
        final = " (a final status)" if old in FINAL else ""
        options = ", ".join(sorted(allowed | {"entered-in-error"})) if old not in FINAL else ""
        raise errors.conflict(
            f"A {kind} Task cannot move from {old}{final} to {new}"
            + (f"; from {old} it may move to {options}" if options else ""),
            cl_code="CL-6409",
            expression=("Task.status",),
        )


def check_start(status: str, starts: frozenset[str], kind: str) -> None:
    """Raise 422 unless a new Task of this kind may begin in ``status``."""
    if status not in starts:
        raise errors.unprocessable(
            f"A new {kind} Task must start as {' or '.join(sorted(starts))}, not {status}; "
            "it reaches other statuses by updates that follow the state machine",
            ("Task.status",),
            cl_code="CL-6423",
        )


def retired_id(task_id: str) -> errors.FhirError:
    """409 for re-creating a deleted Task: its id is retired (its history would otherwise show
    a move from wherever it was deleted to wherever it is re-created, with no check between)."""
    return errors.conflict(
        f"Task/{task_id} was deleted and its id is not reused; create a new Task (POST)",
        cl_code="CL-6410",
    )


def kind_changed(before: Machine | None, after: Machine | None) -> errors.FhirError:
    """422 for an update that turns a Task into another kind: it would begin the other state
    machine in the middle (e.g. a plain Task updated into a completed referral Task)."""

    def name(machine: Machine | None) -> str:
        return f"a {machine.kind} Task" if machine else "a Task of no SDOHCC kind"

    return errors.unprocessable(
        f"An update cannot turn {name(before)} into {name(after)} (Task.code, meta.profile); "
        "create a new Task instead",
        ("Task.code",),
        cl_code="CL-6424",
    )


def check_delete(status: str, deletable: frozenset[str] | None, kind: str) -> None:
    """Raise 409 unless a Task of this kind may be deleted in ``status``."""
    if deletable is not None and status not in deletable:
        raise errors.conflict(
            f"A {kind} Task in status {status} is part of the closed-loop record and cannot "
            f"be deleted (only a {' or '.join(sorted(deletable))} can); set its status to "
            "entered-in-error if it was made in error, or cancelled to withdraw it",
            cl_code="CL-6411",
            expression=("Task.status",),
        )


RoleOf = Callable[[RequestContext, dict[str, Any]], set[str]]
"""Which roles (requester, owner) the caller holds on a Task; supplied by the auth layer."""


def check_actor(
    ctx: RequestContext,
    previous: dict[str, Any],
    new: dict[str, Any],
    actors: dict[str, frozenset[str]],
    role_of: RoleOf,
) -> None:
    """Who may make the move, and an owner may change only its progress (OWNER_EDITABLE)."""
    if ctx.anonymous:
        return  # identity arrives with the authorization issue; the rules are ready for it
    roles = role_of(ctx, previous)
    if previous.get("status") != new.get("status"):
        allowed = actors.get(str(new.get("status")), frozenset())
        if not roles & allowed:
            raise errors.forbidden(
                f"Only the Task's {' or '.join(sorted(allowed)) or 'nobody'} may set status "
                f"{new.get('status')}"
            )
    if roles == {OWNER}:
        changed = {
            k
            for k in set(previous) | set(new)
            if k not in OWNER_EDITABLE and previous.get(k) != new.get(k)
        }
        if changed:
            raise errors.forbidden(
                "The Task's owner may change only status, statusReason, businessStatus, output "
                "and note, not " + ", ".join(sorted(changed))
            )


def check_creator(
    ctx: RequestContext, task: dict[str, Any], actors: dict[str, frozenset[str]], role_of: RoleOf
) -> None:
    """Who may create a Task in its start status (its requester), once callers have identity."""
    if ctx.anonymous:
        return
    allowed = actors.get(str(task.get("status")), frozenset())
    if not role_of(ctx, task) & allowed:
        raise errors.forbidden(
            f"Only the Task's {' or '.join(sorted(allowed)) or 'nobody'} may create it as "
            f"{task.get('status')}"
        )
