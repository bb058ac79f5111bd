"""Loading the standard R4 search parameters, the registry, and how many of them compile."""

from __future__ import annotations

from closedloop.fhir.search import definitions
from closedloop.fhir.search.definitions import SearchParam, SearchParamRegistry, load_standard
from closedloop.fhir.search.fhirpath import compile_expression

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

# Standard parameters of TYPES (composite excluded) that the FHIRPath subset refuses. A change
# here is a regression (or progress): update the list deliberately.
EXPECTED_NOT_COMPILED = {
    ("Patient", "deceased"),  # Patient.deceased.exists() and Patient.deceased != false
}
# Defined by the spec without any FHIRPath expression: not indexable from the resource.
WITHOUT_EXPRESSION = {"_text", "_content", "_query"}


def test_load_standard_narrows_base_to_requested_types() -> None:
    params = load_standard(["Task", "Patient"])
    by_url = {p.url: p for p in params}
    assert all(p.url.startswith("http://hl7.org/fhir/SearchParameter/") for p in params)
    assert by_url["http://hl7.org/fhir/SearchParameter/Task-status"].base == ("Task",)
    identifier = by_url["http://hl7.org/fhir/SearchParameter/Patient-identifier"]
    assert identifier.base == ("Patient",) and identifier.type == "token"
    email = by_url["http://hl7.org/fhir/SearchParameter/individual-email"]
    assert email.base == ("Patient",)
    assert email.expression is not None and "Practitioner.telecom" in email.expression
    # Resource-level parameters apply to every requested type.
    assert by_url["http://hl7.org/fhir/SearchParameter/Resource-tag"].base == ("Task", "Patient")
    assert by_url["http://hl7.org/fhir/SearchParameter/DomainResource-text"].base == (
        "Task",
        "Patient",
    )
    assert not any("Observation" in p.base for p in params)


def test_load_standard_fields() -> None:
    params = {(p.code, p.base): p for p in load_standard(["Task"])}
    patient = params[("patient", ("Task",))]
    assert patient.type == "reference"
    assert patient.expression == "Task.for.where(resolve() is Patient)"
    assert patient.target == ("Patient",)
    assert patient.description
    authored = params[("authored-on", ("Task",))]
    assert "ge" in authored.comparators
    codes = {p.code for p in load_standard(["Task"])}
    assert {"_id", "_lastUpdated", "_profile", "_tag", "_security", "_source"} <= codes


def test_load_standard_reads_the_bundle_once() -> None:
    load_standard(["Task"])
    before = definitions._standard_entries.cache_info()
    load_standard(["Patient"])
    after = definitions._standard_entries.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 1


def test_load_standard_unknown_type_gets_only_resource_params() -> None:
    codes = {p.code for p in load_standard(["NotAType"])}
    assert codes and all(code.startswith("_") for code in codes)
    assert load_standard([]) == []


def test_standard_params_compile() -> None:
    params = [p for p in load_standard(TYPES) if p.type != "composite"]
    total, failed, no_expression = 0, set(), set()
    for param in params:
        for resource_type in param.base:
            if not param.expression:
                no_expression.add(param.code)
                continue
            total += 1
            if compile_expression(param.expression, resource_type) is None:
                failed.add((resource_type, param.code))
    print(
        f"\n{total - len(failed)}/{total} standard (type, param) pairs compile; "
        f"not compiled: {sorted(failed)}; no expression: {sorted(no_expression)}"
    )
    assert failed == EXPECTED_NOT_COMPILED
    assert no_expression == WITHOUT_EXPRESSION
    assert (total - len(failed)) / total >= 0.95


def test_registry_for_type_and_get() -> None:
    registry = SearchParamRegistry(load_standard(TYPES))
    task = registry.for_type("Task")
    assert {"status", "patient", "subject", "owner", "_id", "_lastUpdated", "_tag"} <= set(task)
    assert "_text" not in task
    assert registry.get("Task", "status") is task["status"]
    assert registry.get("Task", "nope") is None
    assert registry.get("Patient", "deceased") is None
    assert "deceased" in registry.defined("Patient")
    assert registry.get("Location", "near") is not None


def test_registry_later_add_replaces_and_invalidates_extractor() -> None:
    registry = SearchParamRegistry(load_standard(["Task"]))
    before = registry.extractor("Task")
    assert registry.extractor("Task") is before
    custom = SearchParam(
        code="status",
        type="token",
        expression="Task.businessStatus",
        base=("Task",),
        url="http://example.org/SearchParameter/status",
    )
    registry.add(custom)
    assert registry.get("Task", "status") is custom
    after = registry.extractor("Task")
    assert after is not before
    out = after.extract(
        {"resourceType": "Task", "status": "draft", "businessStatus": {"text": "Waiting"}}
    )
    assert [r for r in out["token"] if r["param"] == "status"] == [
        {"system": None, "code": None, "text": "waiting", "param": "status"}
    ]


def test_registry_resource_level_custom_param_applies_everywhere() -> None:
    registry = SearchParamRegistry(load_standard(["Task", "Patient"]))
    registry.extractor("Patient")
    lang = SearchParam(
        code="_language", type="token", expression="Resource.language", base=("Resource",)
    )
    registry.add(lang)
    assert registry.get("Task", "_language") is lang
    rows = registry.extractor("Patient").extract({"resourceType": "Patient", "language": "en"})
    assert {"system": None, "code": "en", "text": None, "param": "_language"} in rows["token"]


def test_registry_unsupported_expression_is_not_searchable() -> None:
    bad = SearchParam(code="x", type="token", expression="Task.input.first()", base=("Task",))
    registry = SearchParamRegistry([bad])
    assert registry.for_type("Task") == {}
    assert registry.defined("Task") == {"x": bad}
