"""What each party may see, as conditions on the ``resources`` table (``narrower``).

Everything is a subquery on the reference index (``sp_reference``), so the database answers
it with the search itself:

- a **CBO** sees the Tasks its Organization owns (``Task.owner``), the ServiceRequests they are
  for (``Task.focus``), their Patients (``Task.for``), the Consents those ServiceRequests cite
  (``supportingInfo``) and the Conditions they give as reasons (``reasonReference``), and the
  Procedures it delivered (``Task.output``, or ``Procedure.basedOn`` one of those requests);
- a **requester** sees the Tasks and ServiceRequests its Organization requested (the requester
  is the Organization or one of its PractitionerRoles), the Patients of those, the Patients it
  manages (``Patient.managingOrganization``), and its Patients' other records;
- both see the directory-like types (Organization, Practitioner, PractitionerRole); nothing
  else. ``None`` means no limit.
"""

from __future__ import annotations

from typing import Any

from closedloop.context import RequestContext
from closedloop.fhir.storage.tables import resources, sp_reference
from sqlalchemy import Select, false, or_, select, union

from referral_api.access.parties import CBO, REQUESTER, UNRESTRICTED, party_of

PUBLIC_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole"})
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
s = sp_reference.c


def referencing(source: str, param: str, target_type: str, target_ids: Any) -> Select[Any]:
    """pks of ``source`` resources whose ``param`` points to ``target_type``/one of
    ``target_ids`` (a value or a subquery of ids)."""
    ids = [target_ids] if isinstance(target_ids, str) else target_ids
    return select(s.res_pk).where(
        s.resource_type == source,
        s.param == param,
        s.target_type == target_type,
        s.target_id.in_(ids),
    )


def referenced(source: str, param: str, target_type: str, source_pks: Any) -> Select[Any]:
    """ids of the ``target_type`` resources that ``source_pks``' ``param`` points to."""
    return select(s.target_id).where(
        s.resource_type == source,
        s.param == param,
        s.target_type == target_type,
        s.res_pk.in_(source_pks),
    )


def pks_of(resource_type: str, ids: Any) -> Select[Any]:
    other = resources.alias("visible_" + resource_type.lower())
    return select(other.c.pk).where(other.c.resource_type == resource_type, other.c.id.in_(ids))


def ids_of(resource_type: str, pks: Any) -> Select[Any]:
    other = resources.alias("party_" + resource_type.lower())
    return select(other.c.id).where(other.c.resource_type == resource_type, other.c.pk.in_(pks))


def cbo_conditions(org: str, resource_type: str) -> list[Any]:
    tasks = referencing("Task", "owner", "Organization", org)
    if resource_type == "Task":
        return [r.pk.in_(tasks)]
    requests = referenced("Task", "focus", "ServiceRequest", tasks)
    if resource_type == "ServiceRequest":
        return [r.id.in_(requests)]
    if resource_type == "Patient":
        return [r.id.in_(referenced("Task", "patient", "Patient", tasks))]
    request_pks = pks_of("ServiceRequest", requests)
    if resource_type == "Consent":
        return [r.id.in_(referenced("ServiceRequest", "supporting-info", "Consent", request_pks))]
    if resource_type == "Condition":
        return [
            r.id.in_(referenced("ServiceRequest", "reason-reference", "Condition", request_pks))
        ]
    if resource_type == "Procedure":
        return [
            or_(
                r.id.in_(referenced("Task", "output", "Procedure", tasks)),
                r.pk.in_(referencing("Procedure", "based-on", "ServiceRequest", requests)),
            )
        ]
    return [false()]


def requester_conditions(org: str, resource_type: str) -> list[Any]:
    roles = ids_of(
        "PractitionerRole", referencing("PractitionerRole", "organization", "Organization", org)
    )

    def requested(source: str) -> Any:
        return or_(
            r.pk.in_(referencing(source, "requester", "Organization", org)),
            r.pk.in_(referencing(source, "requester", "PractitionerRole", roles)),
        )

    if resource_type in ("Task", "ServiceRequest"):
        return [requested(resource_type)]
    tasks = union(
        referencing("Task", "requester", "Organization", org),
        referencing("Task", "requester", "PractitionerRole", roles),
    )
    requests = union(
        referencing("ServiceRequest", "requester", "Organization", org),
        referencing("ServiceRequest", "requester", "PractitionerRole", roles),
    )
    patients = union(
        referenced("Task", "patient", "Patient", tasks),
        referenced("ServiceRequest", "patient", "Patient", requests),
        ids_of("Patient", referencing("Patient", "organization", "Organization", org)),
    )
    if resource_type == "Patient":
        return [r.id.in_(patients)]
    if resource_type in PATIENT_RECORDS:
        return [r.pk.in_(referencing(resource_type, "patient", "Patient", patients))]
    return [false()]


def narrower(ctx: RequestContext, resource_type: str) -> list[Any] | None:
    party = party_of(ctx)
    if party.kind == UNRESTRICTED:
        return None
    if party.organization_id is None:
        return [false()]
    if resource_type in PUBLIC_TYPES:
        return None
    if party.kind == CBO:
        return cbo_conditions(party.organization_id, resource_type)
    if party.kind == REQUESTER:
        return requester_conditions(party.organization_id, resource_type)
    return [false()]
