"""Load benchmark: `geo-crm serve` (gunicorn gthread) on the 1M-customer bench database,
driven by wrk over loopback with a mix of API requests as several roles.

    .venv/bin/python bench/load_bench.py                     # 60 s per setting, default settings
    .venv/bin/python bench/load_bench.py --settings 2x8x5 --duration 60 --connections 16

Mix (weights): customer list pages in a city box (25), vector tiles at z6/z10/z13 (15 each,
random tiles over Finland), radius queries 5 km around a random point (15), density by
region (5) and by 10 km hexagon (10). Roles: admin, executive (see everything), regional,
sales, account (scoped). Every request goes to 127.0.0.1 only. Tokens are issued directly
in the database for the run and deleted afterwards.

Settings `WxTxP`: gunicorn workers x threads per worker x SQLAlchemy pool size per worker
(max_overflow is 2 x pool). Each setting gets a warm-up (not measured) then a bounded run.
Prints sustained requests/s, p50/p90/p99 latency, the error rate (non-2xx/3xx + socket
errors + timeouts) and the settings; the error rate must be 0.

The bench database `geocrm_bench` (load_sample(customers=1_000_000, seed=1)) is created by
bench/reports_bench.ensure_bench_db when missing (never dropped)."""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
ROLES = ["admin", "executive", "regional", "sales", "account"]
MIX = [("list", 25), ("tile_z6", 15), ("tile_z10", 15), ("tile_z13", 15), ("radius", 15),
       ("density_region", 5), ("density_hex", 10)]
# populated places (lon, lat) to centre requests on: where the sample's customers are
CITIES = [(24.94, 60.17), (23.76, 61.50), (22.27, 60.45), (25.47, 65.01), (27.68, 62.89), (25.75, 62.24),
          (24.66, 60.21), (25.66, 60.98), (21.62, 63.10), (29.76, 62.60)]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def request_path(kind: str, rng: random.Random) -> str:
    lon, lat = rng.choice(CITIES)
    lon, lat = lon + rng.uniform(-0.3, 0.3), lat + rng.uniform(-0.15, 0.15)
    if kind == "list":
        d = rng.choice([0.05, 0.1, 0.2])
        return (f"/api/v1/customers?limit=50&bbox={lon - d:.4f},{lat - d / 2:.4f},{lon + d:.4f},{lat + d / 2:.4f}"
                + rng.choice(["", "&status=active", "&sort=name", "&level=key,major"]))
    if kind.startswith("tile_z"):
        z = int(kind[6:])
        x, y = tile_of(lon, lat, z)
        return f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt"
    if kind == "radius":
        return f"/api/v1/customers/within-radius?lon={lon:.5f}&lat={lat:.5f}&radius_m=5000&limit=100"
    if kind == "density_region":
        return "/api/v1/stats/density?by=region&revenue=false"
    if kind == "density_hex":
        return "/api/v1/stats/density?by=hex&hex_size_m=10000&revenue=false"
    raise ValueError(kind)


def build_requests(tokens: dict[str, str], n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    return [(k, tokens[rng.choice(ROLES)], request_path(k, rng)) for k in (rng.choice(kinds) for _ in range(n))]


def issue_tokens(url: str) -> tuple[dict[str, str], list[str]]:
    from geo_crm.models import User
    from geo_crm.security.auth import _digest, issue_token
    e = create_engine(url)
    out = {}
    with Session(e) as s, s.begin():
        for u in s.query(User).filter(User.username.in_(ROLES)):
            out[u.username] = issue_token(s, u, timedelta(hours=3))[0]
    e.dispose()
    digests = [_digest(t) for t in out.values()]
    missing = set(ROLES) - set(out)
    if missing:
        raise SystemExit(f"bench database lacks demo users {sorted(missing)}")
    return out, digests


def revoke(url: str, digests: list[str]) -> None:
    e = create_engine(url)
    with e.begin() as c:
        c.execute(text("DELETE FROM api_token WHERE token_sha256 = ANY(:d)"), {"d": digests})
    e.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, workers: int, threads: int, pool: int, log: Path, statement_timeout_ms: int):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": url, "DB_POOL_SIZE": str(pool), "PATH": f"{BIN}:{os.environ['PATH']}",
               "STATEMENT_TIMEOUT_MS": str(statement_timeout_ms)}
        env.pop("DATABASE_REPLICA_URL", None)
        env.setdefault("SECRET_KEY", "load-bench-" + "x" * 24)
        self.proc = subprocess.Popen([str(BIN / "geo-crm"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--workers", str(workers), "--threads", str(threads), "--no-reap"],
                                     cwd=ROOT, env=env, start_new_session=True, stdout=open(log, "ab"),
                                     stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            if self.proc.poll() is not None:
                raise SystemExit("server exited:\n" + log.read_text()[-3000:])
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def run_wrk(base: str, req_file: Path, duration: int, connections: int, threads: int) -> dict:
    assert base.startswith("http://127.0.0.1:"), "loopback only"
    env = {**os.environ, "LOAD_MIX_REQUESTS": str(req_file)}
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "30s",
           "-s", str(Path(__file__).with_name("load_mix.lua")), base]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("LOAD_MIX_RESULT ")), None)
    if line is None:
        raise SystemExit("wrk failed:\n" + out.stdout + out.stderr)
    return json.loads(line[len("LOAD_MIX_RESULT "):])


def probe(base: str, tokens: dict[str, str], seed: int) -> None:
    """One request per kind and role, one at a time, cold then warm (in-process caches):
    latency without contention, and every kind must answer 2xx (a broken mix is not a
    benchmark)."""
    rng = random.Random(seed + 1)
    print(f"{'single requests (ms)':<16}" + "".join(f"{r:>18}" for r in ROLES), flush=True)
    for kind, _ in MIX:
        path = request_path(kind, rng)
        cells = []
        for role in ROLES:
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                r = requests.get(base + path, headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=120)
                times.append((time.perf_counter() - t0) * 1000)
                if r.status_code not in (200, 204):
                    raise SystemExit(f"{kind} as {role}: {path} -> {r.status_code} {r.text[:300]}")
            cells.append(f"{times[0]:8.0f} /{times[1]:7.0f}")
        print(f"{kind:<16}" + "".join(f"{c:>18}" for c in cells), flush=True)
    print("(cold / warm)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settings", default="2x8x5,3x4x4,1x16x10",
                    help="comma-separated WORKERSxTHREADSxPOOL (default: %(default)s)")
    ap.add_argument("--duration", type=int, default=60, help="measured seconds per setting")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured seconds per setting")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--requests", type=int, default=5000, help="distinct requests in the mix table")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--statement-timeout-ms", type=int, default=15000, help="the server's STATEMENT_TIMEOUT_MS")
    ap.add_argument("--database", default=None, help="URL (default: the embedded cluster's geocrm_bench)")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    if args.database:
        url = args.database
    else:
        from bench.reports_bench import BENCH_CUSTOMERS, ensure_bench_db
        url = ensure_bench_db(log=lambda m: print(m, flush=True))
        e = create_engine(url)
        with e.connect() as c:
            n = c.execute(text("SELECT count(*) FROM customer")).scalar()
        e.dispose()
        print(f"geocrm_bench: {n:,} customers", flush=True)
        if n < BENCH_CUSTOMERS:
            raise SystemExit("the bench database is not fully loaded")
    tokens, token_digests = issue_tokens(url)
    reqs = build_requests(tokens, args.requests, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="geocrm-load-"))
    req_file = tmp / "requests.tsv"
    req_file.write_text("".join(f"{k}\t{t}\t{p}\n" for k, t, p in reqs))
    print(f"mix: {', '.join(f'{k} {w}%' for k, w in MIX)}; roles: {', '.join(ROLES)}; "
          f"{args.connections} connections, {args.wrk_threads} wrk threads, {args.duration} s per setting", flush=True)
    results, probed = [], False
    try:
        for spec in args.settings.split(","):
            w, t, p = (int(x) for x in spec.lower().split("x"))
            srv = Server(url, w, t, p, tmp / f"serve-{spec}.log", args.statement_timeout_ms)
            try:
                if not probed:
                    probe(srv.base, tokens, args.seed)
                    probed = True
                if args.warmup:
                    run_wrk(srv.base, req_file, args.warmup, args.connections, args.wrk_threads)
                r = run_wrk(srv.base, req_file, args.duration, args.connections, args.wrk_threads)
            finally:
                srv.stop()
            errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"] + r["err_status"]
            rps = r["requests"] / (r["duration_us"] / 1e6)
            row = {"settings": f"workers={w} threads={t} pool={p} (max_overflow={2 * p})"
                               f" statement_timeout={args.statement_timeout_ms / 1000:g}s", "rps": rps,
                   "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
                   "max_ms": r["max_us"] / 1000, "requests": r["requests"], "errors": errors,
                   "error_rate": errors / max(1, r["requests"]), "by_status": r["by_status"]}
            results.append(row)
            print(f"{row['settings']:<62} {rps:8.1f} req/s  p50 {row['p50_ms']:7.1f} ms  p90 {row['p90_ms']:7.1f} ms"
                  f"  p99 {row['p99_ms']:7.1f} ms  max {row['max_ms']:7.0f} ms  requests {r['requests']}"
                  f"  errors {errors} ({row['error_rate']:.2%})  statuses {r['by_status']}", flush=True)
    finally:
        revoke(url, token_digests)
        shutil.rmtree(tmp, ignore_errors=True)
    best = max(results, key=lambda x: x["rps"] if x["errors"] == 0 else -1)
    print(f"best with zero errors: {best['settings']}: {best['rps']:.1f} req/s, p50 {best['p50_ms']:.1f} ms, "
          f"p99 {best['p99_ms']:.1f} ms" if best["errors"] == 0 else "every setting had errors")
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
