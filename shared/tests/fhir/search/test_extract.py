"""Index-row extraction: each sp_* kind from realistic resources, plus the per-kind helpers the
query side reuses (date ranges, number precision, reference parsing)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from closedloop.fhir.search.definitions import SearchParam, SearchParamRegistry, load_standard
from closedloop.fhir.search.extract import COLUMN_PARAMS, IndexExtractor
from closedloop.fhir.search.fhirpath import Node
from closedloop.fhir.search.index import KINDS
from closedloop.fhir.search.index import number as number_index
from closedloop.fhir.search.index import quantity as quantity_index
from closedloop.fhir.search.index import string as string_index
from closedloop.fhir.search.index import token as token_index
from closedloop.fhir.search.index.date import MAX_US, MIN_US, parse_date_range
from closedloop.fhir.search.index.number import precision_range
from closedloop.fhir.search.index.reference import parse_reference
from closedloop.fhir.storage.tables import INDEX_TABLES

TYPES = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "ServiceRequest",
    "Task",
    "Consent",
    "Procedure",
    "Condition",
    "Goal",
    "Observation",
    "QuestionnaireResponse",
    "DocumentReference",
    "HealthcareService",
    "Location",
    "Endpoint",
    "Subscription",
    "Basic",
)
REGISTRY = SearchParamRegistry(load_standard(TYPES))


def us(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> int:
    """Microseconds since the epoch of a UTC datetime."""
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def rows(resource: dict[str, Any], kind: str, param: str) -> list[dict[str, Any]]:
    out = REGISTRY.extractor(resource["resourceType"]).extract(resource)
    return [
        {k: v for k, v in r.items() if k != "param"}
        for r in out.get(kind, [])
        if r["param"] == param
    ]


TASK: dict[str, Any] = {
    "resourceType": "Task",
    "id": "t1",
    "meta": {
        "versionId": "1",
        "lastUpdated": "2024-05-01T10:00:00Z",
        "profile": ["http://example.org/StructureDefinition/referral-task"],
        "tag": [{"system": "http://example.org/tags", "code": "closed-loop"}],
        "security": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "code": "R",
                "display": "Restricted",
            }
        ],
        "source": "http://example.org/referral-api",
    },
    "identifier": [
        {
            "system": "http://example.org/task-id",
            "value": "T-0001",
            "type": {"text": "Referral Number"},
        },
        {"system": "http://example.org/task-id", "value": "T-0001"},
    ],
    "basedOn": [{"reference": "ServiceRequest/sr1"}],
    "groupIdentifier": {"system": "http://example.org/group", "value": "G-1"},
    "status": "requested",
    "businessStatus": {
        "coding": [
            {
                "system": "http://example.org/bs",
                "code": "awaiting",
                "display": "Awaiting Acceptance",
            }
        ],
        "text": "Awaiting",
    },
    "intent": "order",
    "priority": "routine",
    "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
    "focus": {"reference": "ServiceRequest/sr1"},
    "for": {"reference": "Patient/p1", "display": "Jane Doe"},
    "authoredOn": "2024-05-01T09:59:00Z",
    "lastModified": "2024-05-01T12:00:00+02:00",
    "requester": {"reference": "https://fhir.example.org/r4/PractitionerRole/pr1/_history/3"},
    "performerType": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/task-performer-type",
                    "code": "performer",
                }
            ]
        }
    ],
    "owner": {"reference": "Organization/org2"},
    "executionPeriod": {"start": "2024-05-01", "end": "2024-06"},
    "note": [{"text": "Please contact the patient within two working days."}],
}

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {
            "use": "official",
            "type": {"text": "NHS Number"},
            "system": "https://fhir.nhs.uk/Id/nhs-number",
            "value": "9000000009",
        }
    ],
    "active": True,
    "name": [
        {"use": "official", "family": "Dóe", "given": ["Jane", "Ann  Marie"], "prefix": ["Ms"]},
        {"text": "Jane Doe"},
    ],
    "telecom": [
        {"system": "phone", "value": "+44 20 7946 0000", "use": "mobile"},
        {"system": "email", "value": "jane@example.org"},
        {"system": "email", "value": ""},
    ],
    "gender": "female",
    "birthDate": "1980-02",
    "address": [
        {
            "line": ["1 High Street", "Flat 2"],
            "city": "Leeds",
            "district": "West",
            "state": "Yorkshire",
            "postalCode": "LS1 1AA",
            "country": "GB",
        }
    ],
    "generalPractitioner": [{"reference": "Organization/gp1"}, {"reference": "#contained"}],
    "managingOrganization": {"reference": "Organization/org1"},
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}}],
}

SERVICE_REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "id": "sr1",
    "status": "active",
    "intent": "order",
    "instantiatesCanonical": ["http://example.org/fhir/PlanDefinition/housing|1.2.0"],
    "instantiatesUri": ["http://example.org/protocols/housing"],
    "category": [
        {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "410606002",
                    "display": "Social service procedure",
                }
            ]
        }
    ],
    "code": {"text": "Housing assistance"},
    "subject": {"reference": "urn:uuid:7d4a0a5e-2f1b-4b8e-9c8a-0c6f3e1d2a10"},
    "occurrenceTiming": {
        "event": ["2024-05-02", "2024-05-09T08:30:00Z", "not a date"],
        "repeat": {"boundsPeriod": {"start": "2024-05-01"}},
    },
    "authoredOn": "2024-04-30",
    "requester": {"reference": "Practitioner/dr1"},
    "performer": [{"reference": "Organization/cbo1"}],
}


class TestToken:
    def test_codes_identifiers_codeable_concepts(self) -> None:
        assert rows(TASK, "token", "status") == [
            {"system": None, "code": "requested", "text": None}
        ]
        # The same Identifier twice gives one row per distinct (system, code, text).
        assert rows(TASK, "token", "identifier") == [
            {"system": "http://example.org/task-id", "code": "T-0001", "text": "referral number"},
            {"system": "http://example.org/task-id", "code": "T-0001", "text": None},
        ]
        assert rows(TASK, "token", "business-status") == [
            {"system": "http://example.org/bs", "code": "awaiting", "text": "awaiting acceptance"},
            {"system": None, "code": None, "text": "awaiting"},
        ]
        assert rows(TASK, "token", "group-identifier") == [
            {"system": "http://example.org/group", "code": "G-1", "text": None}
        ]

    def test_meta_tag_and_security(self) -> None:
        assert rows(TASK, "token", "_tag") == [
            {"system": "http://example.org/tags", "code": "closed-loop", "text": None}
        ]
        assert rows(TASK, "token", "_security") == [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "code": "R",
                "text": "restricted",
            }
        ]

    def test_boolean_and_contact_points(self) -> None:
        assert rows(PATIENT, "token", "active") == [{"system": None, "code": "true", "text": None}]
        assert rows(PATIENT, "token", "email") == [
            {"system": None, "code": "jane@example.org", "text": None}
        ]
        assert rows(PATIENT, "token", "phone") == [
            {"system": None, "code": "+44 20 7946 0000", "text": None}
        ]
        assert len(rows(PATIENT, "token", "telecom")) == 2
        assert rows(PATIENT, "token", "identifier") == [
            {
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "code": "9000000009",
                "text": "nhs number",
            }
        ]

    def test_concept_text_goes_on_coding_rows_without_display(self) -> None:
        concept = {"coding": [{"system": "s", "code": "c"}], "text": "Wörd"}
        assert token_index.extract([Node(concept, None)]) == [
            {"system": "s", "code": "c", "text": "word"},
            {"system": None, "code": None, "text": "word"},
        ]

    def test_empty_values_are_skipped(self) -> None:
        nodes = [
            Node("", None),
            Node({}, None),
            Node({"coding": []}, None),
            Node({"coding": [{}]}, None),
            Node({"system": "x", "value": ""}, None),
        ]
        assert token_index.extract(nodes) == [{"system": "x", "code": None, "text": None}]
        assert token_index.extract([Node(False, "boolean")]) == [
            {"system": None, "code": "false", "text": None}
        ]


class TestString:
    def test_human_name_parts_normalised(self) -> None:
        assert rows(PATIENT, "string", "family") == [{"value_norm": "doe", "value_exact": "Dóe"}]
        assert rows(PATIENT, "string", "given") == [
            {"value_norm": "jane", "value_exact": "Jane"},
            {"value_norm": "ann marie", "value_exact": "Ann  Marie"},
        ]
        assert [r["value_exact"] for r in rows(PATIENT, "string", "name")] == [
            "Dóe",
            "Jane",
            "Ann  Marie",
            "Ms",
            "Jane Doe",
        ]

    def test_address_parts(self) -> None:
        assert [r["value_exact"] for r in rows(PATIENT, "string", "address")] == [
            "1 High Street",
            "Flat 2",
            "Leeds",
            "West",
            "Yorkshire",
            "LS1 1AA",
            "GB",
        ]
        assert rows(PATIENT, "string", "address-postalcode") == [
            {"value_norm": "ls1 1aa", "value_exact": "LS1 1AA"}
        ]

    def test_plain_strings_and_alias(self) -> None:
        org = {"resourceType": "Organization", "name": "Café  Ünion", "alias": ["CU"]}
        assert rows(org, "string", "name") == [
            {"value_norm": "cafe union", "value_exact": "Café  Ünion"},
            {"value_norm": "cu", "value_exact": "CU"},
        ]

    def test_normalize(self) -> None:
        assert string_index.normalize("  Ångström\tÉcole  ﬁne ") == "angstrom ecole fine"

    def test_truncated_to_255(self) -> None:
        [row] = string_index.extract([Node("é" * 300, "string")])
        assert len(row["value_exact"]) == 255 and len(row["value_norm"]) == 255

    def test_other_dicts_are_skipped(self) -> None:
        assert (
            string_index.extract(
                [
                    Node({"coding": [], "text": "x"}, "CodeableConcept"),
                    Node({"reference": "Patient/1"}, None),
                ]
            )
            == []
        )

    def test_observation_value_string_and_concept_text(self) -> None:
        obs = {"resourceType": "Observation", "valueCodeableConcept": {"text": "Unstable"}}
        assert rows(obs, "string", "value-string") == [
            {"value_norm": "unstable", "value_exact": "Unstable"}
        ]


class TestDate:
    @pytest.mark.parametrize(
        ("text", "low", "high"),
        [
            ("2020", us(2020, 1, 1), us(2021, 1, 1) - 1),
            ("2020-02", us(2020, 2, 1), us(2020, 3, 1) - 1),
            ("2020-12", us(2020, 12, 1), us(2021, 1, 1) - 1),
            ("2020-03-04", us(2020, 3, 4), us(2020, 3, 5) - 1),
            ("2020-03-04T10:00", us(2020, 3, 4, 10), us(2020, 3, 4, 10, 1) - 1),
            ("2020-03-04T10:00:00Z", us(2020, 3, 4, 10), us(2020, 3, 4, 10) + 999_999),
            ("2020-03-04T10:00:00", us(2020, 3, 4, 10), us(2020, 3, 4, 10) + 999_999),
            ("2020-03-04T10:00:00+02:00", us(2020, 3, 4, 8), us(2020, 3, 4, 8) + 999_999),
            ("2020-03-04T10:00:00-05:30", us(2020, 3, 4, 15, 30), us(2020, 3, 4, 15, 30) + 999_999),
            (
                "2020-03-04T10:00:00.5Z",
                us(2020, 3, 4, 10, 0, 0, 500_000),
                us(2020, 3, 4, 10, 0, 0, 599_999),
            ),
            (
                "2020-03-04T10:00:00.123456789Z",
                us(2020, 3, 4, 10, 0, 0, 123_456),
                us(2020, 3, 4, 10, 0, 0, 123_456),
            ),
            ("0001", MIN_US, us(2, 1, 1) - 1),
            ("9999-12-31T23:59:59Z", MAX_US - 999_999, MAX_US),
        ],
    )
    def test_precision_ranges(self, text: str, low: int, high: int) -> None:
        assert parse_date_range(text) == (low, high)

    def test_known_epoch_values(self) -> None:
        assert parse_date_range("1970-01-01T00:00:00Z") == (0, 999_999)
        assert parse_date_range("2020") == (1_577_836_800_000_000, 1_609_459_199_999_999)

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "abc",
            "2020-13",
            "2020-02-30",
            "2021-02-29",
            "0000",
            "20200304",
            "2020-1",
            "2020-03-04T25:00:00Z",
            "2020-03-04T10:60:00Z",
            "2020-03-04T10:00:61Z",
            "2020-03-04T10:00:00+15:00",
            "2020-03-04 10:00:00",
            "\uff12\uff10\uff12\uff10",  # full-width digits
        ],
    )
    def test_invalid_is_none(self, text: str) -> None:
        assert parse_date_range(text) is None

    def test_task_dates(self) -> None:
        assert rows(TASK, "date", "authored-on") == [
            {"low": us(2024, 5, 1, 9, 59), "high": us(2024, 5, 1, 9, 59) + 999_999}
        ]
        assert rows(TASK, "date", "modified") == [
            {"low": us(2024, 5, 1, 10), "high": us(2024, 5, 1, 10) + 999_999}
        ]
        # Period: start's low to end's high ("2024-06" → end of June).
        assert rows(TASK, "date", "period") == [{"low": us(2024, 5, 1), "high": us(2024, 7, 1) - 1}]

    def test_open_periods(self) -> None:
        role = {"resourceType": "PractitionerRole", "period": {"start": "2024"}}
        assert rows(role, "date", "date") == [{"low": us(2024, 1, 1), "high": MAX_US}]
        role = {"resourceType": "PractitionerRole", "period": {"end": "2024"}}
        assert rows(role, "date", "date") == [{"low": MIN_US, "high": us(2025, 1, 1) - 1}]
        role = {"resourceType": "PractitionerRole", "period": {"start": "garbage"}}
        assert rows(role, "date", "date") == []

    def test_timing_events_and_bounds(self) -> None:
        assert rows(SERVICE_REQUEST, "date", "occurrence") == [
            {"low": us(2024, 5, 2), "high": us(2024, 5, 3) - 1},
            {"low": us(2024, 5, 9, 8, 30), "high": us(2024, 5, 9, 8, 30) + 999_999},
            {"low": us(2024, 5, 1), "high": MAX_US},
        ]

    def test_birthdate_and_choice_dates(self) -> None:
        assert rows(PATIENT, "date", "birthdate") == [
            {"low": us(1980, 2, 1), "high": us(1980, 3, 1) - 1}
        ]
        condition = {
            "resourceType": "Condition",
            "onsetPeriod": {"start": "2019-05-05"},
            "abatementDateTime": "2020",
        }
        assert rows(condition, "date", "onset-date") == [{"low": us(2019, 5, 5), "high": MAX_US}]
        assert rows(condition, "date", "abatement-date") == [
            {"low": us(2020, 1, 1), "high": us(2021, 1, 1) - 1}
        ]
        goal = {"resourceType": "Goal", "startDate": "2024-02-01"}
        assert rows(goal, "date", "start-date") == [
            {"low": us(2024, 2, 1), "high": us(2024, 2, 2) - 1}
        ]

    def test_non_date_choice_values_are_skipped(self) -> None:
        procedure = {
            "resourceType": "Procedure",
            "performedString": "last spring",
            "performedAge": {"value": 3},
        }
        assert rows(procedure, "date", "date") == []


class TestNumber:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("100", (100.0, 99.5, 100.5)),
            ("1.5", (1.5, 1.45, 1.55)),
            ("-0.001", (-0.001, -0.0015, -0.0005)),
            ("1e2", (100.0, 50.0, 150.0)),
            ("0", (0.0, -0.5, 0.5)),
        ],
    )
    def test_precision_range(self, text: str, expected: tuple[float, float, float]) -> None:
        assert precision_range(text) == pytest.approx(expected)

    @pytest.mark.parametrize("text", ["", "abc", "NaN", "inf", "1..2", "0x10", "1e9999999"])
    def test_precision_range_rejects(self, text: str) -> None:
        with pytest.raises(ValueError):
            precision_range(text)

    def test_extract_json_numbers(self) -> None:
        nodes = [
            Node(100, "integer"),
            Node(1.5, "decimal"),
            Node(True, "boolean"),
            Node(float("nan"), None),
            Node(1.5, "decimal"),
        ]
        assert number_index.extract(nodes) == [
            {"value": 100.0, "low": 99.5, "high": 100.5},
            {"value": 1.5, "low": pytest.approx(1.45), "high": pytest.approx(1.55)},
        ]


class TestQuantity:
    def test_observation_value_quantity(self) -> None:
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "valueQuantity": {
                "value": 72.5,
                "unit": "kilogram",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            },
            "component": [{"valueQuantity": {"value": 120, "unit": "mmHg"}}],
        }
        [row] = rows(obs, "quantity", "value-quantity")
        assert row == {
            "system": "http://unitsofmeasure.org",
            "code": "kg",
            "value": 72.5,
            "low": pytest.approx(72.45),
            "high": pytest.approx(72.55),
        }
        combo = rows(obs, "quantity", "combo-value-quantity")
        assert [(r["code"], r["value"]) for r in combo] == [("kg", 72.5), ("mmHg", 120.0)]

    def test_age_and_range(self) -> None:
        condition = {
            "resourceType": "Condition",
            "onsetAge": {
                "value": 40,
                "unit": "years",
                "system": "http://unitsofmeasure.org",
                "code": "a",
            },
            "abatementRange": {
                "low": {"value": 50, "code": "a"},
                "high": {"value": 60, "code": "a"},
            },
        }
        assert rows(condition, "quantity", "onset-age") == [
            {
                "system": "http://unitsofmeasure.org",
                "code": "a",
                "value": 40.0,
                "low": 39.5,
                "high": 40.5,
            }
        ]
        assert rows(condition, "quantity", "abatement-age") == [
            {"system": None, "code": "a", "value": 55.0, "low": 50.0, "high": 60.0}
        ]

    def test_open_range_comparator_and_money(self) -> None:
        nodes = [
            Node({"low": {"value": 5, "unit": "mg"}}, "Range"),
            Node({"value": 5, "comparator": "<", "unit": "mg"}, "Quantity"),
            Node({"value": 10.25, "currency": "EUR"}, "Money"),
            Node({"origin": {"value": 0}, "period": 1, "dimensions": 1}, "SampledData"),
            Node({"unit": "mg"}, "Quantity"),
        ]
        assert quantity_index.extract(nodes) == [
            {"system": None, "code": "mg", "value": 5.0, "low": 5.0, "high": math.inf},
            {"system": None, "code": "mg", "value": 5.0, "low": -math.inf, "high": 5.5},
            {
                "system": "urn:iso:std:iso:4217",
                "code": "EUR",
                "value": 10.25,
                "low": pytest.approx(10.245),
                "high": pytest.approx(10.255),
            },
        ]


class TestReference:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Patient/p1", ("Patient", "p1", None)),
            ("Patient/p1/_history/2", ("Patient", "p1", None)),
            ("http://h.org/fhir/Patient/p1", ("Patient", "p1", "http://h.org/fhir/Patient/p1")),
            (
                "https://h.org/a/b/Patient/p.1/_history/9",
                ("Patient", "p.1", "https://h.org/a/b/Patient/p.1"),
            ),
            (
                "urn:uuid:7d4a0a5e-2f1b-4b8e-9c8a-0c6f3e1d2a10",
                (None, None, "urn:uuid:7d4a0a5e-2f1b-4b8e-9c8a-0c6f3e1d2a10"),
            ),
            (
                "http://example.org/not-a-reference",
                (None, None, "http://example.org/not-a-reference"),
            ),
            ("p1", (None, "p1", None)),
            ("#contained", None),
            ("", None),
        ],
    )
    def test_parse_reference(self, text: str, expected: Any) -> None:
        assert parse_reference(text) == expected

    def test_task_references(self) -> None:
        assert rows(TASK, "reference", "patient") == [
            {"target_type": "Patient", "target_id": "p1", "target_url": None}
        ]
        assert rows(TASK, "reference", "subject") == rows(TASK, "reference", "patient")
        assert rows(TASK, "reference", "requester") == [
            {
                "target_type": "PractitionerRole",
                "target_id": "pr1",
                "target_url": "https://fhir.example.org/r4/PractitionerRole/pr1",
            }
        ]
        assert rows(TASK, "reference", "based-on") == [
            {"target_type": "ServiceRequest", "target_id": "sr1", "target_url": None}
        ]

    def test_patient_param_skips_non_patient_subjects(self) -> None:
        task = {**TASK, "for": {"reference": "Group/g1"}}
        assert rows(task, "reference", "patient") == []
        assert rows(task, "reference", "subject") == [
            {"target_type": "Group", "target_id": "g1", "target_url": None}
        ]

    def test_contained_skipped_urn_and_canonical_as_url(self) -> None:
        assert rows(PATIENT, "reference", "general-practitioner") == [
            {"target_type": "Organization", "target_id": "gp1", "target_url": None}
        ]
        assert rows(SERVICE_REQUEST, "reference", "subject") == [
            {
                "target_type": None,
                "target_id": None,
                "target_url": "urn:uuid:7d4a0a5e-2f1b-4b8e-9c8a-0c6f3e1d2a10",
            }
        ]
        assert rows(SERVICE_REQUEST, "reference", "instantiates-canonical") == [
            {
                "target_type": None,
                "target_id": None,
                "target_url": "http://example.org/fhir/PlanDefinition/housing",
            }
        ]

    def test_consent_source_choice_reference(self) -> None:
        consent = {
            "resourceType": "Consent",
            "sourceReference": {"reference": "DocumentReference/d1"},
        }
        assert rows(consent, "reference", "source-reference") == [
            {"target_type": "DocumentReference", "target_id": "d1", "target_url": None}
        ]
        consent = {"resourceType": "Consent", "sourceAttachment": {"url": "http://x"}}
        assert rows(consent, "reference", "source-reference") == []


class TestUriAndCoords:
    def test_meta_profile_and_source(self) -> None:
        assert rows(TASK, "uri", "_profile") == [
            {"value": "http://example.org/StructureDefinition/referral-task"}
        ]
        assert rows(TASK, "uri", "_source") == [{"value": "http://example.org/referral-api"}]
        assert rows(SERVICE_REQUEST, "uri", "instantiates-uri") == [
            {"value": "http://example.org/protocols/housing"}
        ]

    def test_subscription_url(self) -> None:
        sub = {
            "resourceType": "Subscription",
            "status": "active",
            "criteria": "Task?status=x",
            "channel": {"type": "rest-hook", "endpoint": "https://hooks.example.org/x"},
        }
        assert rows(sub, "uri", "url") == [{"value": "https://hooks.example.org/x"}]
        assert rows(sub, "token", "type") == [{"system": None, "code": "rest-hook", "text": None}]

    def test_location_near(self) -> None:
        location = {
            "resourceType": "Location",
            "name": "Hub",
            "position": {"longitude": -1.5491, "latitude": 53.8008},
        }
        assert rows(location, "coords", "near") == [{"latitude": 53.8008, "longitude": -1.5491}]
        bad = {"resourceType": "Location", "position": {"longitude": "x", "latitude": 91}}
        assert rows(bad, "coords", "near") == []


class TestIndexExtractor:
    def test_rows_carry_param_and_kinds_match_tables(self) -> None:
        out = REGISTRY.extractor("Task").extract(TASK)
        assert set(out) <= set(INDEX_TABLES)
        assert set(KINDS) == set(INDEX_TABLES)
        for kind, kind_rows in out.items():
            columns = {c.name for c in INDEX_TABLES[kind].columns} - {"res_pk", "resource_type"}
            for row in kind_rows:
                assert set(row) == columns, (kind, row)

    def test_id_and_last_updated_are_supported_but_not_indexed(self) -> None:
        extractor = REGISTRY.extractor("Task")
        assert set(extractor.supported) >= COLUMN_PARAMS
        params = {r["param"] for kind_rows in extractor.extract(TASK).values() for r in kind_rows}
        assert not params & COLUMN_PARAMS
        assert {"_profile", "_tag", "_security", "_source"} <= params

    def test_composite_and_unsupported_params_are_left_out(self) -> None:
        supported = REGISTRY.extractor("Observation").supported
        assert "code-value-quantity" not in supported
        assert "deceased" not in REGISTRY.extractor("Patient").supported
        assert "_text" not in supported and "_content" not in supported

    def test_near_is_the_only_special(self) -> None:
        assert REGISTRY.extractor("Location").supported["near"].type == "special"
        odd = SearchParam(code="odd", type="special", expression="Task.status", base=("Task",))
        assert IndexExtractor("Task", [odd]).supported == {}

    def test_empty_resource(self) -> None:
        assert REGISTRY.extractor("Task").extract({"resourceType": "Task"}) == {}

    def test_every_row_deduplicated_per_param(self) -> None:
        patient = {**PATIENT, "telecom": [{"system": "email", "value": "a@b.c"}] * 3}
        assert rows(patient, "token", "email") == [{"system": None, "code": "a@b.c", "text": None}]
