"""Write a synthetic, deterministic Open Referral HSDS 3.x directory (dereferenced JSON: a list
of service objects) around Chicago, for demos and benchmarks.

    python3 -m uv run --frozen python scripts/generate_demo_directory.py --seed 1 --count 300 \
        --output .data/demo-directory.json

Positions are real Chicago ZIP centroids (the ``zipcodes`` package) jittered within ~1 km; names,
phones (555) and e-mails (example.org) are invented.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import zipcodes

SDOHCC_SYSTEM = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
)
NAMESPACE = uuid.UUID("6f1e0c55-2d3b-4c59-9b0a-6c1a6e4d0b11")
# Chicago city limits, roughly (the ZIP centroids all fall inside, plus the 1 km jitter)
CHICAGO_BBOX = (41.62, -87.96, 42.03, -87.51)  # south, west, north, east

CATEGORIES: dict[str, str] = {
    "food-insecurity": "Food Insecurity",
    "housing-instability": "Housing Instability",
    "homelessness": "Homelessness",
    "transportation-insecurity": "Transportation Insecurity",
    "financial-insecurity": "Financial Insecurity",
    "utility-insecurity": "Utility Insecurity",
    "employment-status": "Employment Status",
    "social-connection": "Social Connection",
    "intimate-partner-violence": "Intimate Partner Violence",
    "elder-abuse": "Elder Abuse",
    "health-insurance-coverage-status": "Health Insurance Coverage Status",
    "digital-access": "Digital Access",
    "educational-attainment": "Educational Attainment",
    "inadequate-housing": "Inadequate Housing",
    "material-hardship": "Material Hardship",
    "stress": "Stress",
    "veteran-status": "Veteran Status",
}

# (kind, categories, weight): the organisations a Chicago 211 directory is full of
KINDS: list[tuple[str, list[str], int]] = [
    ("Food Pantry", ["food-insecurity"], 20),
    ("Community Kitchen", ["food-insecurity", "social-connection"], 6),
    ("Emergency Shelter", ["homelessness", "housing-instability"], 8),
    ("Housing Counseling Center", ["housing-instability", "financial-insecurity"], 6),
    ("Tenant Rights Legal Aid", ["housing-instability", "inadequate-housing"], 4),
    ("Transit Assistance Program", ["transportation-insecurity"], 5),
    ("Utility Bill Assistance", ["utility-insecurity", "financial-insecurity"], 6),
    ("Job Training Center", ["employment-status", "educational-attainment"], 7),
    ("Workforce Center", ["employment-status"], 4),
    ("Clinic Social Work Office", ["health-insurance-coverage-status", "stress"], 5),
    ("Benefits Enrollment Center", ["health-insurance-coverage-status", "financial-insecurity"], 5),
    ("Senior Center", ["social-connection", "elder-abuse"], 6),
    ("Domestic Violence Services", ["intimate-partner-violence"], 4),
    ("Digital Literacy Lab", ["digital-access", "educational-attainment"], 4),
    ("Veterans Resource Center", ["veteran-status", "employment-status"], 2),
    ("Diaper and Baby Supply Bank", ["material-hardship"], 3),
    ("Financial Coaching Program", ["financial-insecurity"], 4),
]

PREFIXES = [
    "Lakeside",
    "Westside",
    "Southside",
    "Northside",
    "Riverbend",
    "Prairie",
    "Union",
    "Harbor",
    "Maplewood",
    "Cedar",
    "Elm Street",
    "Hope",
    "New Horizons",
    "Good Neighbor",
    "Open Door",
    "Unity",
    "Beacon",
    "Crossroads",
    "Heartland",
    "Bridgeway",
    "Second Chance",
    "Sunrise",
    "Ashland",
    "Halsted",
    "Kedzie",
    "Pulaski",
    "Cicero",
    "Damen",
    "Western Avenue",
    "Archer",
    "Lawndale",
    "Lincoln Park",
    "Pilsen",
    "Bronzeville",
    "Uptown",
    "Humboldt",
    "Avondale",
    "Englewood",
    "Chatham",
    "Rogers Park",
    "Albany Park",
    "Brighton Park",
    "Austin",
    "Hermosa",
]
SUFFIXES = [
    "Community Services",
    "Neighbors",
    "Alliance",
    "Outreach",
    "Collective",
    "Mission",
    "Partners",
    "Network",
    "Center",
    "Coalition",
    "Family Services",
    "Cooperative",
]
STREETS = [
    "N Clark St",
    "S Halsted St",
    "W Division St",
    "N Milwaukee Ave",
    "S Ashland Ave",
    "W 63rd St",
    "S Cottage Grove Ave",
    "W Irving Park Rd",
    "N Broadway",
    "W Madison St",
    "S Pulaski Rd",
    "N Western Ave",
    "W Cermak Rd",
    "S Kedzie Ave",
    "W Lawrence Ave",
    "E 79th St",
    "W North Ave",
    "S State St",
    "W Belmont Ave",
    "W Fullerton Ave",
]
# share of Chicagoans speaking each at home, roughly (English is offered everywhere)
LANGUAGES: list[tuple[str, str, int]] = [
    ("es", "Spanish", 45),
    ("pl", "Polish", 8),
    ("zh", "Chinese", 8),
    ("ar", "Arabic", 5),
    ("tl", "Tagalog", 5),
    ("ko", "Korean", 2),
    ("ur", "Urdu", 2),
    ("ru", "Russian", 2),
]
HOURS: list[tuple[str, str, str, int]] = [  # byday, opens, closes, weight
    ("MO,TU,WE,TH,FR", "09:00", "17:00", 40),
    ("MO,TU,WE", "09:00", "17:00", 10),
    ("MO,WE,FR", "10:00", "14:00", 8),
    ("TU,TH", "16:00", "20:00", 8),  # evenings
    ("MO,TU,WE,TH,FR", "17:00", "21:00", 5),
    ("SA", "09:00", "13:00", 10),  # weekends
    ("SA,SU", "10:00", "16:00", 5),
    ("MO,TU,WE,TH,FR,SA,SU", "00:00", "23:59", 6),  # 24 hours
]
ILLINOIS_EXTENT = json.dumps(
    {
        "type": "Polygon",
        "coordinates": [
            [[-91.51, 36.97], [-87.02, 36.97], [-87.02, 42.51], [-91.51, 42.51], [-91.51, 36.97]]
        ],
    }
)


def chicago_zips() -> list[tuple[str, float, float]]:
    """Real Chicago ZIPs (606xx) with their centroids, from the zipcodes package."""
    out = []
    for entry in zipcodes.filter_by(city="Chicago", state="IL"):
        code = entry["zip_code"]
        if code.startswith("606") and entry.get("lat") and entry.get("long"):
            if entry.get("zip_code_type", "STANDARD") != "STANDARD":
                continue
            lat, lon = float(entry["lat"]), float(entry["long"])
            south, west, north, east = CHICAGO_BBOX
            if south < lat < north and west < lon < east:
                out.append((code, lat, lon))
    return sorted(out)


def _phone(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "number": f"312-555-{rng.randrange(100, 200):04d}",
            "type": "voice",
        }
    ]


def _uid(seed: int, *parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in (seed, *parts))))


def generate(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    zips = chicago_zips()
    kinds = [k for k in KINDS]
    kind_weights = [k[2] for k in KINDS]
    services = []
    for i in range(count):
        kind, cats, _ = rng.choices(kinds, kind_weights)[0]
        org_name = f"{rng.choice(PREFIXES)} {rng.choice(SUFFIXES)}"
        name = f"{org_name} {kind}"
        slug = "".join(c for c in org_name.lower() if c.isalnum())
        virtual = rng.random() < 0.03
        svc_id = _uid(seed, "service", i)
        langs = [{"id": _uid(seed, "lang", i, 0), "code": "en", "name": "English"}]
        for j, (code, lname, w) in enumerate(LANGUAGES, start=1):
            if rng.random() < w / 100:
                langs.append({"id": _uid(seed, "lang", i, j), "code": code, "name": lname})
        byday, opens, closes, _ = rng.choices(HOURS, [h[3] for h in HOURS])[0]
        attributes = [
            {
                "id": _uid(seed, "attr", i, c),
                "link_type": "service",
                "taxonomy_term": {
                    "id": _uid(seed, "term", c),
                    "code": c,
                    "name": CATEGORIES[c],
                    "description": CATEGORIES[c],
                    "taxonomy": {
                        "id": _uid(seed, "taxonomy"),
                        "name": "SDOHCC Temporary Codes",
                        "description": "SDOH Clinical Care temporary codes",
                        "uri": SDOHCC_SYSTEM,
                    },
                },
            }
            for c in cats
        ]
        svc: dict[str, Any] = {
            "id": svc_id,
            "name": name,
            "description": f"{kind} run by {org_name}, serving Chicago residents.",
            "status": "active",
            "email": f"info@{slug}.example.org",
            "url": f"https://{slug}.example.org/",
            "assured_date": f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d}",
            "organization": {
                "id": _uid(seed, "org", i),
                "name": org_name,
                "description": f"{org_name}, a community-based organisation.",
                "email": f"contact@{slug}.example.org",
                "website": f"https://{slug}.example.org/",
                "phones": _phone(rng),
            },
            "phones": _phone(rng),
            "languages": langs,
            "schedules": [
                {
                    "id": _uid(seed, "schedule", i),
                    "freq": "WEEKLY",
                    "byday": byday,
                    "opens_at": opens,
                    "closes_at": closes,
                }
            ],
            "attributes": attributes,
        }
        if rng.random() < 0.8:
            svc["cost_options"] = [
                {"id": _uid(seed, "cost", i), "option": "Free", "amount": 0, "currency": "USD"}
            ]
        if kind == "Senior Center":
            svc["minimum_age"] = 60
        elif rng.random() < 0.1:
            svc["minimum_age"], svc["maximum_age"] = 18, 24
        if virtual:
            location: dict[str, Any] = {
                "id": _uid(seed, "location", i),
                "location_type": "virtual",
                "name": f"{name} (online)",
            }
            svc["service_areas"] = [
                {
                    "id": _uid(seed, "area", i),
                    "name": "Illinois",
                    "extent_type": "geojson",
                    "extent": ILLINOIS_EXTENT,
                }
            ]
        else:
            code, lat, lon = zips[rng.randrange(len(zips))]
            # ~1 km jitter: 0.009 deg latitude; longitude scaled by cos(latitude)
            r, a = 0.009 * math.sqrt(rng.random()), rng.random() * 2 * math.pi
            lat2 = round(lat + r * math.sin(a), 6)
            lon2 = round(lon + r * math.cos(a) / math.cos(math.radians(lat)), 6)
            location = {
                "id": _uid(seed, "location", i),
                "location_type": "physical",
                "name": f"{org_name} - {code}",
                "latitude": lat2,
                "longitude": lon2,
                "addresses": [
                    {
                        "id": _uid(seed, "address", i),
                        "address_1": f"{rng.randrange(100, 9999)} {rng.choice(STREETS)}",
                        "city": "Chicago",
                        "state_province": "IL",
                        "postal_code": code,
                        "country": "US",
                        "address_type": "physical",
                    }
                ],
                "phones": _phone(rng),
            }
        svc["service_at_locations"] = [{"id": _uid(seed, "sal", i), "location": location}]
        services.append(svc)
    return services


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--output", type=Path, default=Path(".data/demo-directory.json"))
    args = p.parse_args(argv)
    data = generate(args.seed, args.count)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(data)} services to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
