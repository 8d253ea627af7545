"""Long schemathesis run over every /api/v1 operation, as every demo role.

    .venv/bin/python bench/fuzz_api.py                       # 50 examples/op, all roles
    .venv/bin/python bench/fuzz_api.py --examples 200 --roles admin,customer
    .venv/bin/python bench/fuzz_api.py --database-url postgresql+psycopg2://...

Same generator and checks as tests/security/test_schemathesis.py (no 5xx, documented
status codes, content types and response schemas), with many more examples. By default
it creates a throw-away database in the embedded cluster (migrated to head, the test
sample: 600 customers, seed 7) and drops it at the end; with --database-url it uses that
database (it must be migrated to head). Either way all work happens inside ONE outer
transaction that is rolled back, with a savepoint per operation: nothing the fuzzer
writes (or deletes) is kept. Prints the calls and statuses per role, then the
failures counted by check and by operation; exits 1 when there is any failure that is
not a known finding (tests/security/test_schemathesis.py KNOWN).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROLES = ["admin", "executive", "sales", "regional", "account", "service", "logistics", "customer"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=50, help="examples per operation and role")
    ap.add_argument("--roles", default=",".join(ROLES))
    ap.add_argument("--database-url", default=None, help="default: a throw-away database")
    ap.add_argument("--only", default="", help="only operations whose path contains this text")
    args = ap.parse_args()
    logging.disable(logging.ERROR)   # the app logs each 500 with a traceback; the summary counts them

    from sqlalchemy.orm import Session

    from geo_crm.app import create_app
    from geo_crm.config import Settings
    from geo_crm.db import make_engine
    from geo_crm.models import User
    from geo_crm.security.auth import issue_token
    from tests.conftest import _TestDatabase
    from tests.security.fuzzing import EXPENSIVE, Outcome, fuzz_operation, load_schema, operations
    from tests.security.test_schemathesis import KNOWN

    url, drop = args.database_url, None
    if not url:
        url, drop = _throwaway_database()
    engine = make_engine(url, pool_size=2)
    conn = engine.connect()
    outer = conn.begin()
    try:
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            tokens = {u.username: issue_token(s, u, timedelta(hours=2))[0]
                      for u in s.query(User).filter(User.username.in_(ROLES))}
            s.commit()
        app = create_app(Settings(database_url=url, secret_key="fuzz-" + "x" * 30, tile_url=None),
                         database=_TestDatabase(conn), TESTING=True)
        schema = load_schema()
        ops = [op for op in operations(schema) if args.only in op.path]
        by_check, by_op = Counter(), Counter()
        failures = []
        t_all = time.perf_counter()
        for role in args.roles.split(","):
            out = Outcome()
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            for op in ops:
                n = max(2, args.examples // 10) if (op.method.upper(), op.path) in EXPENSIVE else args.examples
                sp = conn.begin_nested()
                try:
                    fuzz_operation(app, op, headers, n, outcome=out)
                finally:
                    sp.rollback()
            print(f"{role:10s} {out.calls:6d} calls {out.seconds:7.1f} s  statuses "
                  f"{dict(sorted(out.statuses.items()))}  failures {len(out.failures)}", flush=True)
            for f in out.failures:
                by_check[f.check] += 1
                by_op[f"{f.method} {f.path}"] += 1
                failures.append((role, f))
        print(f"\n{len(ops)} operations, {time.perf_counter() - t_all:.0f} s in all")
        print("\nfailures by check:")
        for k, v in by_check.most_common():
            print(f"  {v:5d}  {k}")
        print("\nfailures by operation:")
        for k, v in by_op.most_common():
            print(f"  {v:5d}  {k}")
        new = [(r, f) for r, f in failures if (f.method, f.path, f.check) not in KNOWN]
        if new:
            print("\nnew failures (not in KNOWN):")
            for r, f in new:
                print(f"  [{r}] {f}")
        return 1 if new else 0
    finally:
        outer.rollback()
        conn.close()
        engine.dispose()
        if drop:
            drop()


def _throwaway_database():
    """Create, migrate and fill a database like tests/conftest.py; return (url, drop)."""
    import os
    import secrets

    from alembic import command
    from sqlalchemy import create_engine, text

    from geo_crm.cli import alembic_config
    from geo_crm.sample.loader import load_sample
    from tests.conftest import AS_OF, SAMPLE_CUSTOMERS, SAMPLE_SEED, _server_url, _with_db
    base = _server_url()
    name = f"geocrm_fuzz_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(_with_db(base, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = _with_db(base, name)
    t0 = time.perf_counter()
    command.upgrade(alembic_config(url), "head")
    eng = create_engine(url)
    load_sample(eng, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED, as_of=AS_OF, log=lambda m: None)
    eng.dispose()
    print(f"throw-away database {name} ready in {time.perf_counter() - t0:.0f} s", flush=True)

    def drop():
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url, drop


if __name__ == "__main__":
    sys.exit(main())
