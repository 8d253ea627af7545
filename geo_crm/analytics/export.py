"""CSV and XLSX renderings of a report's tables, safe against formula injection:
text cells starting with = + - @ (or tab / carriage return) get a leading apostrophe,
so spreadsheet programs show them as text. Numbers stay numbers."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    s = str(v)
    return "'" + s if s.startswith(DANGEROUS) else s


def _rows(table: dict):
    cols = table["columns"]
    yield [c["label"] for c in cols]
    for r in table["rows"]:
        yield [safe_cell(r.get(c["key"])) for c in cols]


def to_csv(table: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in _rows(table):
        w.writerow(row)
    return buf.getvalue()


def to_xlsx(report: dict) -> bytes:
    """One sheet with the summary, then one sheet per table."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    wb = Workbook()
    ws = wb.active
    ws.title = "summary"
    ws.append(["report", report["report"]])
    for k, v in report["params"].items():
        ws.append([k, safe_cell(", ".join(map(str, v)) if isinstance(v, list) else v)])
    src = report.get("source") or {}
    ws.append(["figures", safe_cell(src.get("refreshed_at") or src.get("computed_at"))])
    for k, v in report["summary"].items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        ws.append([k, safe_cell(v)])
    used = {"summary"}
    for name, table in report["tables"].items():
        title = re.sub(r"[\[\]:*?/\\]", "_", name)[:31]
        while title in used:
            title = title[:28] + f"_{len(used)}"
        used.add(title)
        sh = wb.create_sheet(title)
        for i, row in enumerate(_rows(table)):
            sh.append([safe_cell(x) for x in row])
            if i == 0:
                for cell in sh[1]:
                    cell.font = Font(bold=True)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
