"""Every resource type a service serves survives JSON -> FHIR XML -> JSON unchanged.

The examples are the SDOHCC IG's where we hold one (referral-api's fixtures), else a small
example with the elements our services use (narrative, extensions, choice types, references).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from closedloop.fhir.rest.xml import parse_xml, to_xml
from closedloop.fhir.validation import model_class
from directory_api.resources import RESOURCE_TYPES as DIRECTORY
from lxml import etree
from notifier.resources import RESOURCE_TYPES as NOTIFIER
from referral_api.resources import RESOURCE_TYPES as REFERRAL

ROOT = Path(__file__).parent.parent
IG = ROOT / "services/referral-api/tests/fixtures/sdohcc"
DIV = '<div xmlns="http://www.w3.org/1999/xhtml"><p>An &quot;example&quot; &amp; more</p></div>'
REF = {"reference": "Patient/p1", "display": "Ana"}
CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "1234", "display": "x"}]}

SMALL: dict[str, dict[str, Any]] = {
    "Patient": {
        "name": [{"family": "Muñoz", "given": ["Ana", "María"]}],
        "gender": "female",
        "birthDate": "1990-05-17",
        "_birthDate": {"extension": [{"url": "urn:x", "valueString": "approx"}]},
        "address": [{"postalCode": "60601", "line": ["1 Main St"]}],
    },
    "Practitioner": {"name": [{"family": "Lee"}], "active": True},
    "PractitionerRole": {"practitioner": REF, "code": [CODE]},
    "Organization": {"name": "Food Bank", "telecom": [{"system": "phone", "value": "555"}]},
    "Condition": {"subject": REF, "code": CODE, "onsetDateTime": "2026-01-02"},
    "Goal": {
        "lifecycleStatus": "active",
        "description": CODE,
        "subject": REF,
        "target": [{"measure": CODE, "detailQuantity": {"value": 1.5, "unit": "kg"}}],
    },
    "Observation": {
        "status": "final",
        "code": CODE,
        "subject": REF,
        "valueQuantity": {"value": 12.25, "unit": "mg"},
        "effectiveDateTime": "2026-11-02T10:00:00Z",
    },
    "QuestionnaireResponse": {
        "status": "completed",
        "item": [
            {
                "linkId": "1",
                "item": [{"linkId": "1.1", "answer": [{"valueBoolean": False}]}],
            }
        ],
    },
    "DocumentReference": {
        "status": "current",
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
    },
    "HealthcareService": {
        "name": "Pantry",
        "extension": [
            {
                "url": "urn:closedloop:age",
                "valueRange": {"low": {"value": 18}, "high": {"value": 65}},
            }
        ],
        "availableTime": [{"daysOfWeek": ["mon", "tue"], "availableStartTime": "09:00:00"}],
    },
    "Location": {
        "name": "Site",
        "position": {"latitude": 41.88, "longitude": -87.63},
        "hoursOfOperation": [{"daysOfWeek": ["sat"], "allDay": True}],
    },
    "Endpoint": {
        "status": "active",
        "connectionType": {"code": "hl7-fhir-rest"},
        "payloadType": [CODE],
        "address": "https://example.org/fhir",
    },
    "Subscription": {
        "status": "active",
        "reason": "referrals",
        "criteria": "Task?status=requested",
        "channel": {"type": "rest-hook", "endpoint": "https://example.org/hook"},
    },
    "Basic": {"code": CODE, "created": "2026-01-01"},
    "ServiceRequest": {"status": "active", "intent": "order", "subject": REF},
    "Task": {"status": "requested", "intent": "order", "for": REF},
    "Consent": {"status": "active", "scope": CODE, "category": [CODE]},
    "Measure": {
        "url": "urn:closedloop:Measure:closed-loop",
        "status": "active",
        "title": "Closed-loop referrals",
        "scoring": CODE,
        "group": [
            {"code": CODE, "population": [{"code": CODE, "criteria": {"language": "text/x-sql"}}]}
        ],
    },
    "Procedure": {"status": "completed", "subject": REF},
    "Questionnaire": {
        "url": "urn:closedloop:Questionnaire:patient-voice",
        "status": "active",
        "item": [
            {
                "linkId": "helpfulness",
                "text": "How helpful was it?",
                "_text": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/translation",
                            "extension": [
                                {"url": "lang", "valueCode": "es"},
                                {"url": "content", "valueString": "¿Qué tan útil fue?"},
                            ],
                        }
                    ]
                },
                "type": "choice",
                "answerOption": [{"valueCoding": {"system": "urn:x", "code": "very-helpful"}}],
            }
        ],
    },
}


def _examples() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(IG.glob("*.json")):
        found.append((path.stem, orjson.loads(path.read_bytes())))
    for rtype in sorted({*REFERRAL, *DIRECTORY, *NOTIFIER}):
        body = {"resourceType": rtype, "id": f"ex-{rtype.lower()}", **SMALL[rtype]}
        body["text"] = {"status": "generated", "div": DIV}
        body["meta"] = {"versionId": "2", "lastUpdated": "2026-11-02T10:00:00.123456+00:00"}
        found.append((rtype, body))
    return found


def _normal(resource: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON (instants and decimals in one spelling), narrative as canonical XML."""
    data: dict[str, Any] = orjson.loads(
        model_class(resource["resourceType"]).model_validate(resource).model_dump_json()
    )
    div = (data.get("text") or {}).get("div")
    if div:
        data["text"]["div"] = etree.tostring(etree.fromstring(div), method="c14n")
    return data


def test_every_served_type_has_an_example() -> None:
    served = {*REFERRAL, *DIRECTORY, *NOTIFIER}
    assert served <= {r["resourceType"] for _, r in _examples()}


@pytest.mark.parametrize("name,resource", _examples(), ids=[n for n, _ in _examples()])
def test_json_xml_json(name: str, resource: dict[str, Any]) -> None:
    xml = to_xml(orjson.dumps(resource))
    assert etree.QName(etree.fromstring(xml)).localname == resource["resourceType"]
    assert _normal(parse_xml(xml)) == _normal(resource)
