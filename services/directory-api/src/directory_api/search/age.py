"""``age=34`` on HealthcareService: the service's AGE_RANGE_EXTENSION valueRange admits 34.

``age-low``/``age-high`` index the range's bounds as numbers; ``age`` matches when
(no low bound or low <= age) and (no high bound or age <= high). A service without the
extension has neither bound, so it admits every age.
"""

from __future__ import annotations

from typing import Any

from closedloop import errors
from closedloop.fhir.search.limits import shown
from closedloop.fhir.storage.tables import INDEX_TABLES
from sqlalchemy import ColumnElement, and_, exists, not_, or_

LOW_PARAM = "age-low"
HIGH_PARAM = "age-high"


_MAX_AGE = 1000  # years: far beyond any range a service states, well inside a float's integers


def parse_age(value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 4 or int(text) > _MAX_AGE:
        raise errors.invalid(
            f"age must be a whole number of years from 0 to {_MAX_AGE}, not {shown(value)}",
            cl_code="CL-9410",
        )
    return int(text)


def _bound(r: Any, resource_type: str, param: str, admits: Any) -> ColumnElement[bool]:
    """No row for ``param`` on the resource, or one that admits the age."""
    t = INDEX_TABLES["number"].alias()
    scope = and_(t.c.res_pk == r.c.pk, t.c.resource_type == resource_type, t.c.param == param)
    return or_(not_(exists().where(scope)), exists().where(scope, admits(t.c.value)))


def age_condition(value: str, r: Any, resource_type: str) -> ColumnElement[bool]:
    age = parse_age(value)
    return and_(
        _bound(r, resource_type, LOW_PARAM, lambda v: v <= age),
        _bound(r, resource_type, HIGH_PARAM, lambda v: v >= age),
    )
