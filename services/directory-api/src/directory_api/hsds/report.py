"""The import report (counts, rejected rows, speed) and the cross-source duplicate finder."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.tables import resources as resources_table
from sqlalchemy import select

from directory_api.hsds.mapping import phone_digits
from directory_api.hsds.model import Rejection

OUTCOMES = ("created", "updated", "unchanged", "rejected")
# rows rejected while joining tables are counted under the resource type they would have made
_TABLE_TYPES = {
    "services": "HealthcareService",
    "locations": "Location",
    "organizations": "Organization",
}


@dataclass
class Report:
    source: str
    path: str
    format: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    services: int = 0
    seconds: float = 0.0

    def count(self, rtype: str, outcome: str) -> None:
        row = self.counts.setdefault(rtype, dict.fromkeys(OUTCOMES, 0))
        row[outcome] += 1

    def reject(self, rej: Rejection) -> None:
        rej.entity = _TABLE_TYPES.get(rej.entity, rej.entity)
        self.rejected.append(rej)
        self.count(rej.entity, "rejected")

    @property
    def rate(self) -> float:
        return self.services / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "format": self.format,
            "counts": self.counts,
            "rejected": [r.as_dict() for r in self.rejected],
            "duplicates": self.duplicates,
            "services": self.services,
            "seconds": round(self.seconds, 3),
            "services_per_second": round(self.rate, 1),
        }

    def text(self) -> str:
        lines = [f"HSDS import of {self.path} ({self.format}) as source {self.source!r}"]
        lines.append(f"{'type':<22}" + "".join(f"{o:>11}" for o in OUTCOMES))
        for rtype, row in sorted(self.counts.items()):
            lines.append(f"{rtype:<22}" + "".join(f"{row[o]:>11}" for o in OUTCOMES))
        for r in self.rejected:
            lines.append(f"rejected {r.file}:{r.row} {r.entity}: {r.reason}")
        for d in self.duplicates:
            ids = ", ".join(f"{m['resourceType']}/{m['id']} ({m['source']})" for m in d["records"])
            lines.append(f"possible duplicate ({d['reason']}): {ids}")
        lines.append(
            f"{self.services} services in {self.seconds:.2f}s ({self.rate:.0f} services/s)"
        )
        return "\n".join(lines)


def normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def _address_key(address: dict[str, Any] | None) -> str:
    if not address:
        return ""
    line = " ".join(address.get("line") or [])
    return normalize_name(f"{line} {str(address.get('postalCode') or '')[:5]}")


async def find_duplicates(server: FhirServer) -> list[dict[str, Any]]:
    """Same normalized name + address, or same phone, stored from different sources."""
    r = resources_table.c
    addresses: dict[str, str] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    # keys are computed while reading, so a 100,000-service directory is never all in memory
    async with server.db.read() as conn:
        locs = await conn.execute(
            select(r.id, r.content).where(r.resource_type == "Location", r.content.is_not(None))
        )
        for rid, content in locs:
            key = _address_key(orjson.loads(content).get("address"))
            if key:
                addresses[rid] = key
        rows = await conn.execute(
            select(r.resource_type, r.content).where(
                r.resource_type.in_(["HealthcareService", "Organization"]),
                r.content.is_not(None),
            )
        )
        for rtype, content in rows:
            res = orjson.loads(content)
            source = (res.get("meta") or {}).get("source")
            if not source or not res.get("name"):
                continue
            member = {"resourceType": rtype, "id": res["id"], "name": res["name"], "source": source}
            name = normalize_name(res["name"])
            for ref in res.get("location") or []:
                addr = addresses.get(str(ref.get("reference", "")).split("/")[-1])
                if addr:
                    groups[("same name and address", f"{rtype}|{name}|{addr}")].append(member)
            for t in res.get("telecom") or []:
                if t.get("system") in ("phone", "sms"):
                    digits = phone_digits(str(t.get("value", "")).split(" ext")[0])
                    if len(digits) >= 10:
                        groups[("same phone", f"{rtype}|{digits}")].append(member)
    out = []
    for (reason, key), members in sorted(groups.items()):
        unique = {(m["resourceType"], m["id"]): m for m in members}
        if len({m["source"] for m in unique.values()}) > 1:
            out.append({"reason": reason, "key": key, "records": list(unique.values())})
    return out
