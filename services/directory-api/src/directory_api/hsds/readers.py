"""Load HSDS 3 JSON/NDJSON, HSDS 3 tabular datapackages and 1.x/2.0 datapackages into the
normalized model (HSDS 3 dereferenced services). Legacy tables are renamed to their 3.x
equivalents first, so one assembler joins every tabular format."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from directory_api.hsds.model import Loaded, Record, Rejection, Repair, SourceFile

LEGACY_MARKERS = {
    "physical_address",
    "postal_address",
    "regular_schedule",
    "holiday_schedule",
    "service_taxonomy",
    "taxonomy",
    "eligibility",
    "service_attribute",
    "accessibility_for_disabilities",
    "payment_accepted",
}
_WEEKDAYS = {
    "1": "MO", "2": "TU", "3": "WE", "4": "TH", "5": "FR", "6": "SA", "7": "SU",
    "monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH", "friday": "FR",
    "saturday": "SA", "sunday": "SU", "mon": "MO", "tue": "TU", "tues": "TU", "wed": "WE",
    "thu": "TH", "thur": "TH", "thurs": "TH", "fri": "FR", "sat": "SA", "sun": "SU",
}  # fmt: skip


class ReadError(Exception):
    """The PATH cannot be read at all (missing, not HSDS, unparsable JSON)."""


def load(path: Path) -> Loaded:
    if not path.exists():
        raise ReadError(f"{path}: no such file or directory")
    if path.is_dir() or path.name == "datapackage.json":
        return _load_package(path if path.is_dir() else path.parent)
    if path.suffix == ".ndjson":
        return _load_ndjson(path)
    if path.suffix == ".json":
        return _load_json(path)
    raise ReadError(f"{path}: expected a .json/.ndjson file or a datapackage folder")


# -- JSON ------------------------------------------------------------------------------------


def _load_json(path: Path) -> Loaded:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"{path}: cannot read JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("contents"), list):
        data = data["contents"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ReadError(f"{path}: expected a service, a list of services or an API page")
    out = Loaded("hsds-3-json", files=[SourceFile(path.name, "services", len(data))])
    for i, item in enumerate(data):
        if isinstance(item, dict):
            _tag(item, path.name, i)
            out.services.append(item)
        else:
            out.rejected.append(Rejection(path.name, i, "service", "not a JSON object"))
    return out


def _load_ndjson(path: Path) -> Loaded:
    out = Loaded("hsds-3-ndjson")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadError(f"{path}: cannot read ({exc})") from None
    out.files.append(SourceFile(path.name, "services", sum(1 for x in lines if x.strip())))
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            out.rejected.append(Rejection(path.name, n, "service", f"bad JSON: {exc}"))
            continue
        if isinstance(item, dict):
            _tag(item, path.name, n)
            out.services.append(item)
        else:
            out.rejected.append(Rejection(path.name, n, "service", "not a JSON object"))
    return out


def _tag(service: Record, file: str, row: int) -> None:
    """Nested records inherit the service's origin (a JSON document has no finer rows)."""
    service.setdefault("_origin", (file, row))
    org = service.get("organization")
    if isinstance(org, dict):
        org.setdefault("_origin", (file, row))
    for sal in service.get("service_at_locations") or []:
        if isinstance(sal, dict) and isinstance(sal.get("location"), dict):
            sal["location"].setdefault("_origin", (file, row))


# -- tabular ---------------------------------------------------------------------------------

# Plural, singular and other spellings of table file names seen in real exports -> the table
# name the assembler knows (HSDS 3, or the 1.x name ``_undo_legacy`` renames).
TABLE_ALIASES = {
    "organization": "organizations",
    "service": "services",
    "location": "locations",
    "services_at_location": "service_at_location",
    "services_at_locations": "service_at_location",
    "service_at_locations": "service_at_location",
    "services_locations": "service_at_location",
    "address": "addresses",
    "physical_addresses": "physical_address",
    "postal_addresses": "postal_address",
    "phone": "phones",
    "schedule": "schedules",
    "regular_schedules": "regular_schedule",
    "holiday_schedules": "holiday_schedule",
    "language": "languages",
    "service_area": "service_areas",
    "services_areas": "service_areas",
    "services_taxonomy": "service_taxonomy",
    "services_taxonomies": "service_taxonomy",
    "service_taxonomies": "service_taxonomy",
    "taxonomy_term": "taxonomy_terms",
    "attribute": "attributes",
    "service_attributes": "service_attribute",
    "services_attributes": "service_attribute",
    "eligibilities": "eligibility",
    "payments_accepted": "payment_accepted",
    "cost_option": "cost_options",
    "unit": "units",
    "contact": "contacts",
    "program": "programs",
}
# how deep under the package folder CSVs are looked for (the folder itself and ``data/``-like
# subfolders), so a misplaced file is found but unrelated trees are not walked
_SEARCH_DEPTH = 2


def table_name(stem: str) -> str:
    key = re.sub(r"[\s-]+", "_", stem.strip().lower())
    return TABLE_ALIASES.get(key, key)


def _read_csv(folder: Path, path: Path | None, out: Loaded) -> list[Record]:
    if path is None:
        return []
    name = path.relative_to(folder).as_posix()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        # spreadsheet exports are often Windows-1252; every byte decodes there
        text = path.read_bytes().decode("cp1252", errors="replace")
        out.repaired.append(
            Repair(name, "", "file", "file-encoding", "not UTF-8; read as Windows-1252")
        )
    except OSError as exc:
        raise ReadError(f"{path}: cannot read ({exc})") from None
    rows = []
    # line 1 is the header, so the first record is on line 2
    for n, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
        rec: Record = {
            k.strip().lower(): (v.strip() if isinstance(v, str) else None)
            for k, v in row.items()
            if k
        }
        rec = {k: (v if v != "" else None) for k, v in rec.items()}
        rec["_origin"] = (name, n)
        rows.append(rec)
    return rows


def _csv_files(folder: Path) -> list[Path]:
    """CSVs in the folder and its subfolders (up to ``_SEARCH_DEPTH``), shallowest first."""
    found = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() == ".csv"
        and p.is_file()
        and len(p.relative_to(folder).parts) <= _SEARCH_DEPTH
    ]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), p.as_posix().lower()))


def _resources(folder: Path) -> tuple[list[dict[str, Any]], str]:
    dp = folder / "datapackage.json"
    if not dp.exists():
        return [], ""
    try:
        meta = json.loads(dp.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"{dp}: cannot read ({exc})") from None
    if not isinstance(meta, dict):
        raise ReadError(f"{dp}: not a data package (expected a JSON object)")
    version = str(meta.get("version") or meta.get("profile") or "")
    return [r for r in meta.get("resources") or [] if isinstance(r, dict)], version


def _locate(folder: Path, out: Loaded) -> tuple[dict[str, Path], str]:
    """Table name -> CSV. A ``datapackage.json`` path is used when it exists; when it does not
    (the CSVs moved to ``data/``, or the case differs) the file of that name is looked for
    under the folder instead of refusing the package, and the repair reported."""
    resources, version = _resources(folder)
    files = _csv_files(folder)
    by_name: dict[str, Path] = {}
    by_table: dict[str, Path] = {}
    for p in files:
        by_name.setdefault(p.name.lower(), p)
        by_table.setdefault(table_name(p.stem), p)
    chosen: dict[str, Path] = {}
    for res in resources:
        raw = res.get("path")
        given = raw[0] if isinstance(raw, list) and raw else raw
        given = given if isinstance(given, str) else ""
        rname = str(res.get("name") or Path(given).stem)
        table = table_name(rname)
        if given:
            exact = (folder / given).resolve()
            if exact.is_file() and exact.is_relative_to(folder.resolve()):
                chosen.setdefault(table, exact)
                continue
        found = by_name.get(Path(given).name.lower()) if given else None
        found = found or by_name.get(f"{rname.lower()}.csv") or by_table.get(table)
        if found is not None and table not in chosen:
            chosen[table] = found
            where = found.relative_to(folder).as_posix()
            out.repaired.append(
                Repair(
                    "datapackage.json",
                    "",
                    "file",
                    "datapackage-path",
                    f"resource {rname!r}: {given or '(no path)'} does not exist; read {where}",
                )
            )
    for p in files:
        chosen.setdefault(table_name(p.stem), p)
    return {t: p.resolve() for t, p in chosen.items()}, version


def _load_package(folder: Path) -> Loaded:
    folder = folder.resolve()
    out = Loaded("")
    paths, version = _locate(folder, out)
    if "services" not in paths:
        raise ReadError(f"{folder}: no services.csv (not an HSDS datapackage)")
    legacy = bool(set(paths) & LEGACY_MARKERS) or version.startswith(("1", "2"))
    tables: dict[str, list[Record]] = {}
    for table in set(paths) | ASSEMBLED_TABLES:
        path = paths.get(table)
        tables[table] = _read_csv(folder, path, out)
        if path is None:
            continue
        name = path.relative_to(folder).as_posix()
        out.files.append(SourceFile(name, table, len(tables[table])))
        if path.stem != table:
            out.repaired.append(
                Repair(name, "", "file", "file-name", f"{path.name} read as the {table} table")
            )
    if legacy:
        _undo_legacy(tables)
    out.format = "hsds-legacy-datapackage" if legacy else "hsds-3-tabular"
    _assemble(tables, out)
    return out


ASSEMBLED_TABLES = {
    "organizations",
    "services",
    "locations",
    "service_at_location",
    "addresses",
    "phones",
    "schedules",
    "languages",
    "service_areas",
    "taxonomy_terms",
    "taxonomies",
    "attributes",
    "cost_options",
    "service_capacity",
    "units",
}


def _undo_legacy(t: dict[str, list[Record]]) -> None:
    """HSDS 1.x/2.0 -> 3.x renames (see the HSDS changelog)."""
    if not t.get("taxonomy") and not t["taxonomy_terms"] and _legacy_taxonomy(t["taxonomies"]):
        # a 1.x ``taxonomy`` table written under the plural name
        t["taxonomy"], t["taxonomies"] = t["taxonomies"], []
    for name, kind in (("physical_address", "physical"), ("postal_address", "postal")):
        for r in t.pop(name, []):
            t["addresses"].append({**r, "address_type": r.get("address_type") or kind})
    for r in t.pop("regular_schedule", []):
        day = _WEEKDAYS.get(str(r.get("weekday") or "").strip().lower())
        t["schedules"].append({**r, "freq": "WEEKLY", "byday": day})
    for r in t.pop("holiday_schedule", []):
        when = " to ".join(x for x in (r.get("start_date"), r.get("end_date")) if x)
        closed = str(r.get("closed") or "").lower() in ("true", "1", "yes")
        text = f"Closed {when}" if closed else f"Holiday hours {when}"
        dates = {"closed_from": r.get("start_date"), "closed_until": r.get("end_date")}
        t["schedules"].append(
            {
                **r,
                "description": text,
                "opens_at": None,
                "closes_at": None,
                **(dates if closed and r.get("start_date") else {}),
            }
        )
    for r in t.pop("taxonomy", []):
        vocab = str(r.get("vocabulary") or "local")
        t["taxonomy_terms"].append(
            {**r, "code": r.get("code") or r.get("id"), "taxonomy_id": f"vocab:{vocab}"}
        )
        if not any(x["id"] == f"vocab:{vocab}" for x in t["taxonomies"]):
            t["taxonomies"].append({"id": f"vocab:{vocab}", "name": vocab, "uri": vocab})
    for name in ("service_taxonomy", "service_attribute"):
        for r in t.pop(name, []):
            t["attributes"].append(
                {
                    **r,
                    "link_id": r.get("service_id"),
                    "link_type": "service",
                    "taxonomy_term_id": r.get("taxonomy_id") or r.get("taxonomy_term_id"),
                }
            )
    by_service = {s["id"]: s for s in t["services"] if s.get("id")}
    for r in t.pop("eligibility", []):
        s = by_service.get(r.get("service_id") or "")
        if s is None:
            continue
        elig = r.get("eligibility")
        if elig:
            s["eligibility_description"] = elig
        lo, hi = r.get("minimum_age"), r.get("maximum_age")
        if lo is None and hi is None and elig:
            lo, hi = _ages_from_text(str(elig))
        s.setdefault("minimum_age", lo)
        s["minimum_age"] = s["minimum_age"] or lo
        s["maximum_age"] = s.get("maximum_age") or hi
    for r in t["languages"]:
        if r.get("language") and not r.get("name"):
            r["name"] = r["language"]
    for r in t.pop("payment_accepted", []):
        t["cost_options"].append({**r, "option": r.get("payment")})
    t["accessibility"] = t.pop("accessibility_for_disabilities", [])


def _legacy_taxonomy(rows: list[Record]) -> bool:
    return any("vocabulary" in r or "parent_name" in r for r in rows)


def _ages_from_text(text: str) -> tuple[str | None, str | None]:
    m = re.search(r"(\d+)\s*(?:-|to)\s*(\d+)", text)
    if m:
        return m.group(1), m.group(2)
    m = re.search(r"(\d+)\s*(?:\+|and (?:over|older)|or older)", text)
    if m:
        return m.group(1), None
    return None, None


def _assemble(t: dict[str, list[Record]], out: Loaded) -> None:
    """Join the 3.x tables by id into dereferenced services; rows with unknown keys rejected."""
    orgs = {r["id"]: r for r in t["organizations"] if r.get("id")}
    locs = {r["id"]: r for r in t["locations"] if r.get("id")}
    services = {r["id"]: r for r in t["services"] if r.get("id")}
    for table in ("organizations", "locations", "services"):
        for r in t[table]:
            if not r.get("id"):
                out.rejected.append(Rejection.at(r["_origin"], table, "no id"))
    sals = {r["id"]: r for r in t["service_at_location"] if r.get("id")}
    # most specific first: a phone or schedule of a service at one location belongs there
    owners = {
        "service_at_location": sals,
        "service": services,
        "location": locs,
        "organization": orgs,
    }
    for table, key, required in (
        ("addresses", "location_id", True),
        ("phones", "owner id", True),
        ("schedules", "owner id", False),
        ("languages", "owner id", True),
        ("service_areas", "service_id", True),
        ("cost_options", "service_id", True),
        ("accessibility", "location_id", True),
    ):
        _attach(t.get(table, []), owners, table, key, out, required=required)
    _attach_capacities(t, services, out)
    _attach_attributes(t, services, out)
    _attach_locations(t, services, locs, out)
    for s in services.values():
        org_id = s.get("organization_id")
        if org_id:
            s["organization"] = _provider(s, org_id, orgs, out)
        out.services.append(s)


def _attach(
    rows: list[Record],
    owners: dict[str, dict[str, Record]],
    table: str,
    key: str,
    out: Loaded,
    *,
    required: bool,
) -> None:
    """Put each row of ``table`` in a list named after the table on the first owner it names
    (by ``<kind>_id``); one naming an unknown owner, or none when one is ``required``, is
    rejected."""
    for r in rows:
        kind = next((k for k in owners if r.get(f"{k}_id")), None)
        if kind is None:
            if required:
                out.rejected.append(Rejection.at(r["_origin"], table, f"no {key}"))
            continue
        ref = r[f"{kind}_id"]
        owner = owners[kind].get(ref)
        if owner is None:
            out.rejected.append(Rejection.at(r["_origin"], table, f"unknown {kind}_id {ref}"))
            continue
        owner.setdefault(table, []).append(r)


def _attach_capacities(
    t: dict[str, list[Record]], services: dict[str, Record], out: Loaded
) -> None:
    units = {r["id"]: r for r in t["units"] if r.get("id")}
    for r in t["service_capacity"]:
        s = services.get(r.get("service_id") or "")
        if s is None:
            out.rejected.append(
                Rejection.at(r["_origin"], "service_capacity", "unknown service_id")
            )
            continue
        unit = units.get(r.get("unit_id") or "")
        s.setdefault("capacities", []).append({**r, "unit": unit})


def _attach_attributes(
    t: dict[str, list[Record]], services: dict[str, Record], out: Loaded
) -> None:
    """Each service's attributes with their taxonomy term and taxonomy dereferenced."""
    terms = {r["id"]: r for r in t["taxonomy_terms"] if r.get("id")}
    taxonomies = {r["id"]: r for r in t["taxonomies"] if r.get("id")}
    for r in t["attributes"]:
        term = terms.get(r.get("taxonomy_term_id") or "")
        owner = services.get(r.get("link_id") or "")
        if term is None or owner is None:
            what = "taxonomy_term_id" if term is None else "link_id"
            out.rejected.append(Rejection.at(r["_origin"], "attributes", f"unknown {what}"))
            continue
        tax = taxonomies.get(term.get("taxonomy_id") or "")
        owner.setdefault("attributes", []).append(
            {**r, "taxonomy_term": {**term, "taxonomy_detail": tax}}
        )


def _attach_locations(
    t: dict[str, list[Record]],
    services: dict[str, Record],
    locs: dict[str, Record],
    out: Loaded,
) -> None:
    for r in t["service_at_location"]:
        s, loc = services.get(r.get("service_id") or ""), locs.get(r.get("location_id") or "")
        if s is None or loc is None:
            what = "service_id" if s is None else "location_id"
            out.rejected.append(
                Rejection.at(r["_origin"], "service_at_location", f"unknown {what}")
            )
            continue
        s.setdefault("service_at_locations", []).append({**r, "location": loc})


def _provider(service: Record, org_id: str, orgs: dict[str, Record], out: Loaded) -> Record:
    """The service's organization row, or a stub when the export dropped it (made once and
    shared by every service naming it, each one noted as repaired)."""
    if org_id not in orgs:
        orgs[org_id] = _organization_stub(service, org_id, out)
        return orgs[org_id]
    stub = orgs[org_id].get("_stub")
    if stub:
        out.repaired.append(_stub_repair(service, org_id, f"provided by the stub named {stub!r}"))
    return orgs[org_id]


def _organization_stub(service: Record, org_id: str, out: Loaded) -> Record:
    """A service whose organization row is missing keeps its provider as a stub Organization
    named from the service (flagged by ``_stub``; the mapping tags it), rather than being
    lost: the service itself is usually fine, the export just dropped the organization."""
    name = str(service.get("name") or "").strip() or f"Organization {org_id}"
    out.repaired.append(_stub_repair(service, org_id, f"made a stub Organization named {name!r}"))
    return {"id": org_id, "name": name, "_origin": service["_origin"], "_stub": name}


def _stub_repair(service: Record, org_id: str, what: str) -> Repair:
    return Repair.at(
        service["_origin"],
        "HealthcareService",
        "organization-stub",
        f"organization_id {org_id} is not in the organizations table; {what}",
    )
