"""Backup with pg_dump and restore into a fresh database: every table's row count and
checksum (md5 of its rows in a stable order) match."""
from sqlalchemy import create_engine, text

from geo_crm.backup import backup, restore


def _checksums(url):
    eng = create_engine(url)
    out = {}
    with eng.connect() as c:
        tables = c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).scalars().all()
        for t in tables:
            out[t] = c.execute(text(
                f'SELECT count(*), md5(coalesce(string_agg(r::text, \'|\' ORDER BY r::text), \'\')) FROM "{t}" r')).one()
    eng.dispose()
    return out


def test_backup_restore_round_trip(database_url, tmp_path):
    from tests.conftest import _with_db
    dump = tmp_path / "crm.dump"
    assert backup(database_url, dump) > 10_000
    name = database_url.rsplit("/", 1)[1] + "_restore"
    admin = create_engine(_with_db(database_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        target = _with_db(database_url, name)
        restore(target, dump, clean=False)
        before, after = _checksums(database_url), _checksums(target)
        assert set(before) == set(after) and len(before) > 20
        assert before == after
        assert before["customer"][0] >= 600
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
