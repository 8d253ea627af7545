"""Engines and sessions. No global state: the engines live on the Flask app
(`app.extensions["geo_crm.db"]`) or are created by the CLI for one command.

Read-only traffic (tiles, density, reports, exports) may go to a replica via
`DATABASE_REPLICA_URL`; writes and read-your-own-writes always use the primary.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, pool_size: int = 5, statement_timeout_ms: int = 15000,
                application_name: str = "geo-crm") -> Engine:
    """An engine with sane pool and timeout settings. The statement timeout protects
    the server from runaway spatial queries. Lock waits give up before the statement
    timeout (at most 5 s, or half the statement timeout), so a blocked write answers
    "busy" (503) rather than "too expensive" (422)."""
    stmt_ms = int(statement_timeout_ms)
    lock_ms = min(5000, max(1, stmt_ms // 2)) if stmt_ms > 0 else 5000
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args={
            "connect_timeout": 5,
            "application_name": application_name,
            "options": f"-c statement_timeout={stmt_ms} -c lock_timeout={lock_ms}",
        },
    )
    return engine


@dataclass
class Database:
    """The primary engine, an optional replica engine, and their session factories."""
    engine: Engine
    replica_engine: Engine | None = None

    def __post_init__(self) -> None:
        self._replica_down_until = 0.0
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.ReadSession = sessionmaker(self.replica_engine or self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        s = self.Session()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    replica_retry_s: float = 15.0

    def read_session(self) -> Session:
        """A session on the replica when one is configured and answering, else the primary.
        A replica that failed is skipped for `replica_retry_s` seconds (no per-request
        connect timeouts while it is down)."""
        if self.replica_engine is not None and time.monotonic() >= self._replica_down_until:
            try:
                with self.replica_engine.connect() as c:
                    c.exec_driver_sql("SELECT 1")
                return self.ReadSession()
            except Exception:  # replica down: fall back to the primary
                self._replica_down_until = time.monotonic() + self.replica_retry_s
        return self.Session()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.replica_engine is not None:
            self.replica_engine.dispose()


def set_app_user(session: Session, user_id: int | None) -> None:
    """Expose the caller to PostgreSQL for the transaction (row-level security policies
    and audit triggers can read `current_setting('geo_crm.user_id', true)`)."""
    session.execute(text("SELECT set_config('geo_crm.user_id', :u, true)"),
                    {"u": "" if user_id is None else str(user_id)})
