"""From the commit of a Task update to the rest-hook receipt: p50 and p95 over N updates on
PostgreSQL, and notifications per second. referral-api and notifier run as real processes
(referral-api's outbox -> notifier intake -> subscription match -> delivery); the receiver is
a real HTTP server in this process. Latency is measured from the Task's ``meta.lastUpdated``
(stamped in the writing transaction) to the receipt of its notification (same machine clock).

    uv run python bench/notifier.py [--updates 1000] [--tasks 20] [--rate 20]
    uv run python bench/notifier.py --rate 0     # throughput: updates as fast as they go
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import postgres_url, running_service
from closedloop.testing import Receiver, free_port

FHIR = {"Content-Type": "application/fhir+json"}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
STATUSES = ["accepted", "in-progress", "on-hold", "in-progress"]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=float,
        default=20.0,
        help="Task updates per second, all walkers together (0: as fast as "
        "possible, to measure throughput)",
    )
    args = parser.parse_args()
    async with AsyncExitStack() as stack:
        ref_db = await stack.enter_async_context(postgres_url())
        not_db = await stack.enter_async_context(postgres_url())
        port = free_port()
        token = secrets.token_urlsafe(32)  # referral-api's secret for the notifier's intake
        referral = await stack.enter_async_context(
            running_service(
                "referral_api",
                "REFERRAL_API_",
                ref_db,
                {
                    "REFERRAL_API_EVENT_SINK_URL": f"http://127.0.0.1:{port}/events",
                    "REFERRAL_API_EVENT_SINK_TOKEN": token,
                },
            )
        )
        notifier = await stack.enter_async_context(
            running_service(
                "notifier",
                "NOTIFIER_",
                not_db,
                {
                    "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
                    "NOTIFIER_REFERRAL_URL": f"{referral}/fhir",
                    "NOTIFIER_DELIVERY_POLL_SECONDS": "0.05",
                    "NOTIFIER_EVENTS_TOKEN": token,
                },
                port=port,
            )
        )
        rx = await stack.enter_async_context(Receiver())
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        base = f"{referral}/fhir"
        sub = await client.post(
            f"{notifier}/fhir/Subscription",
            headers=FHIR,
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "bench",
                "criteria": "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task",
                "_criteria": {
                    "extension": [
                        {
                            "url": f"{BACKPORT}/backport-filter-criteria",
                            "valueString": "Task?owner=Organization/cbo-bench&status:not=requested",
                        }
                    ]
                },
                "channel": {
                    "type": "rest-hook",
                    "endpoint": rx.url,
                    "payload": "application/fhir+json",
                    "_payload": {
                        "extension": [
                            {
                                "url": f"{BACKPORT}/backport-payload-content",
                                "valueCode": "full-resource",
                            }
                        ]
                    },
                },
            },
        )
        assert sub.status_code == 201, sub.text
        await rx.wait_for(1)
        tasks = []
        for _ in range(args.tasks):
            patient = (
                await client.post(f"{base}/Patient", json={"resourceType": "Patient"}, headers=FHIR)
            ).json()
            tasks.append(
                (
                    await client.post(
                        f"{base}/Task",
                        headers=FHIR,
                        json={
                            "resourceType": "Task",
                            "status": "requested",
                            "intent": "order",
                            "code": {
                                "coding": [
                                    {
                                        "system": "http://hl7.org/fhir/CodeSystem/task-code",
                                        "code": "fulfill",
                                    }
                                ]
                            },
                            "focus": {"reference": "ServiceRequest/sr-bench"},
                            "for": {"reference": f"Patient/{patient['id']}"},
                            "authoredOn": "2026-11-22",
                            "requester": {"reference": "Organization/clinic"},
                            "owner": {"reference": "Organization/cbo-bench"},
                        },
                    )
                ).json()
            )
        per_task = args.updates // args.tasks

        pause = args.tasks / args.rate if args.rate else 0.0

        async def walk(task: dict, offset: float) -> None:
            await asyncio.sleep(offset)  # stagger the walkers: updates arrive evenly
            for i in range(per_task):
                if pause:
                    await asyncio.sleep(pause)
                status = STATUSES[min(i, 1) if i < 2 else 2 + (i % 2)]
                extra = {"statusReason": {"text": "waiting"}} if status == "on-hold" else {}
                body = {k: v for k, v in task.items() if k != "statusReason"}
                r = await client.put(
                    f"{base}/Task/{task['id']}",
                    headers=FHIR,
                    json={**body, "status": status, **extra},
                )
                assert r.status_code == 200, r.text
                task.clear()
                task.update(r.json())

        start = time.time()
        await asyncio.gather(*(walk(t, n * pause / len(tasks)) for n, t in enumerate(tasks)))
        total = per_task * args.tasks
        await rx.wait_for(1 + total, timeout=300)
        end = max(rx.arrivals)
        latencies = []
        for (_, bundle), arrived in zip(rx.received[1:], rx.arrivals[1:], strict=True):
            for entry in bundle["entry"][1:]:
                stamped = datetime.fromisoformat(entry["resource"]["meta"]["lastUpdated"])
                latencies.append((arrived - stamped.timestamp()) * 1000)
        latencies.sort()
        q = statistics.quantiles(latencies, n=100)
        rate = f"{args.rate:.0f}/s" if args.rate else "as fast as possible"
        print(f"notifier on PostgreSQL: {total} Task updates over {args.tasks} Tasks at {rate}")
        print(
            f"commit -> rest-hook receipt: p50 {q[49]:.1f} ms   p95 {q[94]:.1f} ms   "
            f"p99 {q[98]:.1f} ms   max {latencies[-1]:.1f} ms"
        )
        print(
            f"notifications per second: {total / (end - start):.0f} "
            f"({total} in {end - start:.1f} s, end to end from the first update)"
        )
        await stages(ref_db, not_db)


async def stages(ref_db: str, not_db: str) -> None:
    """Where the time goes: referral-api's outbox (commit -> accepted by the notifier) and the
    notifier (intake -> delivered to the receiver)."""
    import asyncpg

    conn = await asyncpg.connect(ref_db)
    outbox = await conn.fetch(
        "SELECT (delivered_at - occurred_at) / 1000.0 AS ms "
        "FROM outbox_events WHERE delivered_at IS NOT NULL ORDER BY 1"
    )
    await conn.close()
    conn = await asyncpg.connect(not_db)
    notify = await conn.fetch(
        "SELECT (delivered_at - occurred_at) / 1000.0 AS ms "
        "FROM notification_events WHERE delivered_at IS NOT NULL ORDER BY 1"
    )
    await conn.close()
    for name, rows in (
        ("referral-api outbox: commit -> notifier intake done", outbox),
        ("notifier: intake -> receiver 2xx", notify),
    ):
        values = [float(r["ms"]) for r in rows]
        if len(values) > 2:
            q = statistics.quantiles(values, n=100)
            print(f"  {name}: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms ({len(values)} events)")


if __name__ == "__main__":
    asyncio.run(main())
