"""Server-side revocation of cookie sessions on logout.

Cookie sessions are signed client-side (Flask), so clearing the cookie on logout does
not stop a copy of it (stolen before logout) from working until it expires. Logout
records the session's random id (`sid`) here until the cookie would have expired; the
request loader refuses a revoked sid (one primary-key lookup).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE revoked_session (
            sid varchar(64) PRIMARY KEY,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX ix_revoked_session_expires_at ON revoked_session (expires_at);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE revoked_session")
