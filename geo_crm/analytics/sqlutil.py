"""Small SQL helpers: several aggregates of one CTE in a single statement (one scan)."""
from __future__ import annotations

from sqlalchemy import Select, func, literal_column, select, text


def json_rows(stmt: Select):
    """A scalar subquery returning the rows of `stmt` as a JSON array of objects."""
    sub = stmt.subquery("t")
    return select(func.coalesce(func.json_agg(literal_column("t")), text("'[]'::json"))).select_from(sub) \
        .scalar_subquery()


def run_json(session, **parts) -> dict:
    """Evaluate named scalar subqueries in one statement: {name: value}."""
    names = list(parts)
    row = session.execute(select(*[parts[n].label(n) for n in names])).one()
    return dict(zip(names, row))
