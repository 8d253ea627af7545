"""Bulk import benchmark: N customer rows with coordinates (default 100,000) from a
CSV file, through the real import path (read, map, validate, COPY to staging,
duplicate check, set-based merge, membership refresh for the affected customers).

    python bench/import_bench.py [--rows 100000] [--database-url URL] [--commit]

By default the import is rolled back at the end so the target database is unchanged.
Target: under 30 s for 100,000 rows.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    words = ["Pohjolan", "Suomen", "Järvi", "Metsä", "Kivi", "Tuuli", "Aalto", "Koivu", "Mänty", "Lapin"]
    kinds = ["Rakennus", "Kone", "Ruoka", "Sähkö", "Kuljetus", "Puu", "Metalli", "Kauppa", "Auto", "Paino"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "address", "postcode", "city", "level", "status", "lat", "lon"])
        for i in range(rows):
            lat = rng.uniform(60.0, 65.0)
            lon = rng.uniform(21.5, 30.0)
            w.writerow([f"BENCH-{i:07d}", f"{rng.choice(words)} {rng.choice(kinds)} {i} Oy", f"Testikatu {i % 200 + 1}",
                        f"{rng.randint(0, 99999):05d}", "Testilä", rng.choice(["key", "major", "ordinary", "small"]),
                        rng.choice(["active", "prospect"]), f"{lat:.6f}", f"{lon:.6f}"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--database-url")
    ap.add_argument("--commit", action="store_true", help="keep the imported rows")
    args = ap.parse_args()
    from sqlalchemy.orm import Session

    from geo_crm.cli import _engine
    from geo_crm.imports import ImportOptions, run_import
    engine = _engine(args.database_url)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.csv"
        make_csv(path, args.rows)
        print(f"file: {args.rows} rows, {os.path.getsize(path) / 1e6:.1f} MB")
        stages: list[tuple[str, float]] = []
        t0 = time.perf_counter()

        def progress(stage, done, total):
            if not stages or stages[-1][0] != stage:
                stages.append((stage, time.perf_counter() - t0))
        with Session(engine) as s:
            report = run_import(s, path, ImportOptions("customers"), progress=progress)
            elapsed = time.perf_counter() - t0
            if args.commit:
                s.commit()
            else:
                s.rollback()
    for name, at in stages:
        print(f"  {at:6.2f} s  {name}")
    print(f"status={report['status']} inserted={report['inserted']} updated={report['updated']} "
          f"errors={len(report['errors'])} duplicates={len(report['duplicates'])}")
    print(f"total: {elapsed:.2f} s ({args.rows / elapsed:,.0f} rows/s) — target < 30 s: "
          f"{'PASS' if elapsed < 30 else 'FAIL'}")
    return 0 if report["status"] == "imported" and elapsed < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
