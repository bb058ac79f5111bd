"""The Measure referral-api publishes (read-only): what each group, population and stratifier
of its MeasureReports means, under one canonical URL."""

from __future__ import annotations

from typing import Any

from referral_api.measures.compute import COUNTS, DURATIONS, STATS, STRATIFIERS

MEASURE_ID = "closed-loop"
CANONICAL = "urn:closedloop:Measure:closed-loop"
CODES = "urn:closedloop:CodeSystem:loop-metrics"

POPULATIONS = {
    "sent": "Referral Tasks sent (first reached requested) in the period",
    "accepted": "of those, accepted by the CBO",
    "declined": "of those, declined (rejected) by the CBO",
    "completed": "of those, completed",
    "cancelled": "of those, cancelled",
    "stalled": "of those, not answered by the CBO nor cancelled within the stall limit",
    "responded": "of those, answered by the CBO (accepted or declined)",
}
assert set(POPULATIONS) == set(COUNTS)
# the populations as conditions on referral_facts (measures.compute); not CQL
CRITERIA = "text/x-closedloop-referral-facts"
CRITERIA_OF = {
    "sent": "sent_at in period and status != entered-in-error",
    "accepted": "accepted_at is not null",
    "declined": "declined_at is not null",
    "completed": "completed_at is not null",
    "cancelled": "cancelled_at is not null",
    "stalled": "first_response_at is null and cancelled_at is null and sent_at < now - stall",
    "responded": "first_response_at is not null",
}
TIMES = {
    "first-response": "from sent to the CBO's first answer (accepted or declined)",
    "accept": "from sent to accepted",
    "complete": "from sent to completed",
}
assert set(TIMES) == set(DURATIONS)
STRATA = {
    "cbo": "the CBO (Task.owner)",
    "category": "the service category (ServiceRequest.category)",
    "requester": "the requesting organization (Task.requester)",
    "month": "the month the referral was sent (UTC, YYYY-MM)",
    "language": "the patient's preferred language (Patient.communication)",
    "race": "the patient's OMB race category (US Core race)",
    "ethnicity": "the patient's OMB ethnicity category (US Core ethnicity)",
    "sex": "the patient's sex (US Core sex or birth sex, else gender)",
    "declined-reason": "the coded decline reason (Task.statusReason)",
}
assert set(STRATA) == set(STRATIFIERS)


def code(value: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": CODES, "code": value}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": value}


def time_groups() -> list[str]:
    return [f"time-to-{d}.{s}" for d in DURATIONS for s in STATS]


def measure() -> dict[str, Any]:
    strat = [{"code": code(name), "description": text} for name, text in STRATA.items()]
    groups = [
        {
            "code": code("referrals"),
            "description": "Referral counts; the score is the closure rate (completed / sent)",
            "population": [
                {
                    "code": code(name),
                    "description": text,
                    "criteria": {"language": CRITERIA, "expression": CRITERIA_OF[name]},
                }
                for name, text in POPULATIONS.items()
            ],
            "stratifier": strat,
        }
    ]
    for group in time_groups():
        duration, stat = group.removeprefix("time-to-").split(".")
        groups.append(
            {
                "code": code(group),
                "description": f"The {stat} time {TIMES[duration]}, in hours",
                "stratifier": strat,
            }
        )
    return {
        "resourceType": "Measure",
        "id": MEASURE_ID,
        "url": CANONICAL,
        "version": "1",
        "name": "ClosedLoopReferralMetrics",
        "title": "Closed-loop referral metrics",
        "status": "active",
        "experimental": False,
        "description": (
            "How social-care referrals fare: sent, accepted, declined (by reason), completed, "
            "cancelled and stalled; the closure rate; the median and 90th percentile times to "
            "first response, to accept and to complete. Counts from 1 to 10 are suppressed, "
            "and so is every figure derived from a group that small."
        ),
        "scoring": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": "ratio"}
            ]
        },
        "group": groups,
    }
