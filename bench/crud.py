"""Create and read throughput of the FHIR engine on PostgreSQL, through referral-api running
as a real process (one uvicorn worker; the load generator shares the same 2 cores).

    uv run python bench/crud.py [--creates 3000] [--reads 6000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load, postgres_url, running_service

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
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--reads", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    async with postgres_url() as db, running_service("referral_api", "REFERRAL_API_", db) as base:
        ids: list[str] = []

        async def create(client: httpx.AsyncClient, i: int) -> None:
            r = await client.post(
                f"{base}/fhir/Task", json=task(i), headers={**FHIR, "Prefer": "return=minimal"}
            )
            assert r.status_code == 201, r.text
            ids.append(r.headers["location"].split("/")[-3])

        async def read(client: httpx.AsyncClient, i: int) -> None:
            r = await client.get(f"{base}/fhir/Task/{ids[i % len(ids)]}")
            assert r.status_code == 200

        print("FHIR engine on PostgreSQL, referral-api as one uvicorn process")
        await load("create Task (with index rows)", create, args.creates, args.concurrency)
        await load("read Task by id", read, args.reads, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
