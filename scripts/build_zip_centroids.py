"""Build directory-api's ZIP centroid table from the US Census Bureau Gazetteer ZCTA file.

The Gazetteer files are works of the US federal government: public domain. Download the
national ZCTA file (e.g. https://www2.census.gov/geo/docs/maps-data/data/gazetteer/
2020_Gazetteer/2020_Gaz_zcta_national.zip), unzip it, then:

    uv run python scripts/build_zip_centroids.py 2020_Gaz_zcta_national.txt

It writes services/directory-api/src/directory_api/geo/data/zcta_centroids.csv: one row per ZIP
Code Tabulation Area, ``zcta,latitude,longitude`` (the Census internal point, which lies inside
the area, rounded to 6 decimals as published), sorted by ZCTA.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1]
    / "services/directory-api/src/directory_api/geo/data/zcta_centroids.csv"
)


def read_gazetteer(path: Path) -> list[tuple[str, float, float]]:
    """Rows of a Gazetteer ZCTA file: tab-separated, a header naming GEOID, INTPTLAT and
    INTPTLONG (the last header cell carries trailing spaces in the Census files)."""
    with path.open(encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = [cell.strip() for cell in next(reader)]
        geoid, lat, lon = (header.index(n) for n in ("GEOID", "INTPTLAT", "INTPTLONG"))
        rows = []
        for row in reader:
            if not row:
                continue
            code = row[geoid].strip()
            if len(code) != 5 or not code.isdigit():
                raise ValueError(f"{path}: {code!r} is not a five-digit ZCTA")
            rows.append((code, float(row[lat]), float(row[lon])))
    return sorted(rows)


def write_table(rows: list[tuple[str, float, float]], out: Path) -> None:
    with out.open("w", encoding="utf-8", newline="") as f:
        f.write("zcta,latitude,longitude\n")
        for code, lat, lon in rows:
            f.write(f"{code},{lat:.6f},{lon:.6f}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gazetteer", type=Path, help="a Census Gazetteer ZCTA .txt file")
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = read_gazetteer(args.gazetteer)
    write_table(rows, args.output)
    print(f"{len(rows)} ZCTAs written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
