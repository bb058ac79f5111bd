"""Request logs are JSON lines with a request id and never carry resource bodies or query
strings (they hold PHI)."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
from closedloop.logs import JsonFormatter
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import app_client

MIGRATIONS = Path(__file__).parent / "fhir" / "rest" / "migrations"


async def test_request_log_has_id_and_no_phi(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    settings = ServiceSettings(database_url=f"sqlite:///{tmp_path}/logs.db")
    app = create_service_app(
        name="log-test", settings=settings, resource_types=["Patient"], migrations=MIGRATIONS
    )
    secret_name, secret_mrn = "Zyxwvutsrq", "MRN-987654321"
    with caplog.at_level(logging.INFO):
        async with app_client(app) as client:
            await client.post(
                "/fhir/Patient",
                json={"resourceType": "Patient", "name": [{"family": secret_name}]},
                headers={"Content-Type": "application/fhir+json", "X-Request-ID": "req-42"},
            )
            await client.get(f"/fhir/Patient?identifier={secret_mrn}")
            await client.post(
                "/fhir/Patient",
                content=b'{"broken": ' + secret_name.encode(),
                headers={"Content-Type": "application/fhir+json"},
            )
    formatter = JsonFormatter("log-test")
    lines = [formatter.format(r) for r in caplog.records]
    access = [orjson.loads(line) for line in lines if '"msg":"request"' in line]
    assert access[0]["request_id"] == "req-42"
    assert access[0]["method"] == "POST" and access[0]["path"] == "/fhir/Patient"
    assert access[0]["status"] == 201
    leaks = [line for line in lines if secret_name in line or secret_mrn in line]
    assert leaks == []


async def test_a_database_error_logs_no_parameters_or_bodies(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    """A write whose SQL fails (here a before-commit hook writing the body to a table that is
    not there, as an outbox would) answers a 500 OperationOutcome; at DEBUG, no log line holds
    the body: SQLAlchemy's error message carries no parameters, the traceback withholds the
    driver's message, and the drivers' and SQLAlchemy's own debug logs stay quiet."""
    from closedloop.hooks import HookPoint, Hooks
    from sqlalchemy import text

    marker = "Zmarker-4711-Hausmann"
    hooks = Hooks()

    async def outbox_to_nowhere(_ctx: object, uow: object) -> None:
        for change in uow.changes:  # type: ignore[attr-defined]
            await uow.conn.execute(  # type: ignore[attr-defined]
                text("INSERT INTO no_such_outbox (body) VALUES (:body)"),
                {"body": orjson.dumps(change.resource).decode()},
            )

    hooks.register(HookPoint.BEFORE_COMMIT, outbox_to_nowhere)
    app = create_service_app(
        name="log-test",
        settings=ServiceSettings(database_url=database_url),
        resource_types=["Patient"],
        migrations=MIGRATIONS,
        hooks=hooks,
    )
    with caplog.at_level(logging.DEBUG):
        async with app_client(app) as client:
            r = await client.post(
                "/fhir/Patient",
                json={"resourceType": "Patient", "name": [{"family": marker}]},
                headers={"Content-Type": "application/fhir+json"},
            )
            assert r.status_code == 500
            assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "CL-0500"
            assert marker not in r.text
    formatter = JsonFormatter("log-test")
    lines = [formatter.format(record) for record in caplog.records]
    errors = [line for line in lines if '"msg":"unhandled error"' in line]
    assert errors and "no_such_outbox" in errors[0]  # the error is logged, with its statement
    assert [line for line in lines if marker in line] == []
