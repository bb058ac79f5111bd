"""What the notifier costs while nothing it holds can be delivered: 100 rest-hook subscriptions
whose endpoint has gone away (a closed loopback port), each with queued events, on PostgreSQL.
The notifier runs as a real process; printed per window: its CPU (% of one core, from
/proc/<pid>/stat) and its database's transactions per second (pg_stat_database xact_commit +
xact_rollback) and how fast its log grows, first right after the events are queued, then once
the backoff has settled.

    uv run python bench/notifier_idle.py [--subscriptions 100] [--events 5]
        [--settle 90] [--window 30] [--log-level WARNING]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from _harness import postgres_url, running_service
from closedloop.testing import DEFAULT_POSTGRES, Receiver, free_port

FHIR = {"Content-Type": "application/fhir+json"}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
TICKS = os.sysconf("SC_CLK_TCK")


def child_pid(module: str) -> int:
    """The pid of this process's child running ``<module>.cli`` (running_service starts it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and f"{module}.cli".encode() in cmdline:
            return int(entry.name)
    raise RuntimeError(f"no child process runs {module}.cli")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def transactions(admin: asyncpg.Connection, database: str) -> int:
    """Transactions committed and rolled back in ``database`` so far (read from another
    database, so the reading is not counted)."""
    value = await admin.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database
    )
    return int(value)


@asynccontextmanager
async def notifier(db: str, log: Path, level: str, token: str) -> AsyncIterator[str]:
    """The notifier as a real process, its log (stderr) going to ``log``: a pipe nobody reads
    would fill up and stop it."""
    os.environ["CLOSEDLOOP_SERVICE_LOGS"] = "1"  # running_service: inherit our stderr...
    saved = os.dup(2)
    os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), 2)  # ...which is the log
    try:
        service = running_service(
            "notifier",
            "NOTIFIER_",
            db,
            {
                "NOTIFIER_ALLOW_LOOPBACK_ENDPOINTS": "true",
                "NOTIFIER_REFERRAL_URL": f"http://127.0.0.1:{free_port()}/fhir",
                "NOTIFIER_LOG_LEVEL": level,
                "NOTIFIER_EVENTS_TOKEN": token,  # what referral-api would send to the intake
            },
        )
        base = await service.__aenter__()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    try:
        yield base
    finally:
        await service.__aexit__(None, None, None)


def subscription(endpoint: str) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "bench: an endpoint that went away",
        "criteria": TOPIC,
        "_criteria": {
            "extension": [
                {
                    "url": f"{BACKPORT}/backport-filter-criteria",
                    "valueString": "Task?owner=Organization/cbo-idle",
                }
            ]
        },
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"},
    }


def task_event(task_id: str, version: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "resourceType": "Task",
        "resourceId": task_id,
        "interaction": "update",
        "resource": {
            "resourceType": "Task",
            "id": task_id,
            "status": "requested",
            "intent": "order",
            "owner": {"reference": "Organization/cbo-idle"},
            "description": f"update {version}",
        },
    }


async def measure(
    name: str, pid: int, admin: asyncpg.Connection, database: str, log: Path, seconds: float
) -> None:
    cpu0, xact0, t0 = cpu_seconds(pid), await transactions(admin, database), time.monotonic()
    log0 = log.stat().st_size
    await asyncio.sleep(seconds)
    cpu1, xact1, t1 = cpu_seconds(pid), await transactions(admin, database), time.monotonic()
    took = t1 - t0
    print(
        f"{name:<40} notifier CPU {100 * (cpu1 - cpu0) / took:5.1f}% of a core   "
        f"database {(xact1 - xact0) / took:6.1f} transactions/s   "
        f"log {(log.stat().st_size - log0) / took / 1024:6.1f} KiB/s   ({took:.0f} s window)",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--events", type=int, default=5, help="queued events per subscription")
    parser.add_argument("--settle", type=float, default=90.0, help="seconds of backoff first")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--log-level", default="WARNING", help="the notifier's LOG_LEVEL")
    args = parser.parse_args()
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(postgres_url())
        database = str(make_url(db).database)
        admin_url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES).replace("+asyncpg", "")
        admin = await asyncpg.connect(admin_url)
        stack.push_async_callback(admin.close)
        log = Path(tempfile.mkdtemp(prefix="notifier-idle-")) / "notifier.log"
        token = secrets.token_urlsafe(32)
        base = await stack.enter_async_context(notifier(db, log, args.log_level, token))
        pid = child_pid("notifier")
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        # the receiver answers the handshakes, then goes away: its port is closed
        async with Receiver() as rx:
            for _ in range(args.subscriptions):
                r = await client.post(
                    f"{base}/fhir/Subscription", json=subscription(rx.url), headers=FHIR
                )
                assert r.status_code == 201, r.text
            await rx.wait_for(args.subscriptions, timeout=120)
            for _ in range(200):
                st = (await client.get(f"{base}/fhir/Subscription/$status?status=active")).json()
                if st.get("total") == args.subscriptions:
                    break
                await asyncio.sleep(0.1)
        task_id = f"t-{uuid.uuid4().hex[:8]}"
        for version in range(1, args.events + 1):
            r = await client.post(
                f"{base}/events",
                json=task_event(task_id, version),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200 and r.json()["matched"] == args.subscriptions, r.text
        print(
            f"notifier on PostgreSQL: {args.subscriptions} rest-hook subscriptions to a closed "
            f"loopback port, {args.events} queued events each (default retry and poll settings)",
            flush=True,
        )
        await measure("first 10 s after the events were queued", pid, admin, database, log, 10.0)
        await asyncio.sleep(max(0.0, args.settle - 10.0))
        await measure(
            f"after {args.settle:.0f} s of backoff", pid, admin, database, log, args.window
        )
        conn = await asyncpg.connect(db)
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS pending, "
            "sum(attempts) AS attempts, max(attempts) AS most "
            "FROM notification_events"
        )
        await conn.close()
        print(
            f"  {row['pending']} events pending, {row['attempts']} delivery attempts in all "
            f"(at most {row['most']} for one event): each subscription retries its first event"
        )
        print(f"  notifier log: {log}")


if __name__ == "__main__":
    asyncio.run(main())
