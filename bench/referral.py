"""Referral transactions per second on PostgreSQL (Patient + Consent + ServiceRequest + Task in
one transaction Bundle, the Patient conditional on its MRN), and the latency the directory check
adds when the Task's owner is a CBO in directory-api. Both services run as real processes;
load comes from wrk (`apt-get install wrk`).

    uv run python bench/referral.py [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _harness import postgres_url, running_service, wrk_available, wrk_load

FHIR = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"


def bundle(owner: str) -> str:
    """A referral transaction; ``{{n}}`` is replaced per request by wrk (a fresh MRN)."""
    patient, consent, sr = (f"urn:uuid:00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": patient,
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [{"system": "urn:mrn", "value": "{{n}}"}],
                        "name": [{"family": "Bench", "given": ["Pat"]}],
                    },
                    "request": {
                        "method": "POST",
                        "url": "Patient",
                        "ifNoneExist": "identifier=urn:mrn|{{n}}",
                    },
                },
                {
                    "fullUrl": consent,
                    "resource": {
                        "resourceType": "Consent",
                        "status": "active",
                        "scope": {"coding": [{"code": "patient-privacy"}]},
                        "category": [{"coding": [{"code": "IDSCL"}]}],
                        "patient": {"reference": patient},
                        "dateTime": "2026-11-22",
                    },
                    "request": {"method": "POST", "url": "Consent"},
                },
                {
                    "fullUrl": sr,
                    "resource": {
                        "resourceType": "ServiceRequest",
                        "status": "active",
                        "intent": "order",
                        "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
                        "code": {
                            "coding": [
                                {"system": "http://snomed.info/sct", "code": "467771000124109"}
                            ]
                        },
                        "subject": {"reference": patient},
                        "supportingInfo": [{"reference": consent}],
                    },
                    "request": {"method": "POST", "url": "ServiceRequest"},
                },
                {
                    "resource": {
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
                        "focus": {"reference": sr},
                        "for": {"reference": patient},
                        "authoredOn": "2026-11-22T10:00:00Z",
                        "requester": {"reference": "PractitionerRole/dr-water"},
                        "owner": {"reference": owner},
                    },
                    "request": {"method": "POST", "url": "Task"},
                },
            ],
        }
    ).decode()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not wrk_available():
        sys.exit("bench/referral.py needs wrk (apt-get install wrk)")
    async with AsyncExitStack() as stack:
        dir_db = await stack.enter_async_context(postgres_url())
        ref_db = await stack.enter_async_context(postgres_url())
        directory = await stack.enter_async_context(
            running_service("directory_api", "DIRECTORY_API_", dir_db)
        )
        referral = await stack.enter_async_context(
            running_service(
                "referral_api",
                "REFERRAL_API_",
                ref_db,
                {
                    "REFERRAL_API_DIRECTORY_URL": f"{directory}/fhir",
                    "REFERRAL_API_EVENT_SINK_URL": "",
                },
            )
        )
        async with httpx.AsyncClient() as client:
            r = await client.put(
                f"{directory}/fhir/Organization/cbo-1",
                headers=FHIR,
                json={"resourceType": "Organization", "id": "cbo-1", "active": True, "name": "CBO"},
            )
            assert r.status_code == 201, r.text
            for owner in ("Organization/cbo-local", f"{directory}/fhir/Organization/cbo-1"):
                check = await client.post(
                    f"{referral}/fhir",
                    content=bundle(owner).replace("{{n}}", "probe"),
                    headers=FHIR,
                )
                assert check.status_code == 200, check.text
        print("Referral transactions on PostgreSQL (Patient + Consent + ServiceRequest + Task)")
        local = wrk_load(
            "referral, owner not in directory",
            f"{referral}/fhir",
            method="POST",
            body=bundle("Organization/cbo-local"),
            headers=FHIR,
            seconds=args.seconds,
            connections=args.connections,
        )
        checked = wrk_load(
            "referral, owner checked in directory",
            f"{referral}/fhir",
            method="POST",
            body=bundle(f"{directory}/fhir/Organization/cbo-1"),
            headers=FHIR,
            seconds=args.seconds,
            connections=args.connections,
        )
        # sequential latency isolates the added cost of the directory round trip
        seq_local = wrk_load(
            "  sequential, no directory check",
            f"{referral}/fhir",
            method="POST",
            body=bundle("Organization/cbo-local"),
            headers=FHIR,
            seconds=args.seconds,
            connections=1,
        )
        seq_checked = wrk_load(
            "  sequential, with directory check",
            f"{referral}/fhir",
            method="POST",
            body=bundle(f"{directory}/fhir/Organization/cbo-1"),
            headers=FHIR,
            seconds=args.seconds,
            connections=1,
        )
        print(
            f"directory check adds {seq_checked['p50_ms'] - seq_local['p50_ms']:.1f} ms at "
            f"p50 (sequential); throughput {checked['rps']:.0f} vs {local['rps']:.0f} "
            "referrals/s under load"
        )


if __name__ == "__main__":
    asyncio.run(main())
