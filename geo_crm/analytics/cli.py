"""`geo-crm reports ...`: refresh the report materialised views and the density
revenue snapshot.

Schedule it nightly shortly after midnight (the views are "as of" the refresh date):

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
    """Refresh the report views and the density revenue snapshot (CONCURRENTLY once
    populated, so readers are not blocked).

    \b
    Schedule nightly, e.g. crontab:
      5 0 * * *  cd /srv/geo-crm && .venv/bin/geo-crm reports refresh >> /var/log/geo-crm/reports.log 2>&1
    """
    from geo_crm.cli import _engine
    from geo_crm.matviews import refresh_scheduled
    total = refresh_scheduled(_engine(), concurrently=not no_concurrently, log=click.echo)
    click.echo(f"report views and density snapshot refreshed in {total:.1f} s")


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
