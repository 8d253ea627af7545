"""`geo-crm reports ...`: refresh the report materialised views.

Schedule it, e.g. nightly shortly after midnight (the 12-month view is "as of" the
refresh date) and hourly for the monthly view if you like:

    5 0 * * *  cd /srv/geo-crm && .venv/bin/geo-crm reports refresh >> /var/log/geo-crm/reports.log 2>&1
"""
from __future__ import annotations

import click


@click.group("reports")
def reports() -> None:
    """Reports: materialised views behind the analytics."""


@reports.command("refresh")
@click.option("--no-concurrently", is_flag=True, help="plain REFRESH (locks readers; faster)")
def refresh(no_concurrently: bool) -> None:
    """Refresh the report materialised views (CONCURRENTLY once populated).

    \b
    Schedule nightly, e.g. crontab:
      5 0 * * *  cd /srv/geo-crm && .venv/bin/geo-crm reports refresh >> /var/log/geo-crm/reports.log 2>&1
    """
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from geo_crm.analytics.revenue import refresh_views
    from geo_crm.cli import _engine
    with Session(_engine()) as s, s.begin():
        s.execute(text("SET LOCAL statement_timeout = 0"))
        refresh_views(s, concurrently=not no_concurrently, log=click.echo)
    click.echo("report views refreshed")


@reports.command("status")
def status() -> None:
    """Show when each report view was refreshed."""
    from sqlalchemy.orm import Session

    from geo_crm.analytics.revenue import freshness
    from geo_crm.cli import _engine
    with Session(_engine()) as s:
        for view, f in sorted(freshness(s).items()):
            click.echo(f"{view}: populated={f['populated']} refreshed_at={f['refreshed_at']} as_of={f['as_of']}"
                       f" ({f['duration_ms']} ms)")
