"""Synthetic SDOH referral data for bench/search.py, loaded through the engine's real write path.

Each resource goes through ``Repository.create`` (validation, version row, search index rows),
in process and in batches per unit of work: the same rows an HTTP client would leave, without
paying for 200k HTTP round trips. The data is seeded, so two runs search the same shapes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from closedloop.context import SYSTEM
from closedloop.db import create_database
from closedloop.fhir.server import FhirConfig, FhirServer
from referral_api.resources import RESOURCE_TYPES, SEARCH_PARAMS

PATIENTS = 5_000
ORGANIZATIONS = 200
PRACTITIONER_ROLES = 500
PROGRESS_EVERY = 20_000
IDENTIFIER_SYSTEM = "urn:bench"

_SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
CATEGORIES = (
    "food-insecurity",
    "housing-instability",
    "homelessness",
    "inadequate-housing",
    "transportation-insecurity",
    "financial-insecurity",
    "material-hardship",
    "employment-status",
    "educational-attainment",
    "veteran-status",
    "stress",
    "social-connection",
    "intimate-partner-violence",
    "elder-abuse",
    "personal-health-literacy",
    "health-insurance-coverage-status",
    "medical-cost-burden",
    "digital-literacy",
    "digital-access",
    "utility-insecurity",
)
# Most referrals in a year-old system are closed; a quarter still wait for the CBO.
TASK_STATUSES = ("requested", "accepted", "in-progress", "completed")
TASK_STATUS_WEIGHTS = (25, 15, 20, 40)
_YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)


def organization(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "cg",
                    }
                ]
            }
        ],
        "name": f"Community Organization {n}",
        "telecom": [{"system": "phone", "value": f"555-01{n:03d}"}],
        "address": [{"city": "Springfield", "state": "IL", "postalCode": f"62{n % 1000:03d}"}],
    }


def task(
    identifier: str,
    status: str,
    service_request: str,
    patient: int,
    owner: int | None,
    requester: int,
    authored_on: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": identifier}],
        "status": status,
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/{service_request}"},
        "for": {"reference": f"Patient/p-{patient}"},
        "authoredOn": authored_on,
        "requester": {"reference": f"PractitionerRole/pr-{requester}"},
    }
    if owner is not None:
        body["owner"] = {"reference": f"Organization/cbo-{owner}"}
    return body


def service_request(
    identifier: str, category: str, patient: int, performer: int, requester: int, authored_on: str
) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": identifier}],
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": _SDOHCC, "code": category}]}],
        "code": {"text": f"Referral for {category.replace('-', ' ')}"},
        "subject": {"reference": f"Patient/p-{patient}"},
        "authoredOn": authored_on,
        "requester": {"reference": f"PractitionerRole/pr-{requester}"},
        "performer": [{"reference": f"Organization/cbo-{performer}"}],
    }


@dataclass
class Referral:
    """What a Task shares with the ServiceRequest it fulfils."""

    id: str
    patient: int
    performer: int
    requester: int
    authored: datetime


class Dataset:
    """Seeded referrals: Task i fulfils ServiceRequest i (mod the count), for the same patient,
    owned by the request's performer (about 10% not yet assigned to a CBO)."""

    def __init__(self, tasks: int, service_requests: int, seed: int = 2026) -> None:
        self.tasks = tasks
        self.rng = random.Random(seed)
        self.referrals = [
            Referral(
                self._uuid(),
                self.rng.randrange(PATIENTS),
                self.rng.randrange(ORGANIZATIONS),
                self.rng.randrange(PRACTITIONER_ROLES),
                _YEAR_START + timedelta(seconds=self.rng.randrange(365 * 86_400)),
            )
            for _ in range(max(service_requests, 1))
        ]
        self.service_requests = service_requests

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def items(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(type, id, body), a ServiceRequest and its Task side by side, as they are written
        in production (so resources of both types share the pk and lastUpdated range)."""
        for i in range(max(self.tasks, self.service_requests)):
            if i < self.service_requests:
                ref = self.referrals[i]
                yield (
                    "ServiceRequest",
                    ref.id,
                    service_request(
                        f"sr-{i}",
                        self.rng.choice(CATEGORIES),
                        ref.patient,
                        ref.performer,
                        ref.requester,
                        _instant(ref.authored),
                    ),
                )
            if i < self.tasks:
                ref = self.referrals[i % len(self.referrals)]
                status = self.rng.choices(TASK_STATUSES, TASK_STATUS_WEIGHTS)[0]
                owner = None if self.rng.random() < 0.1 else ref.performer
                authored = ref.authored + timedelta(seconds=self.rng.randrange(3600))
                yield (
                    "Task",
                    self._uuid(),
                    task(
                        f"task-{i}",
                        status,
                        ref.id,
                        ref.patient,
                        owner,
                        ref.requester,
                        _instant(authored),
                    ),
                )

    def batches(self, size: int) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
        batch: list[tuple[str, str, dict[str, Any]]] = []
        for item in self.items():
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def _instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def referral_server(url: str, pool_size: int = 10) -> FhirServer:
    """The FHIR engine exactly as referral-api builds it (same types and search parameters)."""
    return FhirServer(
        create_database(url, pool_size=pool_size),
        FhirConfig(resource_types=RESOURCE_TYPES, extra_search_params=SEARCH_PARAMS),
    )


@dataclass(frozen=True)
class LoadPlan:
    tasks: int
    service_requests: int
    processes: int = 2
    loaders: int = 4
    batch: int = 500


async def _create_organizations(url: str) -> None:
    server = referral_server(url, pool_size=1)
    try:
        async with server.repo.unit_of_work(SYSTEM) as uow:
            for n in range(ORGANIZATIONS):
                await server.repo.create(
                    uow, "Organization", organization(n), assigned_id=f"cbo-{n}"
                )
    finally:
        await server.db.dispose()


async def _load_share(url: str, plan: LoadPlan, share: int, done: Any, start: float) -> None:
    """Write every ``plan.processes``-th batch, ``plan.loaders`` units of work at a time."""
    server = referral_server(url, pool_size=plan.loaders)
    total = plan.tasks + plan.service_requests
    batches = (
        chunk
        for i, chunk in enumerate(Dataset(plan.tasks, plan.service_requests).batches(plan.batch))
        if i % plan.processes == share
    )

    async def loader() -> None:
        for chunk in batches:  # a shared generator: each loader takes the next batch
            async with server.repo.unit_of_work(SYSTEM) as uow:
                for resource_type, resource_id, body in chunk:
                    await server.repo.create(uow, resource_type, body, assigned_id=resource_id)
            with done.get_lock():
                before = done.value
                done.value += len(chunk)
                after = done.value
            if after // PROGRESS_EVERY > before // PROGRESS_EVERY or after == total:
                elapsed = time.time() - start
                print(
                    f"  loaded {after:>7} / {total} in {elapsed:6.1f} s "
                    f"({after / elapsed:6.0f} resources/s)",
                    flush=True,
                )

    try:
        await asyncio.gather(*(loader() for _ in range(plan.loaders)))
    finally:
        await server.db.dispose()


def _load_process(url: str, plan: LoadPlan, share: int, done: Any, start: float) -> None:
    asyncio.run(_load_share(url, plan, share, done, start))


async def load(url: str, plan: LoadPlan) -> float:
    """Write the Organizations, then the referrals from ``plan.processes`` processes (the
    write path is CPU-bound in Python, so coroutines alone would leave a core idle), each with
    ``plan.loaders`` concurrent units of work of ``plan.batch`` resources. Prints progress and
    returns resources per second."""
    await _create_organizations(url)
    mp = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited event loop
    done = mp.Value("q", 0)
    start = time.time()
    workers = [
        mp.Process(target=_load_process, args=(url, plan, share, done, start))
        for share in range(plan.processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        await asyncio.to_thread(worker.join)
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"a loader process failed (exit codes {failed})")
    return (plan.tasks + plan.service_requests) / (time.time() - start)
