"""Create and read throughput of the FHIR engine on PostgreSQL, through referral-api running as
a real process (one uvicorn worker), next to the raw asyncpg endpoint (bench/raw_endpoint.py)
making the same writes and reads without the engine: the ratio is what the engine keeps of the
floor. Load comes from wrk when installed (`apt-get install wrk`; it costs the shared 2 cores
little), else from an httpx client in this process.

The two run back to back on one database, ``--rounds`` times, and the medians are reported:
on a shared machine one run alone says little.

    uv run python bench/crud.py [--seconds 10] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load, postgres_url, running_service, wrk_available, wrk_load
from raw_endpoint import running_raw_endpoint

FHIR = {"Content-Type": "application/fhir+json"}
CREATE_RATIO_GOAL = 0.5
READ_RATIO_GOAL = 0.7
# Events are still written to the outbox with each create; delivering them is the dispatcher's
# background work, measured by bench/notifier.py (and nothing here listens on the default sink)
NO_DELIVERY = {"REFERRAL_API_EVENT_SINK_URL": ""}


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


Run = Callable[[str, str], dict[str, float]]


def wrk_runs(args: argparse.Namespace) -> tuple[Run, Run]:
    """(create, read) runs driven by wrk: one Task body posted over and over, one id read."""
    wrk = {"seconds": args.seconds, "connections": args.connections}
    body = orjson.dumps(task(1)).decode()
    headers = {**FHIR, "Prefer": "return=minimal"}

    def create(name: str, url: str) -> dict[str, float]:
        return wrk_load(name, url, method="POST", body=body, headers=headers, **wrk)

    def read(name: str, url: str) -> dict[str, float]:
        return wrk_load(name, url, **wrk)

    return create, read


def httpx_runs(args: argparse.Namespace) -> tuple[Run, Run]:
    """(create, read) runs from an httpx client in this process (when wrk is missing)."""
    headers = {**FHIR, "Prefer": "return=minimal"}

    def create(name: str, url: str) -> dict[str, float]:
        async def one(c: httpx.AsyncClient, i: int) -> None:
            r = await c.post(url, content=orjson.dumps(task(i)), headers=headers)
            assert r.status_code == 201, r.text

        return asyncio.run(load(name, one, 2000, args.connections))

    def read(name: str, url: str) -> dict[str, float]:
        async def one(c: httpx.AsyncClient, _i: int) -> None:
            assert (await c.get(url)).status_code == 200

        return asyncio.run(load(name, one, 4000, args.connections))

    return create, read


def ratio_line(name: str, ours: float, raw: float, goal: float) -> str:
    verdict = "ok" if ours / raw >= goal else "BELOW GOAL"
    return (
        f"{name:<8} engine {ours:6.0f} req/s   raw {raw:6.0f} req/s   "
        f"{ours / raw:5.2f}x of raw   (goal >= {goal}x: {verdict})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"FHIR engine (referral-api, one uvicorn process) and the raw asyncpg endpoint on "
        f"PostgreSQL, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before start "
        "(other work skews the figures)"
    )
    if wrk_available():
        create, read = wrk_runs(args)
    else:
        print("(wrk not installed: load from httpx in this process, which takes CPU too)")
        create, read = httpx_runs(args)
    figures: dict[str, list[float]] = {}
    async with (
        postgres_url() as db,
        running_service("referral_api", "REFERRAL_API_", db, NO_DELIVERY) as base,
        running_raw_endpoint(db) as raw,
    ):
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{base}/fhir/Task", json=task(0), headers=FHIR)
            assert r.status_code == 201, r.text
            task_id = r.json()["id"]
            r = await client.post(f"{raw}/create/Task", json=task(0), headers=FHIR)
            assert r.status_code == 201, r.text
        runs: list[tuple[str, Run, str]] = [
            ("create Task (engine)", create, f"{base}/fhir/Task"),
            ("create Task (raw)", create, f"{raw}/create/Task"),
            ("read Task by id (engine)", read, f"{base}/fhir/Task/{task_id}"),
            ("read Task by id (raw)", read, f"{raw}/read/Task/{task_id}"),
        ]
        for n in range(args.rounds):
            print(f"\nRound {n + 1} of {args.rounds}")
            for name, run, url in runs:
                # wrk blocks: off the event loop, so nothing here stalls meanwhile
                result: dict[str, Any] = await asyncio.to_thread(run, name, url)
                figures.setdefault(name, []).append(result["rps"])
    median = {name: statistics.median(values) for name, values in figures.items()}
    print(f"\nMedians of {args.rounds} rounds")
    print(
        ratio_line(
            "create",
            median["create Task (engine)"],
            median["create Task (raw)"],
            CREATE_RATIO_GOAL,
        )
    )
    print(
        ratio_line(
            "read",
            median["read Task by id (engine)"],
            median["read Task by id (raw)"],
            READ_RATIO_GOAL,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
