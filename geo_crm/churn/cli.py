"""`geo-crm churn scan`: the scheduled churn job (see docs/churn-scan.md)."""
from __future__ import annotations

import os
from datetime import date

import click
from sqlalchemy import text


@click.group()
def churn() -> None:
    """Churn warnings."""


@churn.command("scan")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="scan as of this day (YYYY-MM-DD; default: today)")
@click.option("--months", type=click.IntRange(1, 120), default=None,
              help="months without an order before a warning (default: app setting churn_months, "
                   "else CHURN_MONTHS, else 6)")
def scan_command(as_of, months) -> None:
    """Raise warnings for active customers who stopped ordering; clear those who ordered
    again. Safe to re-run. Prints counts of new, already open and cleared warnings."""
    from geo_crm.churn.service import churn_months, scan
    from geo_crm.cli import _engine
    from geo_crm.config import load_env
    load_env()
    day = as_of.date() if as_of else date.today()
    engine = _engine()
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('geo_crm.username', 'churn-scan', true)"))
            if months is None:
                months = churn_months(conn, int(os.environ.get("CHURN_MONTHS") or 6))
            r = scan(conn, as_of=day, months=months)
    finally:
        engine.dispose()
    click.echo(f"churn scan as of {r.as_of} (more than {r.months} months without an order): "
               f"new={r.new} already_open={r.already_open} cleared={r.cleared}")
