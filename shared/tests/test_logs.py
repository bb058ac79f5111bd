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
