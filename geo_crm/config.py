"""Configuration from the environment (12-factor), with `.env` honoured.

Order of precedence: real environment variables, then `<repo>/.env`, then the
per-install generated `var/secrets.env`. Without `DATABASE_URL` the embedded
project-local cluster is used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from dotenv import load_dotenv

from geo_crm import embedded_pg


def load_env() -> None:
    """Load `.env` then generated secrets without overriding the real environment."""
    root = embedded_pg.repo_root()
    load_dotenv(root / ".env", override=False)
    secrets_file = root / "var" / "secrets.env"
    if secrets_file.exists():
        load_dotenv(secrets_file, override=False)


def database_url() -> str:
    """`DATABASE_URL` if set, else the embedded cluster's URL."""
    url = os.environ.get("DATABASE_URL")
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        return url
    return embedded_pg.url()


def _bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    return default if v is None else v.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    database_url: str
    database_replica_url: str | None = None
    secret_key: str = ""
    tile_url: str | None = None
    tile_attribution: str = "© OpenStreetMap contributors (ODbL)"
    churn_months: int = 6
    token_ttl_hours: int = 12
    session_cookie_secure: bool = False
    statement_timeout_ms: int = 15000
    db_pool_size: int = 5
    map_center: tuple[float, float] = (60.17, 24.94)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Settings":
        load_env()
        secret = os.environ.get("SECRET_KEY") or embedded_pg.ensure_secrets()["SECRET_KEY"]
        return cls(
            database_url=database_url(),
            database_replica_url=os.environ.get("DATABASE_REPLICA_URL") or None,
            secret_key=secret,
            tile_url=os.environ.get("TILE_URL") or None,
            tile_attribution=os.environ.get("TILE_ATTRIBUTION", "© OpenStreetMap contributors (ODbL)"),
            churn_months=int(os.environ.get("CHURN_MONTHS", 6)),
            token_ttl_hours=int(os.environ.get("TOKEN_TTL_HOURS", 12)),
            session_cookie_secure=_bool("SESSION_COOKIE_SECURE", False),
            statement_timeout_ms=int(os.environ.get("STATEMENT_TIMEOUT_MS", 15000)),
            db_pool_size=int(os.environ.get("DB_POOL_SIZE", 5)),
        )

    def flask_config(self) -> dict:
        return {
            "SECRET_KEY": self.secret_key,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "WTF_CSRF_TIME_LIMIT": None,
            "MAX_CONTENT_LENGTH": 200 * 1024 * 1024,
            "GEO_CRM": self,
        }
