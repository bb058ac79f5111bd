"""What each party may see, as conditions on the ``resources`` table (``narrower``).

Everything is a subquery on the reference index (``sp_reference``), so the database answers
it with the search itself:

- a **CBO** sees the Tasks its Organization owns (``Task.owner``), the ServiceRequests they are
  for (``Task.focus``), their Patients (``Task.for``), the Consents those ServiceRequests cite
  (``supportingInfo``) and the Conditions they give as reasons (``reasonReference``), and the
  Procedures it delivered (``Task.output``, or ``Procedure.basedOn`` one of those requests);
- a **requester** sees the Tasks and ServiceRequests its Organization requested (the requester
  is the Organization or one of its PractitionerRoles: ``requesters`` keeps which), the
  Patients of those, the Patients it manages (``Patient.managingOrganization``), and its
  Patients' other records;
- both see the directory-like types (Organization, Practitioner, PractitionerRole); nothing
  else. ``None`` means no limit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from closedloop.context import RequestContext
from closedloop.fhir.storage.tables import resources, sp_reference
from sqlalchemy import exists, false, or_

from referral_api.access.parties import CBO, REQUESTER, UNRESTRICTED, party_of
from referral_api.access.requesters import requested_by

# Measure, Questionnaire: the loop metrics' and the patient voice's definitions (their
# $evaluate-measure and $aggregate narrow by role themselves)
PUBLIC_TYPES = frozenset(
    {"Organization", "Practitioner", "PractitionerRole", "Measure", "Questionnaire"}
)
PATIENT_RECORDS = frozenset(
    {
        "Consent",
        "Condition",
        "Procedure",
        "Goal",
        "Observation",
        "QuestionnaireResponse",
        "DocumentReference",
    }
)
r = resources.c


def points(source: str, param: str, target_type: str, **where: Any) -> Any:
    """EXISTS a reference row of ``source``.``param`` to ``target_type`` meeting ``where``:
    ``pk`` (the referring resource's pk), ``to`` (the target id: a value or a column),
    ``also`` (more conditions on the row, given the row's columns). Correlated, so the
    database checks each candidate row through the index instead of building every visible
    id of an organization first (which grows with its history)."""
    ref = sp_reference.alias()
    c = ref.c
    conds = [c.resource_type == source, c.param == param, c.target_type == target_type]
    if "pk" in where:
        conds.append(c.res_pk == where["pk"])
    if "to" in where:
        conds.append(c.target_id == where["to"])
    if "also" in where:
        conds.append(where["also"](c))
    return exists().where(*conds)


def resource_with_id(resource_type: str, id_expr: Any, condition: Any) -> Any:
    """EXISTS the ``resource_type`` resource with id ``id_expr`` meeting ``condition(pk)``."""
    other = resources.alias()
    return exists().where(
        other.c.resource_type == resource_type,
        other.c.id == id_expr,
        other.c.deleted.is_(False),
        condition(other.c.pk),
    )


# -- a CBO: its Tasks and what they reference ----------------------------------------------


def owned_task(org: str, pk: Any) -> Any:
    return points("Task", "owner", "Organization", pk=pk, to=org)


def cbo_request(org: str, sr_id: Any) -> Any:
    """The ServiceRequest ``sr_id`` is the focus of one of the CBO's Tasks."""
    return points(
        "Task", "focus", "ServiceRequest", to=sr_id, also=lambda c: owned_task(org, c.res_pk)
    )


def cbo_request_pk(org: str, sr_pk: Any) -> Any:
    other = resources.alias()
    return exists().where(other.c.pk == sr_pk, cbo_request(org, other.c.id))


def cbo_conditions(org: str, resource_type: str) -> list[Any]:
    if resource_type == "Task":
        return [owned_task(org, r.pk)]
    if resource_type == "ServiceRequest":
        return [cbo_request(org, r.id)]
    if resource_type == "Patient":
        return [
            points("Task", "patient", "Patient", to=r.id, also=lambda c: owned_task(org, c.res_pk))
        ]

    def cited_by_request(param: str) -> Any:
        return points(
            "ServiceRequest",
            param,
            resource_type,
            to=r.id,
            also=lambda c: cbo_request_pk(org, c.res_pk),
        )

    if resource_type == "Consent":
        return [cited_by_request("supporting-info")]
    if resource_type == "Condition":
        return [cited_by_request("reason-reference")]
    if resource_type == "Procedure":
        return [
            or_(
                points(
                    "Task", "output", "Procedure", to=r.id, also=lambda c: owned_task(org, c.res_pk)
                ),
                points(
                    "Procedure",
                    "based-on",
                    "ServiceRequest",
                    pk=r.pk,
                    also=lambda c: cbo_request(org, c.target_id),
                ),
            )
        ]
    return [false()]


# -- a requester: what its Organization requested, and its patients -------------------------


def requester_patient(org: str, patient_id: Any) -> Any:
    return or_(
        points(
            "Task",
            "patient",
            "Patient",
            to=patient_id,
            also=lambda c: requested_by(org, c.res_pk),
        ),
        points(
            "ServiceRequest",
            "patient",
            "Patient",
            to=patient_id,
            also=lambda c: requested_by(org, c.res_pk),
        ),
        resource_with_id(
            "Patient",
            patient_id,
            lambda pk: points("Patient", "organization", "Organization", pk=pk, to=org),
        ),
    )


def requester_conditions(org: str, resource_type: str) -> list[Any]:
    if resource_type in ("Task", "ServiceRequest"):
        return [requested_by(org, r.pk)]
    if resource_type == "Patient":
        return [requester_patient(org, r.id)]
    if resource_type in PATIENT_RECORDS:
        return [
            points(
                resource_type,
                "patient",
                "Patient",
                pk=r.pk,
                also=lambda c: requester_patient(org, c.target_id),
            )
        ]
    return [false()]


def narrower(ctx: RequestContext, resource_type: str) -> list[Any] | None:
    party = party_of(ctx)
    if party.kind == UNRESTRICTED:
        return None
    if party.organization_id is None:
        return [false()]
    if resource_type in PUBLIC_TYPES:
        return None
    return list(conditions(party.kind, party.organization_id, resource_type))


@lru_cache(maxsize=4096)
def conditions(kind: str, org: str, resource_type: str) -> tuple[Any, ...]:
    """The SQL of one party's visibility of one type, built once: the same expression objects
    each time let SQLAlchemy reuse the statement's compiled form."""
    if kind == CBO:
        return tuple(cbo_conditions(org, resource_type))
    if kind == REQUESTER:
        return tuple(requester_conditions(org, resource_type))
    return (false(),)
