"""The subscription topics the SDOH Clinical Care IG names (in narrative only), as data.

They are published as R4 ``Basic`` resources carrying the R5 SubscriptionTopic cross-version
extensions (Subscriptions Backport IG 1.1.0) and listed in the CapabilityStatement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IG = "http://hl7.org/fhir/us/sdoh-clinicalcare"
EXT5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"
CANONICAL_EXT = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)


@dataclass(frozen=True)
class Topic:
    id: str  # the Basic resource id
    url: str
    title: str
    resource_type: str
    interactions: frozenset[str]  # create | update | delete
    current: str  # queryCriteria.current: what the focus must match
    can_filter_by: tuple[str, ...]


TOPICS: dict[str, Topic] = {
    t.url: t
    for t in (
        Topic(
            "sdohcc-topic-task",
            f"{IG}/SubscriptionTopic/Task",
            "Referral Task changes",
            "Task",
            frozenset({"create", "update", "delete"}),
            "status:not=draft&intent=order",
            ("_lastUpdated", "code", "owner", "requester", "status"),
        ),
        # "Servicerequest" is how the IG spells it.
        Topic(
            "sdohcc-topic-servicerequest",
            f"{IG}/SubscriptionTopic/Servicerequest",
            "Referral ServiceRequest changes",
            "ServiceRequest",
            frozenset({"update", "delete"}),
            "",
            ("_lastUpdated", "_id"),
        ),
    )
}


def basic_resource(topic: Topic) -> dict[str, Any]:
    """The topic as an R4 Basic (Backport IG: 'Basic-wrapped' topic definition)."""
    trigger: list[dict[str, Any]] = [
        {
            "url": "resource",
            "valueUri": f"http://hl7.org/fhir/StructureDefinition/{topic.resource_type}",
        },
        *({"url": "supportedInteraction", "valueCode": i} for i in sorted(topic.interactions)),
    ]
    if topic.current:
        trigger.append(
            {
                "url": "queryCriteria",
                "extension": [
                    {"url": "current", "valueString": topic.current},
                    {"url": "requireBoth", "valueBoolean": False},
                ],
            }
        )
    return {
        "resourceType": "Basic",
        "id": topic.id,
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]
        },
        "extension": [
            {"url": f"{EXT5}.url", "valueUri": topic.url},
            {"url": f"{EXT5}.title", "valueString": topic.title},
            {"url": f"{EXT5}.status", "valueCode": "active"},
            {"url": f"{EXT5}.resourceTrigger", "extension": trigger},
            *(
                {
                    "url": f"{EXT5}.canFilterBy",
                    "extension": [
                        {"url": "resource", "valueUri": topic.resource_type},
                        {"url": "filterParameter", "valueString": p},
                    ],
                }
                for p in topic.can_filter_by
            ),
        ],
    }
