"""A year of synthetic referral histories (fixed seed), written through referral-api's HTTP
API by the requesting organization's and the CBO's own tokens, and the loop metrics computed
from the same generated histories in plain Python, independently of referral_facts and SQL."""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from closedloop.testing import TokenIssuer, bearer

FHIR_JSON = {"Content-Type": "application/fhir+json"}
AUD = "http://testserver/fhir"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
CATEGORIES = ["food-insecurity", "housing-instability", "transportation-insecurity"]
CBOS = ["Organization/cbo-1", "Organization/cbo-2", "Organization/cbo-3"]
REQUESTERS = ["Organization/req-1", "Organization/req-2"]
LANGUAGES = ["en", "es", "zh", None]
RACES = ["2106-3", "2054-5", "2028-9", None]
ETHNICITIES = ["2135-2", "2186-5", None]
SEXES = ["F", "M", None]
REASONS = ["no-capacity", "not-eligible"]
SCOPES = "system/*.cruds"


@dataclass
class History:
    """One referral as generated: its attributes and when it reached each status."""

    cbo: str
    requester: str
    category: str
    language: str | None
    race: str | None
    ethnicity: str | None
    sex: str | None
    moves: list[tuple[str, datetime]]  # (status, when), first is requested
    reason: str | None = None
    task_id: str = ""

    def first(self, status: str) -> datetime | None:
        return next((at for s, at in self.moves if s == status), None)

    @property
    def sent(self) -> datetime:
        return self.moves[0][1]


def generate(seed: int, count: int, year: int = 2025) -> list[History]:
    rng = random.Random(seed)
    start = datetime(year, 1, 1, tzinfo=UTC)
    out = []
    for _ in range(count):
        sent = start + timedelta(seconds=rng.randrange(365 * 86_400))
        at = sent
        moves = [("requested", at)]

        def later(hours: float) -> datetime:
            nonlocal at
            at = at + timedelta(hours=rng.uniform(0.5, hours))
            return at

        roll, reason = rng.random(), None
        if roll < 0.15:
            pass  # never answered
        elif roll < 0.25:
            moves.append(("rejected", later(96)))
            reason = rng.choice(REASONS)
        elif roll < 0.33:
            moves.append(("cancelled", later(48)))
        else:
            moves.append(("accepted", later(120)))
            then = rng.random()
            if then < 0.6:
                moves += [("in-progress", later(72)), ("completed", later(400))]
            elif then < 0.7:
                moves.append(("cancelled", later(200)))
            elif then < 0.8:
                moves += [("in-progress", later(72)), ("failed", later(300))]
            else:
                moves.append(("in-progress", later(72)))
        out.append(
            History(
                rng.choice(CBOS),
                rng.choice(REQUESTERS),
                rng.choice(CATEGORIES),
                rng.choice(LANGUAGES),
                rng.choice(RACES),
                rng.choice(ETHNICITIES),
                rng.choice(SEXES),
                moves,
                reason,
            )
        )
    return out


def _instant(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def consent_for(patient_id: str) -> dict[str, Any]:
    """The patient's active Consent to share referrals (naming no recipient: any CBO)."""
    return {
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
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"text": "share referrals with community organizations"},
    }


def patient(h: History) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "extension": []}
    if h.language:
        body["communication"] = [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": h.language}]}}
        ]
    for url, code in (("us-core-race", h.race), ("us-core-ethnicity", h.ethnicity)):
        if code:
            coding = {"system": "urn:oid:2.16.840.1.113883.6.238", "code": code}
            body["extension"].append(
                {
                    "url": US_CORE + url,
                    "extension": [
                        {"url": "ombCategory", "valueCoding": coding},
                        {"url": "text", "valueString": code},
                    ],
                }
            )
    if h.sex:
        body["extension"].append({"url": US_CORE + "us-core-birthsex", "valueCode": h.sex})
    if not body["extension"]:
        del body["extension"]
    return body


@dataclass
class Writer:
    """Writes histories with the right token for each move (requester or CBO)."""

    client: httpx.AsyncClient
    issuer: TokenIssuer
    tokens: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def auth(self, role: str, org: str) -> dict[str, str]:
        key = (role, org)
        if key not in self.tokens:
            token = self.issuer.token(SCOPES, AUD, organization=org, role=role)
            self.tokens[key] = {**FHIR_JSON, **bearer(token)}
        return self.tokens[key]

    async def post(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        r = await self.client.post(f"/fhir/{body['resourceType']}", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def write(self, h: History) -> None:
        req = self.auth("requester", h.requester)
        pat = await self.post(patient(h), req)
        consent = await self.post(consent_for(pat["id"]), req)  # REFERRAL_API_REQUIRE_CONSENT
        sr = await self.post(
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "category": [{"coding": [{"system": SDOHCC, "code": h.category}]}],
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "467771000124109"}]
                },
                "subject": {"reference": f"Patient/{pat['id']}"},
                "requester": {"reference": h.requester},
                "supportingInfo": [{"reference": f"Consent/{consent['id']}"}],
            },
            req,
        )
        task = await self.post(
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": TASK_CODE,
                "focus": {"reference": f"ServiceRequest/{sr['id']}"},
                "for": {"reference": f"Patient/{pat['id']}"},
                "authoredOn": _instant(h.sent),
                "lastModified": _instant(h.sent),
                "requester": {"reference": h.requester},
                "owner": {"reference": h.cbo},
            },
            req,
        )
        h.task_id = task["id"]
        for status, at in h.moves[1:]:
            body = {**task, "status": status, "lastModified": _instant(at)}
            if status in ("rejected", "cancelled", "failed"):
                body["statusReason"] = {"text": "as generated"}
                if status == "rejected":
                    body["statusReason"]["coding"] = [{"code": h.reason}]
            by_cbo = status != "cancelled" or h.first("accepted") is not None
            headers = self.auth("cbo", h.cbo) if by_cbo else req
            r = await self.client.put(f"/fhir/Task/{task['id']}", json=body, headers=headers)
            assert r.status_code == 200, r.text
            task = r.json()


# -- the independent computation ---------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=10 if q == 0.9 else 2, method="inclusive")
    return cuts[-1] if q == 0.9 else cuts[0]


def expected(
    histories: list[History],
    now: datetime,
    stall_days: dict[str, int],
    default_stall: int,
    min_cell: int = 11,
) -> dict[str, Any]:
    """{stratifier: {stratum: figures}} with "all" for the cohort; figures as in a
    MeasureReport (None where suppressed)."""

    def key_of(h: History, name: str) -> str | None:
        return {
            "all": "all",
            "cbo": h.cbo,
            "category": h.category,
            "requester": h.requester,
            "month": h.sent.strftime("%Y-%m"),
            "language": h.language,
            "race": h.race,
            "ethnicity": h.ethnicity,
            "sex": h.sex,
            "declined-reason": h.reason,
        }[name]

    def figures(group: list[History]) -> dict[str, Any]:
        def answer(h: History) -> datetime | None:
            times = [t for t in (h.first("accepted"), h.first("rejected")) if t is not None]
            return min(times) if times else None

        def stalled(h: History) -> bool:
            limit = timedelta(days=stall_days.get(h.category, default_stall))
            return answer(h) is None and h.first("cancelled") is None and h.sent < now - limit

        raw = {
            "sent": len(group),
            "accepted": sum(h.first("accepted") is not None for h in group),
            "declined": sum(h.first("rejected") is not None for h in group),
            "completed": sum(h.first("completed") is not None for h in group),
            "cancelled": sum(h.first("cancelled") is not None for h in group),
            "stalled": sum(stalled(h) for h in group),
            "responded": sum(answer(h) is not None for h in group),
        }
        counts = {k: (None if 0 < v < min_cell else v) for k, v in raw.items()}
        small = raw["sent"] < min_cell
        rate = None
        if not small and not 0 < raw["completed"] < min_cell:
            rate = raw["completed"] / raw["sent"]
        times: dict[str, float | None] = {}
        for name, end in (
            ("first-response", answer),
            ("accept", lambda h: h.first("accepted")),
            ("complete", lambda h: h.first("completed")),
        ):
            hours = [(e - h.sent).total_seconds() / 3600 for h in group if (e := end(h))]
            for stat, q in (("median", 0.5), ("p90", 0.9)):
                ok = not small and len(hours) >= min_cell
                times[f"{name}.{stat}"] = _percentile(hours, q) if ok else None
        return {"counts": counts, "rate": rate, "times": times}

    out: dict[str, Any] = {}
    names = ["all", "cbo", "category", "requester", "month", "language", "race", "ethnicity"]
    for name in [*names, "sex", "declined-reason"]:
        groups: dict[str, list[History]] = {}
        for h in histories:
            key = key_of(h, name)
            groups.setdefault("not-recorded" if key is None else key, []).append(h)
        out[name] = {k: figures(v) for k, v in groups.items()}
    return out


def from_report(report: dict[str, Any]) -> dict[str, Any]:
    """The same shape, read back from a MeasureReport."""

    def code(concept: dict[str, Any]) -> str:
        return str(concept["coding"][0]["code"])

    def score(entry: dict[str, Any]) -> float | None:
        return entry["measureScore"]["value"] if "measureScore" in entry else None

    out: dict[str, Any] = {}
    for group in report["group"]:
        gname = code(group["code"])
        cells = [("all", "all", group)] + [
            (code(s["code"][0]), stratum["value"]["text"], stratum)
            for s in group["stratifier"]
            for stratum in s["stratum"]
        ]
        for name, key, entry in cells:
            cell = out.setdefault(name, {}).setdefault(
                key, {"counts": {}, "rate": None, "times": {}}
            )
            if gname == "referrals":
                cell["counts"] = {code(p["code"]): p.get("count") for p in entry["population"]}
                cell["rate"] = score(entry)
            else:
                cell["times"][gname.removeprefix("time-to-")] = score(entry)
    return out
