"""One import, start to finish: read, map, validate, (dry run | load), report.

All-or-nothing by default: any invalid row fails the whole import and nothing is
written. With `skip_invalid`, valid rows are loaded and the invalid ones are listed
(the CLI writes them to a reject file). Either way the load itself is a single
transaction: a database error rolls everything back.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from geo_crm.imports.load import load
from geo_crm.imports.readers import ReadError, Table, read_file
from geo_crm.imports.safety import UnsafeFile
from geo_crm.imports.schema import KINDS, auto_mapping
from geo_crm.imports.validate import validate

MAX_REPORTED_PROBLEMS = 5000
Progress = Callable[[str, int, int], None]


@dataclass
class ImportOptions:
    kind: str
    mapping: dict[str, str | None] = field(default_factory=dict)   # overrides {field: header or None}
    dry_run: bool = False
    skip_invalid: bool = False
    crs: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    fmt: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")


def load_mapping_file(path: str | Path) -> dict[str, str | None]:
    """A JSON or YAML object {field: column header} (null removes an automatic mapping)."""
    raw = Path(path).read_text(encoding="utf-8")
    if str(path).lower().endswith((".yaml", ".yml")):
        import yaml
        data = yaml.safe_load(raw)
    else:
        data = json.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                             for k, v in data.items()):
        raise ValueError("a mapping file must be an object of field: column header")
    return data


def resolve_mapping(kind: str, headers: list[str], overrides: dict[str, str | None]) -> dict[str, str]:
    m = auto_mapping(kind, headers)
    for f, h in (overrides or {}).items():
        if h in (None, ""):
            m.pop(f, None)
        else:
            for other in [k for k, v in m.items() if v == h and k != f]:
                m.pop(other)
            m[f] = h
    return m


def _lookups(session: Session, kind: str, table: Table, mapping: dict[str, str]) -> dict:
    from geo_crm.models import Customer, User
    out: dict = {}
    if kind == "customers" and "owner" in mapping:
        out["owners"] = dict(session.execute(select(User.username, User.id).where(User.is_active)).all())
    if kind == "contacts" and "customer_code" in mapping and mapping["customer_code"] in table.headers:
        j = table.headers.index(mapping["customer_code"])
        codes = {(r[j] or "").strip() for r in table.rows if j < len(r) and r[j]}
        out["customer_codes"] = set(session.execute(
            select(Customer.code).where(Customer.code.in_(list(codes)))).scalars()) if codes else set()
    return out


def _capped(items: list[dict]) -> list[dict]:
    return items[:MAX_REPORTED_PROBLEMS]


def run_import(session: Session, path: str | Path, opts: ImportOptions, *, name: str | None = None,
               progress: Progress | None = None, user_id: int | None = None) -> dict:
    """Import one file. The caller commits `session` when report['status'] == 'imported'
    (the CLI and the web job do). Returns the report (JSON-serialisable)."""
    say = progress or (lambda stage, done, total: None)
    report: dict = {"kind": opts.kind, "file": name or Path(path).name, "dry_run": opts.dry_run,
                    "skip_invalid": opts.skip_invalid, "status": "failed", "errors": [], "warnings": [],
                    "duplicates": [], "rows": 0, "valid": 0, "invalid": 0,
                    "inserted": 0, "updated": 0, "unchanged": 0}
    say("reading", 0, 1)
    try:
        table = read_file(path, opts.fmt, encoding=opts.encoding, delimiter=opts.delimiter, name=name)
    except (ReadError, UnsafeFile, OSError) as e:
        report["errors"].append({"row": None, "field": "file", "problem": str(e)})
        return report
    report.update(encoding=table.encoding, delimiter=table.delimiter, crs=table.crs, rows=len(table.rows),
                  columns=table.headers)
    mapping = resolve_mapping(opts.kind, table.headers, opts.mapping)
    report["mapping"] = mapping
    report["unmapped_columns"] = [h for h in table.headers if h not in mapping.values()]
    say("validating", 0, len(table.rows))
    v = validate(table, opts.kind, mapping, crs=opts.crs, lookups=_lookups(session, opts.kind, table, mapping))
    report.update(valid=len(v.records), invalid=len(v.invalid_rows), errors=_capped(v.errors),
                  warnings=_capped(v.warnings), invalid_rows=sorted(v.invalid_rows)[:MAX_REPORTED_PROBLEMS])
    say("validating", len(table.rows), len(table.rows))
    if any(e["row"] is None for e in v.errors):
        return report                                  # the file as a whole is unusable
    if not table.rows:
        report["errors"].append({"row": None, "field": "file", "problem": "the file has no data rows"})
        return report
    if v.errors and not opts.skip_invalid:
        report["message"] = "nothing imported: fix the errors or use skip-invalid"
        return report
    stage_cb = lambda s: say(s, 0, 0)  # noqa: E731
    nested = session.begin_nested()
    try:
        res = load(session.connection(), opts.kind, v.records, v.present, progress=stage_cb)
    except DBAPIError as e:
        nested.rollback()
        msg = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        report["errors"].append({"row": None, "field": "database", "problem": msg[:300]})
        report["message"] = "nothing imported: the database refused the data"
        return report
    report["duplicates"] = res.pop("duplicates")
    if opts.dry_run:
        nested.rollback()
        report["status"] = "dry_run"
        report["would"] = {k: res[k] for k in ("inserted", "updated", "unchanged")}
        return report
    nested.commit()
    report.update({k: res[k] for k in ("inserted", "updated", "unchanged")})
    report["status"] = "imported"
    session.execute(text(
        "INSERT INTO audit_log (user_id, username, action, entity, entity_id, new)"
        " VALUES (:u, coalesce(current_setting('geo_crm.username', true), ''), 'import', :e, :f, CAST(:n AS jsonb))"),
        {"u": user_id, "e": opts.kind, "f": report["file"][:64],
         "n": json.dumps({k: report[k] for k in ("rows", "inserted", "updated", "unchanged", "invalid")})})
    say("done", len(table.rows), len(table.rows))
    return report


def write_report(report: dict, path: str | Path) -> None:
    """JSON (the whole report) or CSV (one line per problem: row, field, problem, severity)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["row", "field", "problem", "severity"])
            for e in report.get("errors", []):
                w.writerow([e["row"] or "", e["field"], e["problem"], "error"])
            for e in report.get("warnings", []):
                w.writerow([e["row"] or "", e["field"], e["problem"], "warning"])
            for d in report.get("duplicates", []):
                w.writerow([d["row"], "code", f"possible duplicate of {d.get('duplicate_of_code')}"
                            f" ({d['where']}, {d['distance_m']} m, similarity {d['name_similarity']})", "warning"])
    else:
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def write_rejects(path_in: str | Path, opts: ImportOptions, report: dict, out: str | Path, name=None) -> int:
    """The invalid rows with their original cells plus `_row` and `_errors` (CSV, UTF-8)."""
    table = read_file(path_in, opts.fmt, encoding=opts.encoding, delimiter=opts.delimiter, name=name)
    bad = set(report.get("invalid_rows", []))
    probs: dict[int, list[str]] = {}
    for e in report.get("errors", []):
        if e["row"] is not None:
            probs.setdefault(e["row"], []).append(f"{e['field']}: {e['problem']}")
    n = 0
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["_row", "_errors", *table.headers])
        for num, cells in zip(table.row_numbers, table.rows):
            if num in bad:
                w.writerow([num, "; ".join(probs.get(num, [])), *[c if c is not None else "" for c in cells]])
                n += 1
    return n
