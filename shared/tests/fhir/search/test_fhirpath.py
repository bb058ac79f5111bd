"""The compiled FHIRPath subset: paths, choice types, as/ofType, where() and what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from closedloop.fhir.search.fhirpath import Node, compile_expression, split_union


def run(expression: str, resource: dict[str, Any]) -> list[Node]:
    evaluate = compile_expression(expression, resource["resourceType"])
    assert evaluate is not None, expression
    return evaluate(resource)


def values(expression: str, resource: dict[str, Any]) -> list[Any]:
    return [n.value for n in run(expression, resource)]


OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p1"},
    "effectivePeriod": {"start": "2024-01-01", "end": "2024-01-02"},
    "valueQuantity": {
        "value": 72.5,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    },
    "component": [
        {"code": {"text": "a"}, "valueCodeableConcept": {"text": "High"}},
        {"code": {"text": "b"}, "valueString": "abc"},
        {"code": {"text": "c"}, "valueQuantity": {"value": 3}},
    ],
}


class TestPaths:
    def test_dotted_path_flattens_arrays_at_every_step(self) -> None:
        patient = {
            "resourceType": "Patient",
            "name": [{"given": ["A", "B"]}, {"given": ["C"]}, {"family": "X"}],
        }
        assert values("Patient.name.given", patient) == ["A", "B", "C"]

    def test_nulls_padding_primitive_arrays_are_skipped(self) -> None:
        patient = {
            "resourceType": "Patient",
            "name": [{"given": [None, "B"]}],
            "_name": [{"_given": [{"extension": []}, None]}],
        }
        assert values("Patient.name.given", patient) == ["B"]

    def test_missing_elements_give_empty(self) -> None:
        assert run("Task.owner", {"resourceType": "Task"}) == []
        assert run("Task.restriction.period", {"resourceType": "Task"}) == []

    def test_primitive_has_no_children(self) -> None:
        assert run("Task.status.code", {"resourceType": "Task", "status": "draft"}) == []

    def test_resource_and_domainresource_roots(self) -> None:
        task = {"resourceType": "Task", "meta": {"tag": [{"code": "a"}, {"code": "b"}]}}
        assert values("Resource.meta.tag.code", task) == ["a", "b"]
        assert values("DomainResource.meta.tag.code", task) == ["a", "b"]

    def test_root_alone_is_the_resource_typed(self) -> None:
        nodes = run("Observation", OBSERVATION)
        assert nodes == [Node(OBSERVATION, "Observation")]

    def test_backticked_name(self) -> None:
        task = {"resourceType": "Task", "for": {"reference": "Patient/1"}}
        assert values("Task.`for`", task) == [{"reference": "Patient/1"}]
        assert values("Task.for", task) == [{"reference": "Patient/1"}]


class TestUnion:
    def test_keeps_only_alternatives_rooted_at_the_type(self) -> None:
        expr = "Patient.address.city | Person.address.city | Practitioner.address.city"
        patient = {"resourceType": "Patient", "address": [{"city": "Leeds"}]}
        assert values(expr, patient) == ["Leeds"]
        practitioner = {"resourceType": "Practitioner", "address": [{"city": "York"}]}
        assert values(expr, practitioner) == ["York"]

    def test_no_alternative_for_the_type_compiles_to_none(self) -> None:
        assert compile_expression("Person.name | RelatedPerson.name", "Patient") is None

    def test_union_concatenates(self) -> None:
        org = {"resourceType": "Organization", "name": "Acme", "alias": ["A1", "A2"]}
        assert values("Organization.name | Organization.alias", org) == ["Acme", "A1", "A2"]

    def test_unsupported_alternative_of_another_type_does_not_matter(self) -> None:
        expr = "Patient.name | Bundle.entry[0].resource"
        assert compile_expression(expr, "Patient") is not None
        assert compile_expression(expr, "Bundle") is None

    def test_split_union_respects_parens_and_quotes(self) -> None:
        assert split_union("(A.b | A.c).d | A.e.where(x='|')") == [
            "(A.b | A.c).d",
            "A.e.where(x='|')",
        ]


class TestChoiceTypes:
    def test_choice_element_found_by_suffix_with_its_type(self) -> None:
        nodes = run("Observation.value", OBSERVATION)
        assert nodes == [Node(OBSERVATION["valueQuantity"], "Quantity")]

    def test_primitive_suffix_is_lower_camel(self) -> None:
        condition = {"resourceType": "Condition", "onsetDateTime": "2020-01-01"}
        assert run("Condition.onset", condition) == [Node("2020-01-01", "dateTime")]

    def test_period_choice(self) -> None:
        assert run("Observation.effective", OBSERVATION) == [
            Node(OBSERVATION["effectivePeriod"], "Period")
        ]

    def test_choice_inside_repeating_element(self) -> None:
        nodes = run("Observation.component.value", OBSERVATION)
        assert [n.type for n in nodes] == ["CodeableConcept", "string", "Quantity"]

    def test_dot_as_function(self) -> None:
        condition = {"resourceType": "Condition", "onsetDateTime": "2020-01-01"}
        assert values("Condition.onset.as(dateTime)", condition) == ["2020-01-01"]
        assert values("Condition.onset.as(Period)", condition) == []
        with_period: dict[str, Any] = {
            "resourceType": "Condition",
            "onsetPeriod": {"start": "2020"},
        }
        assert values("Condition.onset.as(dateTime) | Condition.onset.as(Period)", with_period) == [
            {"start": "2020"}
        ]

    def test_age_and_range(self) -> None:
        condition = {"resourceType": "Condition", "abatementAge": {"value": 40, "unit": "a"}}
        expr = "Condition.abatement.as(Age) | Condition.abatement.as(Range)"
        assert run(expr, condition) == [Node({"value": 40, "unit": "a"}, "Age")]

    def test_infix_as_in_parentheses(self) -> None:
        assert run("(Observation.value as Quantity)", OBSERVATION) == [
            Node(OBSERVATION["valueQuantity"], "Quantity")
        ]
        assert run("(Observation.value as CodeableConcept)", OBSERVATION) == []

    def test_infix_as_lower_case_type(self) -> None:
        goal = {
            "resourceType": "Goal",
            "startDate": "2024-02-01",
            "target": [{"dueDate": "2024-03-01"}, {"dueDuration": {"value": 3}}],
        }
        assert run("(Goal.start as date)", goal) == [Node("2024-02-01", "date")]
        assert values("(Goal.target.due as date)", goal) == ["2024-03-01"]

    def test_parenthesised_then_path(self) -> None:
        expr = (
            "(Observation.value as string) | (Observation.component.value as CodeableConcept).text"
        )
        assert values(expr, OBSERVATION) == ["High"]

    def test_of_type(self) -> None:
        assert values("Observation.component.value.ofType(string)", OBSERVATION) == ["abc"]
        assert values("Observation.component.value.ofType(Quantity)", OBSERVATION) == [{"value": 3}]

    def test_as_keeps_nodes_of_unknown_type(self) -> None:
        patient = {"resourceType": "Patient", "name": [{"family": "Doe"}]}
        assert values("Patient.name.as(HumanName)", patient) == [{"family": "Doe"}]

    def test_as_on_sub_expression_filters_typed_nodes(self) -> None:
        assert values("(Observation.component.value) as string", OBSERVATION) == ["abc"]

    def test_unknown_suffix_is_not_a_choice(self) -> None:
        # ``valueSet`` is not ``value`` of type "Set".
        resource = {"resourceType": "Observation", "valueSet": "x"}
        assert run("Observation.value", resource) == []


class TestWhere:
    TASK: dict[str, Any] = {"resourceType": "Task", "for": {"reference": "Patient/p1"}}

    @pytest.mark.parametrize(
        "reference",
        [
            "Patient/p1",
            "Patient/p1/_history/2",
            "http://example.org/fhir/Patient/p1",
            "https://example.org/fhir/Patient/p1/_history/7",
        ],
    )
    def test_resolve_is_type_matches(self, reference: str) -> None:
        task = {"resourceType": "Task", "for": {"reference": reference}}
        assert values("Task.for.where(resolve() is Patient)", task) == [{"reference": reference}]

    @pytest.mark.parametrize(
        "target",
        [
            {"reference": "Group/g1"},
            {"reference": "http://example.org/fhir/Group/g1"},
            {"reference": "#contained"},
            {"display": "nobody"},
            {"reference": "urn:uuid:4b7c0e4e-8a49-4a3c-9d6b-1e3c1b0b7a11"},
        ],
    )
    def test_resolve_is_type_rejects(self, target: dict[str, Any]) -> None:
        task = {"resourceType": "Task", "for": target}
        assert run("Task.for.where(resolve() is Patient)", task) == []

    def test_resolve_falls_back_to_declared_type(self) -> None:
        target = {"reference": "urn:uuid:4b7c0e4e-8a49-4a3c-9d6b-1e3c1b0b7a11", "type": "Patient"}
        task = {"resourceType": "Task", "for": target}
        assert values("Task.for.where(resolve() is Patient)", task) == [target]

    def test_where_field_equals_literal(self) -> None:
        patient = {
            "resourceType": "Patient",
            "telecom": [
                {"system": "phone", "value": "123"},
                {"system": "email", "value": "a@b.c"},
                {"system": "email", "value": "d@e.f"},
            ],
        }
        assert values("Patient.telecom.where(system='email')", patient) == [
            {"system": "email", "value": "a@b.c"},
            {"system": "email", "value": "d@e.f"},
        ]
        assert (
            values("Patient.telecom.where(system='email' or system='phone')", patient)
            == patient["telecom"]
        )
        assert values("Patient.telecom.where(system = 'phone' and value = '123')", patient) == [
            patient["telecom"][0]
        ]
        assert values("Patient.telecom.where(system != 'email')", patient) == [
            patient["telecom"][0]
        ]

    def test_where_nested_path_and_literals(self) -> None:
        patient = {
            "resourceType": "Patient",
            "link": [
                {"other": {"reference": "Patient/2"}, "type": "seealso"},
                {"other": {"reference": "Patient/3"}, "type": "refer"},
            ],
        }
        assert values("Patient.link.where(other.reference='Patient/3').type", patient) == ["refer"]
        patient = {"resourceType": "Patient", "contact": [{"x": True}, {"x": 1}]}
        assert values("Patient.contact.where(x=true)", patient) == [{"x": True}]
        assert values("Patient.contact.where(x=1)", patient) == [{"x": 1}]

    def test_escaped_string_literal(self) -> None:
        patient = {"resourceType": "Patient", "telecom": [{"system": "it's"}]}
        assert len(run("Patient.telecom.where(system='it\\'s')", patient)) == 1

    def test_where_result_nodes_are_untyped(self) -> None:
        nodes = run("Task.for.where(resolve() is Patient)", self.TASK)
        assert nodes[0].type is None


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.deceased.exists() and Patient.deceased != false",
        "Patient.name.first()",
        "Patient.name[0]",
        "Patient.name.where(given.exists())",
        "Patient.telecom.where($this.system='x')",
        "Patient.deceased is boolean",
        "%resource.name",
        "name.given",
        "Patient.extension('http://x')",
        "Patient.name.given + 'x'",
        "Patient.name.",
        "(Patient.name",
        "",
        "Patient.telecom.where(system in 'x')",
        "Patient.name.resolve()",
    ],
)
def test_unsupported_compiles_to_none(expression: str) -> None:
    assert compile_expression(expression, "Patient") is None


def test_compiled_once_per_expression_and_type() -> None:
    first = compile_expression("Task.status", "Task")
    assert first is compile_expression("Task.status", "Task")
