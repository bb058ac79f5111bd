"""The import report (counts, rejected rows, speed) and the cross-source duplicate finder."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.tables import resources as resources_table
from sqlalchemy import select

from directory_api.hsds.mapping import phone_digits
from directory_api.hsds.model import Rejection, Repair, SourceFile

# repaired rows listed in the printed report (a real export can have thousands; the JSON
# report lists them all)
TEXT_REPAIRS = 30
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
    repaired: list[Repair] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    services: int = 0
    services_read: int = 0
    services_with_location: int = 0
    seconds: float = 0.0
    # per input file, the rows that went into an imported service (see ``use``)
    used: dict[str, set[int | str]] = field(default_factory=lambda: defaultdict(set))
    _repair_keys: set[tuple[str, int | str, str, str]] = field(default_factory=set)

    def repair(self, rep: Repair) -> None:
        """Record a repair once (a location shared by several services is mapped each time)."""
        key = (rep.file, rep.row, rep.kind, rep.reason)
        if key not in self._repair_keys:
            self._repair_keys.add(key)
            self.repaired.append(rep)

    def use(self, file: str, row: int | str) -> None:
        self.used[file].add(row)

    def count(self, rtype: str, outcome: str) -> None:
        row = self.counts.setdefault(rtype, dict.fromkeys(OUTCOMES, 0))
        row[outcome] += 1

    def reject(self, rej: Rejection) -> None:
        rej.entity = _TABLE_TYPES.get(rej.entity, rej.entity)
        self.rejected.append(rej)
        self.count(rej.entity, "rejected")
        if rej.entity == "HealthcareService":  # refused when written: its row was not imported
            self.used.get(rej.file, set()).discard(rej.row)

    @property
    def imported_percent(self) -> float:
        return 100.0 * self.services / self.services_read if self.services_read else 100.0

    @property
    def located_percent(self) -> float:
        """Services imported with at least one Location, of the services in the input."""
        if not self.services_read:
            return 100.0
        return 100.0 * self.services_with_location / self.services_read

    def per_file(self) -> dict[str, dict[str, Any]]:
        """Each input file's rows: imported (went into an imported service; ``repaired`` of
        them needed a repair), rejected, unused (reached by no service, e.g. an organization
        without services), with the repair kinds and rejection reasons counted."""
        out: dict[str, dict[str, Any]] = {}

        def entry(name: str, table: str = "", rows: int = 0) -> dict[str, Any]:
            return out.setdefault(
                name,
                {
                    "table": table,
                    "rows": rows,
                    "imported": 0,
                    "repaired": 0,
                    "rejected": 0,
                    "unused": 0,
                    "repairs": Counter(),
                    "rejections": Counter(),
                    "notes": [],
                },
            )

        for f in self.files:
            entry(f.name, f.table, f.rows)
        rejected_rows: dict[str, set[int | str]] = defaultdict(set)
        for rej in self.rejected:
            entry(rej.file)["rejections"][rej.reason] += 1
            rejected_rows[rej.file].add(rej.row)
        repaired_rows: dict[str, set[int | str]] = defaultdict(set)
        for rep in self.repaired:
            e = entry(rep.file)
            if rep.row == "":
                e["notes"].append(rep.reason)
                continue
            e["repairs"][rep.kind] += 1
            repaired_rows[rep.file].add(rep.row)
        for name, e in out.items():
            used = self.used.get(name, set())
            rejected = rejected_rows[name] - used
            e["imported"] = len(used)
            e["repaired"] = len(repaired_rows[name] & used)
            e["rejected"] = len(rejected)
            e["unused"] = max(0, e["rows"] - len(used) - len(rejected))
            e["repairs"] = dict(sorted(e["repairs"].items()))
            e["rejections"] = dict(sorted(e["rejections"].items()))
        return dict(sorted(out.items()))

    @property
    def rate(self) -> float:
        return self.services / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "format": self.format,
            "counts": self.counts,
            "files": self.per_file(),
            "rejected": [r.as_dict() for r in self.rejected],
            "repaired": [r.as_dict() for r in self.repaired],
            "duplicates": self.duplicates,
            "services": self.services,
            "services_read": self.services_read,
            "services_with_location": self.services_with_location,
            "services_imported_percent": round(self.imported_percent, 1),
            "services_with_location_percent": round(self.located_percent, 1),
            "seconds": round(self.seconds, 3),
            "services_per_second": round(self.rate, 1),
        }

    def text(self) -> str:
        lines = [f"HSDS import of {self.path} ({self.format}) as source {self.source!r}"]
        lines.append(f"{'type':<22}" + "".join(f"{o:>11}" for o in OUTCOMES))
        for rtype, row in sorted(self.counts.items()):
            lines.append(f"{rtype:<22}" + "".join(f"{row[o]:>11}" for o in OUTCOMES))
        files = self.per_file()
        if files:
            cols = ("rows", "imported", "repaired", "rejected", "unused")
            lines.append(f"{'file':<34}" + "".join(f"{c:>10}" for c in cols))
            for name, e in files.items():
                lines.append(f"{name:<34}" + "".join(f"{e[c]:>10}" for c in cols))
                for kind, n in e["repairs"].items():
                    lines.append(f"    repaired {n} x {kind}")
                for note in e["notes"]:
                    lines.append(f"    {note}")
        for r in self.rejected:
            lines.append(f"rejected {r.file}:{r.row} {r.entity}: {r.reason}")
        rows = [p for p in self.repaired if p.row != ""]  # file-level ones are listed above
        for p in rows[:TEXT_REPAIRS]:
            lines.append(f"repaired {p.file}:{p.row} {p.entity} ({p.kind}): {p.reason}")
        if len(rows) > TEXT_REPAIRS:
            lines.append(f"... {len(rows) - TEXT_REPAIRS} more repairs (all in --report JSON)")
        for d in self.duplicates:
            ids = ", ".join(f"{m['resourceType']}/{m['id']} ({m['source']})" for m in d["records"])
            lines.append(f"possible duplicate ({d['reason']}): {ids}")
        lines.append(
            f"{self.services} of {self.services_read} services imported"
            f" ({self.imported_percent:.1f}%), {self.services_with_location} with a location"
            f" ({self.located_percent:.1f}%)"
        )
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
