"""Create and read throughput of the FHIR engine on PostgreSQL, through referral-api running as
a real process (one uvicorn worker). Load comes from wrk when installed (`apt-get install wrk`;
it costs the shared 2 cores little), else from an httpx client in this process.

    uv run python bench/crud.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load, postgres_url, running_service, wrk_available, wrk_load

FHIR = {"Content-Type": "application/fhir+json"}


def task(i: int) -> dict:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/sr-{i}"},
        "for": {"reference": f"Patient/p-{i % 500}"},
        "authoredOn": "2026-11-01T10:00:00Z",
        "requester": {"reference": "PractitionerRole/dr-1"},
        "owner": {"reference": f"Organization/cbo-{i % 50}"},
        "identifier": [{"system": "urn:bench", "value": uuid.uuid4().hex}],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    async with postgres_url() as db, running_service("referral_api", "REFERRAL_API_", db) as base:
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{base}/fhir/Task", json=task(0), headers=FHIR)
            task_url = f"{base}/fhir/Task/{r.json()['id']}"
        print("FHIR engine on PostgreSQL, referral-api as one uvicorn process")
        if wrk_available():
            wrk_load(
                "create Task (resource + history + index)",
                f"{base}/fhir/Task",
                method="POST",
                body=orjson.dumps(task(1)).decode(),
                headers={**FHIR, "Prefer": "return=minimal"},
                seconds=args.seconds,
                connections=args.connections,
            )
            wrk_load(
                "read Task by id", task_url, seconds=args.seconds, connections=args.connections
            )
            return
        print("(wrk not installed: load from httpx in this process, which takes CPU too)")

        async def create(c: httpx.AsyncClient, i: int) -> None:
            r = await c.post(
                f"{base}/fhir/Task", json=task(i), headers={**FHIR, "Prefer": "return=minimal"}
            )
            assert r.status_code == 201, r.text

        async def read(c: httpx.AsyncClient, i: int) -> None:
            assert (await c.get(task_url)).status_code == 200

        await load("create Task (resource + history + index)", create, 2000, args.connections)
        await load("read Task by id", read, 4000, args.connections)


if __name__ == "__main__":
    asyncio.run(main())
