"""The engine's test service plus ``slow=<seconds>`` on Patient: a search that keeps the
database busy that long (``pg_sleep`` on PostgreSQL, a counting recursive query on SQLite).

It goes through ``SearchParam.condition``, the seam services use for their own parameters, so
the slow statement runs exactly where a runaway search would. ``create_app`` reads its database
URL and time limit from the environment, so a test can serve it from a real uvicorn process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from closedloop.db import is_postgres
from closedloop.fhir.search.definitions import SearchParam
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from fastapi import FastAPI
from sqlalchemy import func, literal, select, text

MIGRATIONS = Path(__file__).parent / "migrations"
TYPES = ["Patient", "Observation", "Practitioner"]


def slow_param(postgres: bool) -> SearchParam:
    def condition(value: str, _r: Any, _resource_type: str) -> Any:
        seconds = int(value)
        if postgres:
            return select(literal(1)).select_from(func.pg_sleep(seconds)).scalar_subquery() == 1
        steps = seconds * 50_000_000  # far more than SQLite counts in that time
        return text(
            "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            f"WHERE x < {steps}) SELECT count(*) FROM c) > 0"
        )

    return SearchParam(
        code="slow", type="number", expression="Patient.id", base=("Patient",), condition=condition
    )


def build(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        name="slow-test",
        settings=settings,
        resource_types=TYPES,
        migrations=MIGRATIONS,
        search_params=[slow_param(is_postgres(settings.database_url))],
    )


def create_app() -> FastAPI:
    """For ``uvicorn --factory``: settings from ``SLOWTEST_*`` variables."""
    return build(ServiceSettings(_env_prefix="SLOWTEST_"))  # type: ignore[call-arg]
