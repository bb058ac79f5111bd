"""Write a synthetic, deterministic Open Referral HSDS 3.x directory (dereferenced JSON: a list
of service objects) around Chicago, for demos and benchmarks.

    python3 -m uv run --frozen python scripts/generate_demo_directory.py --seed 1 --count 300 \
        --output .data/demo-directory.json

Positions are real Chicago ZIP centroids (directory-api's public-domain Census table) jittered
within ~1 km; which ZIPs are Chicago's, and their cities and counties, come from the ``zipcodes``
package (its USPS-derived names; a dev dependency). Names, phones (555) and e-mails (example.org)
are invented.

``--area metro`` spreads the services over the Chicago metropolitan area instead (the ZIPs of
Cook, DuPage, Kane, Lake, McHenry, Will and Kendall counties), for benchmarks with 100,000
services: 57 city ZIPs would pile ~1,800 services on each centroid and put most of them within
10 km of any point in the city. A ZIP is picked uniformly (ZIPs hold roughly similar numbers of
people, so dense areas get more services), then the point is jittered uniformly over a disk as
wide as the distance to the nearest other ZIP centroid (1 to 8 km: ~1.5 km downtown, ~5 km in
the exurbs), never into Lake Michigan or Indiana. Within 10 km of the Loop that leaves ~10% of
the services, ~3% around Naperville.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import zipcodes
from directory_api.geo.zipcodes import centroid

SDOHCC_SYSTEM = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
)
NAMESPACE = uuid.UUID("6f1e0c55-2d3b-4c59-9b0a-6c1a6e4d0b11")
# Chicago city limits, roughly (the ZIP centroids all fall inside, plus the 1 km jitter)
CHICAGO_BBOX = (41.62, -87.96, 42.03, -87.51)  # south, west, north, east
# --area metro: the Illinois counties of the Chicago metropolitan area
METRO_COUNTIES = (
    "Cook County",
    "DuPage County",
    "Kane County",
    "Lake County",
    "McHenry County",
    "Will County",
    "Kendall County",
)
# Lake Michigan's Illinois shore, south to north (latitude, longitude); east of it is water
SHORE: list[tuple[float, float]] = [
    (41.64, -87.525),
    (41.72, -87.53),
    (41.76, -87.55),
    (41.80, -87.58),
    (41.85, -87.605),
    (41.88, -87.612),
    (41.92, -87.625),
    (41.97, -87.645),
    (42.02, -87.665),
    (42.07, -87.68),
    (42.12, -87.73),
    (42.18, -87.77),
    (42.25, -87.80),
    (42.35, -87.82),
    (42.50, -87.80),
]
INDIANA_LONGITUDE = -87.525

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
    """Real Chicago ZIPs (606xx) with their Census centroids."""
    out = []
    for entry in zipcodes.filter_by(city="Chicago", state="IL"):
        code = entry["zip_code"]
        point = centroid(code)
        if code.startswith("606") and point is not None:
            if entry.get("zip_code_type", "STANDARD") != "STANDARD":
                continue
            lat, lon = point
            south, west, north, east = CHICAGO_BBOX
            if south < lat < north and west < lon < east:
                out.append((code, lat, lon))
    return sorted(out)


def metro_zips() -> list[tuple[str, float, float, str, float]]:
    """(ZIP, latitude, longitude, city, jitter radius in degrees of latitude) for the standard
    ZIPs of the metro counties; the radius is the distance to the nearest other centroid
    (bounded to 1..8 km)."""
    points = []
    for entry in zipcodes.filter_by(state="IL"):
        if entry.get("county") not in METRO_COUNTIES or entry.get("zip_code_type") != "STANDARD":
            continue
        point = centroid(entry["zip_code"])
        if point is None:
            continue
        points.append((entry["zip_code"], *point, entry["city"]))
    points.sort()
    out = []
    for code, lat, lon, city in points:
        scale = math.cos(math.radians(lat))
        nearest = min(
            math.hypot(lat - lat2, (lon - lon2) * scale)
            for code2, lat2, lon2, _ in points
            if code2 != code and (lat2, lon2) != (lat, lon)
        )
        # a floor for centroids that nearly coincide, a ceiling for the rural edge
        out.append((code, lat, lon, city.title(), min(max(nearest, 0.009), 0.072)))
    return out


def on_land(lat: float, lon: float) -> bool:
    """West of Lake Michigan's shore and of the Indiana line (roughly)."""
    if lon >= INDIANA_LONGITUDE:
        return False
    if lat <= SHORE[0][0]:
        return True
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(SHORE):
        if lat1 <= lat <= lat2:
            return lon < lon1 + (lon2 - lon1) * (lat - lat1) / (lat2 - lat1)
    return lon < SHORE[-1][1]


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


def _metro_point(
    rng: random.Random, zips: list[tuple[str, float, float, str, float]]
) -> tuple[str, float, float, str]:
    code, lat, lon, city, radius = zips[rng.randrange(len(zips))]
    while True:
        r, a = radius * math.sqrt(rng.random()), rng.random() * 2 * math.pi
        lat2 = round(lat + r * math.sin(a), 6)
        lon2 = round(lon + r * math.cos(a) / math.cos(math.radians(lat)), 6)
        if on_land(lat2, lon2):
            return code, lat2, lon2, city


def generate(seed: int, count: int, area: str = "chicago") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    zips = chicago_zips()
    metro = metro_zips() if area == "metro" else []
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
            "description": f"{kind} run by {org_name}, serving "
            f"{'Chicago area' if metro else 'Chicago'} residents.",
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
        elif metro:
            code, lat2, lon2, city = _metro_point(rng, metro)
        else:
            city = "Chicago"
            code, lat, lon = zips[rng.randrange(len(zips))]
            # ~1 km jitter: 0.009 deg latitude; longitude scaled by cos(latitude)
            r, a = 0.009 * math.sqrt(rng.random()), rng.random() * 2 * math.pi
            lat2 = round(lat + r * math.sin(a), 6)
            lon2 = round(lon + r * math.cos(a) / math.cos(math.radians(lat)), 6)
        if not virtual:
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
                        "city": city,
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
    p.add_argument(
        "--area",
        choices=("chicago", "metro"),
        default="chicago",
        help="chicago: city ZIPs (the demo); metro: the metro area's ZIPs (benchmarks)",
    )
    args = p.parse_args(argv)
    data = generate(args.seed, args.count, args.area)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(data)} services to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
