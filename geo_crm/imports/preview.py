"""A first look at an uploaded file before it is imported: its columns, a few sample
rows and the automatic column mapping, so that a user can check and override the
mapping (header -> field) before running the import."""
from __future__ import annotations

from pathlib import Path

from geo_crm.imports.readers import ReadError, read_file
from geo_crm.imports.safety import UnsafeFile
from geo_crm.imports.schema import KINDS, auto_mapping

SAMPLE_ROWS = 5


class PreviewError(ValueError):
    """The file cannot be read at all (the message says why)."""


def preview(path: str | Path, kind: str, *, name: str | None = None, encoding: str | None = None,
            delimiter: str | None = None) -> dict:
    """{'headers', 'samples' (per header: first non-empty values), 'rows', 'mapping'
    {header: field}, 'fields', 'required', 'encoding', 'delimiter', 'crs', 'spatial'}."""
    if kind not in KINDS:
        raise PreviewError(f"kind must be one of {', '.join(KINDS)}")
    try:
        table = read_file(path, encoding=encoding, delimiter=delimiter, name=name)
    except (ReadError, UnsafeFile, OSError) as e:
        raise PreviewError(str(e)) from None
    auto = auto_mapping(kind, table.headers)
    by_header = {h: f for f, h in auto.items()}
    samples = []
    for j, _h in enumerate(table.headers):
        vals = [r[j] for r in table.rows[:200] if j < len(r) and r[j] not in (None, "")]
        samples.append(vals[:SAMPLE_ROWS])
    return {"headers": table.headers, "samples": samples, "rows": len(table.rows),
            "mapping": {h: by_header.get(h) for h in table.headers},
            "fields": [f.name for f in KINDS[kind]], "required": [f.name for f in KINDS[kind] if f.required],
            "encoding": table.encoding, "delimiter": table.delimiter, "crs": table.crs,
            "spatial": table.points is not None}


def overrides_from(kind: str, header_fields: dict[str, str | None]) -> dict[str, str | None]:
    """The runner's mapping overrides ({field: header or None}) that make the mapping
    exactly `header_fields` ({header: field or None}). Raises ValueError when a field is
    chosen for two columns or is unknown."""
    fields = [f.name for f in KINDS[kind]]
    out: dict[str, str | None] = {f: None for f in fields}
    seen: dict[str, str] = {}
    for h, f in header_fields.items():
        if not f:
            continue
        if f not in out:
            raise ValueError(f"unknown field {f!r} for column {h!r}")
        if f in seen:
            raise ValueError(f"field {f!r} is chosen for two columns: {seen[f]!r} and {h!r}")
        seen[f] = h
        out[f] = h
    return out
