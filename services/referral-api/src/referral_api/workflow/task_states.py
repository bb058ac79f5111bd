"""The Task state machines of the SDOH Clinical Care IG, as data.

Referral Tasks (code ``fulfill``): draft -> requested; requested -> accepted | rejected |
cancelled; accepted -> in-progress | on-hold | cancelled | completed | failed; in-progress <->
on-hold; in-progress -> completed | failed | cancelled; on-hold -> cancelled | completed |
failed; any -> entered-in-error. Patient Tasks start at ``ready``. Final states allow no move
but entered-in-error.

``ACTORS`` says who may make each move (the Task's requester or its owner) and
``OWNER_EDITABLE`` what an owner may change; ``check_actor`` enforces both once callers are
identified (anonymous callers are not checked yet).
"""

from __future__ import annotations

from collections.abc import Callable
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

REQUESTER, OWNER = "requester", "owner"
# The role that may move a referral Task *into* a status (IG "who sets each status").
ACTORS: dict[str, frozenset[str]] = {
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
    "in-progress": frozenset({OWNER}),
    "on-hold": frozenset({OWNER}),
    "completed": frozenset({OWNER}),
    "failed": frozenset({OWNER}),
    "cancelled": frozenset({REQUESTER, OWNER}),
    "entered-in-error": frozenset({REQUESTER}),
}
OWNER_EDITABLE = frozenset({"status", "statusReason", "output", "meta", "text", "lastModified"})


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


RoleOf = Callable[[RequestContext, dict[str, Any]], set[str]]
"""Which roles (requester, owner) the caller holds on a Task; supplied by the auth layer."""


def check_actor(
    ctx: RequestContext,
    previous: dict[str, Any],
    new: dict[str, Any],
    actors: dict[str, frozenset[str]],
    role_of: RoleOf,
) -> None:
    """Who may make the move, and an owner may change only status, statusReason, output."""
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
                "The Task's owner may change only status, statusReason and output, not "
                + ", ".join(sorted(changed))
            )
