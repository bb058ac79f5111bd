"""Notification Bundles (Subscriptions Backport IG 1.1.0, profile
``backport-subscription-notification-r4``): a ``history`` Bundle whose first entry is the
subscription-status Parameters, then one entry per event focus according to the payload
content (``empty``: none; ``id-only``: fullUrl + request; ``full-resource``: the resource)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from closedloop.fhir.instant import format_instant, now_us

STATUS_PROFILE = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-status-r4"
)
NOTIFICATION_PROFILE = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-notification-r4"
)
METHOD = {"create": "POST", "update": "PUT", "delete": "DELETE"}


@dataclass(frozen=True)
class StoredEvent:
    number: int
    focus_type: str
    focus_id: str
    interaction: str
    occurred_at: int
    resource: str | None


def status_parameters(
    subscription_url: str,
    topic: str,
    status: str,
    kind: str,
    events_count: int,
    events: list[StoredEvent],
    focus_base: str,
    payload: str,
    error: str | None = None,
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription_url}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_count)},
    ]
    for ev in events:
        part: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(ev.number)},
            {"name": "timestamp", "valueInstant": format_instant(ev.occurred_at)},
        ]
        if payload != "empty":
            part.append(
                {
                    "name": "focus",
                    "valueReference": {"reference": f"{focus_base}/{ev.focus_type}/{ev.focus_id}"},
                }
            )
        params.append({"name": "notification-event", "part": part})
    if error:
        params.append(
            {
                "name": "error",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/subscription-error",
                            "code": "no-response",
                        }
                    ],
                    "text": error,
                },
            }
        )
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": params,
    }


def notification_bundle(
    subscription_url: str,
    topic: str,
    status: str,
    kind: str,
    events_count: int,
    events: list[StoredEvent],
    focus_base: str,
    payload: str,
    error: str | None = None,
) -> dict[str, Any]:
    parameters = status_parameters(
        subscription_url, topic, status, kind, events_count, events, focus_base, payload, error
    )
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{parameters['id']}",
            "resource": parameters,
            "request": {"method": "GET", "url": f"{subscription_url}/$status"},
            "response": {"status": "200"},
        }
    ]
    if payload != "empty":
        for ev in events:
            entry: dict[str, Any] = {
                "fullUrl": f"{focus_base}/{ev.focus_type}/{ev.focus_id}",
                "request": {
                    "method": METHOD.get(ev.interaction, "PUT"),
                    "url": f"{ev.focus_type}/{ev.focus_id}",
                },
            }
            if payload == "full-resource" and ev.resource and ev.interaction != "delete":
                entry["resource"] = orjson.loads(ev.resource)
            entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": format_instant(now_us()),
        "entry": entries,
    }
