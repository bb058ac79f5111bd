"""What a CBO may do with a referral in each status, as buttons: the owner's moves of the
IG's Task state machine. referral-api enforces the machine (a refused move comes back as a
readable message); this only decides which buttons to show and what each one writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


@dataclass(frozen=True)
class Move:
    action: str  # the button's name in web.i18n ("act_<action>")
    to: str  # the Task status it sets
    needs: str = ""  # "reason" or "outcome": a field the form must fill in
    style: str = ""  # "secondary" | "danger"


ACCEPT = Move("accept", "accepted")
DECLINE = Move("decline", "rejected", "reason", "danger")
START = Move("start", "in-progress")
RESUME = Move("resume", "in-progress")
HOLD = Move("hold", "on-hold", "reason", "secondary")
COMPLETE = Move("complete", "completed", "outcome")
CANCEL = Move("cancel", "cancelled", "reason", "danger")

MOVES: dict[str, tuple[Move, ...]] = {
    "requested": (ACCEPT, DECLINE),
    "accepted": (START, COMPLETE, HOLD, CANCEL),
    "in-progress": (COMPLETE, HOLD, CANCEL),
    "on-hold": (RESUME, COMPLETE, CANCEL),
}
BY_ACTION = {m.action: m for moves in MOVES.values() for m in moves}


def moves_for(status: str) -> tuple[Move, ...]:
    return MOVES.get(status, ())


def procedure(task: dict[str, Any], outcome: str) -> dict[str, Any]:
    """The delivered service (SDOHCC Procedure) that closes the loop."""
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"text": outcome},
        "subject": task.get("for"),
        "basedOn": [task["focus"]] if task.get("focus") else [],
        "performedDateTime": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def moved(
    task: dict[str, Any], move: Move, reason: str, procedure_id: str | None
) -> dict[str, Any]:
    """The Task after ``move``: only what an owner may change (status, statusReason, output)."""
    out = {**task, "status": move.to}
    if reason:
        out["statusReason"] = {"text": reason}
    else:
        out.pop("statusReason", None)
    if procedure_id:
        out["output"] = [
            *(task.get("output") or []),
            {
                "type": {"coding": [{"system": SDOHCC, "code": "resulting-activity"}]},
                "valueReference": {"reference": f"Procedure/{procedure_id}"},
            },
        ]
    return out
