"""How fast the web app's pages answer with 1,000 referrals in a CBO's worklist.

auth, directory-api, referral-api (SQLite, as ``make run``) and web as real processes on
127.0.0.1, set up as the browser tests set them up (services/web/tests/browser.py); 1,000
referral Tasks sent to one food bank, written as referral-api transactions; the food bank's
staff member signs in through the auth service's form; then each page is fetched ``--requests``
times, one after the other, and the median and 95th percentile printed (goal: median under
200 ms).

    uv run python bench/web.py [--referrals 1000] [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "web" / "tests"))
from browser import CBO_USER, LINK_SECRET, password_of, running_stack  # noqa: E402
from closedloop import links  # noqa: E402
from seed import FHIR, SDOHCC, TASK_CODE, food_bank  # noqa: E402

GOAL_MS = 200.0
PER_BUNDLE = 25


def referral_entries(bank: dict[str, str]) -> list[dict[str, Any]]:
    patient, consent, request = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    return [
        {
            "fullUrl": patient,
            "resource": {
                "resourceType": "Patient",
                "name": [{"family": "Bench", "given": [uuid.uuid4().hex[:6]]}],
                "birthDate": "1980-01-01",
                "managingOrganization": {"reference": "Organization/clinic-1"},
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": consent,
            "resource": {
                "resourceType": "Consent",
                "status": "active",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "patient-privacy",
                        }
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": patient},
            },
            "request": {"method": "POST", "url": "Consent"},
        },
        {
            "fullUrl": request,
            "resource": {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
                "code": {"text": "Food pantry"},
                "subject": {"reference": patient},
                "performer": [{"reference": bank["service"]}],
                "supportingInfo": [{"reference": consent}],
            },
            "request": {"method": "POST", "url": "ServiceRequest"},
        },
        {
            "resource": {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": TASK_CODE,
                "focus": {"reference": request},
                "for": {"reference": patient},
                "authoredOn": "2026-12-01T10:00:00Z",
                "requester": {"reference": "Organization/clinic-1"},
                "owner": {"reference": bank["organization"], "display": "Eastside Food Bank"},
            },
            "request": {"method": "POST", "url": "Task"},
        },
    ]


async def seed(stack: Any, count: int) -> list[str]:
    """``count`` referrals to the food bank; their Task ids."""
    ids: list[str] = []
    async with httpx.AsyncClient(auth=stack.admin, timeout=120) as http:
        bank = await food_bank(http, stack.directory)
        for start in range(0, count, PER_BUNDLE):
            entries = [
                e for _ in range(min(PER_BUNDLE, count - start)) for e in referral_entries(bank)
            ]
            r = await http.post(
                stack.referral,
                json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                headers=FHIR,
            )
            assert r.status_code == 200, r.text[:500]
            for entry in r.json()["entry"]:
                location = (entry.get("response") or {}).get("location") or ""
                if location.startswith("Task/"):
                    ids.append(location.split("/")[1])
    return ids


async def sign_in(http: httpx.AsyncClient, web: str) -> None:
    """Through the auth service's form, as a browser would."""
    page = await http.get(f"{web}/inbox")
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    form = {k: html.unescape(v) for k, v in hidden.items()}
    form.update({"username": CBO_USER, "password": password_of(CBO_USER)})
    r = await http.post(str(page.url.copy_with(query=None)), data=form)
    assert r.status_code == 200 and str(r.url).startswith(f"{web}/inbox"), r.status_code


async def timed(http: httpx.AsyncClient, url: str, n: int) -> tuple[float, float]:
    await http.get(url)  # warm
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await http.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    async with running_stack() as stack:
        t0 = time.perf_counter()
        ids = await seed(stack, args.referrals)
        print(f"seeded {len(ids)} referrals in {time.perf_counter() - t0:.1f}s")
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as http:
            await sign_in(http, stack.web)
            pages = {
                "CBO inbox (newest 100 of the worklist)": f"{stack.web}/inbox?show=new",
                "CBO inbox, all": f"{stack.web}/inbox?show=all",
                "a referral in the inbox": f"{stack.web}/inbox/referrals/{ids[len(ids) // 2]}",
                "patient status page": links.status_link(stack.web, ids[0], LINK_SECRET, 3600),
            }
            print(f"{'page':<42} {'median ms':>10} {'p95 ms':>8}  goal <{GOAL_MS:.0f} ms")
            for name, url in pages.items():
                median, p95 = await timed(http, url, args.requests)
                verdict = "ok" if median < GOAL_MS else "SLOW"
                print(f"{name:<42} {median:>10.1f} {p95:>8.1f}  {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
