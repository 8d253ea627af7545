"""Data pages: file import (upload -> check the column mapping -> run as a background job
with live progress -> report, rejects) and export of the filtered, visible customers
(CSV, XLSX, GeoJSON, GeoPackage, KML), with pointers for GIS users (OGC API, QGIS).

Uploads are limited by MAX_CONTENT_LENGTH (200 MB) and `imports.safety`, and are kept in
a private directory (mode 0700) per user under IMPORT_UPLOAD_DIR (default: the system
temp dir), named by a random token; the original file name is only sanitised display
text. An upload not run within UPLOAD_TTL_S is swept away.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from flask import (Blueprint, Response, current_app, redirect, render_template, request, send_file,
                   url_for)
from flask_babel import gettext as _
from sqlalchemy import func, select, text
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from geo_crm.customers import service as svc
from geo_crm.customers.filters import FilterError, apply
from geo_crm.exports import FORMATS, export_customers
from geo_crm.http import NotFound, current_scope, current_user, db, read_db, require
from geo_crm.imports.jobs import create_job, get_job, run_job, start_background
from geo_crm.imports.preview import PreviewError, overrides_from, preview
from geo_crm.imports.runner import ImportOptions, write_report
from geo_crm.imports.safety import MAX_FILE_BYTES
from geo_crm.imports.schema import KINDS
from geo_crm.models import Customer
from geo_crm.models.enums import CUSTOMER_LEVELS, CUSTOMER_STATUSES
from geo_crm.web.customers import _branches, _filter_from_args, _industries, _owners, _regions, \
    _territories

bp = Blueprint("data", __name__, url_prefix="/data")

IMPORT_KINDS = tuple(KINDS)                      # customers, contacts, branches, partners
MODES = ("dry_run", "all_or_nothing", "skip_invalid")
UPLOAD_TTL_S = 24 * 3600
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
ALLOWED_EXT = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".geojson", ".json", ".gpkg", ".zip", ".shz")
FINAL = ("imported", "dry_run", "failed")
# progress (%) reached when a stage starts; validation advances by rows between 10 and 40
STAGES = {"queued": 0, "reading": 3, "validating": 10, "staging": 42, "duplicates": 52, "areas": 62,
          "merging": 72, "membership": 88, "done": 98}
EXPORT_FORMATS = [("csv", "CSV"), ("xlsx", "Excel (XLSX)"), ("geojson", "GeoJSON"), ("gpkg", "GeoPackage"),
                  ("kml", "KML (Google Earth)")]


# -- private upload storage ------------------------------------------------------------------
def _root() -> Path:
    base = current_app.config.get("IMPORT_UPLOAD_DIR") or os.path.join(tempfile.gettempdir(), "geo-crm-uploads")
    p = Path(base)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    return p


def _private_dir(*parts: str) -> Path:
    p = _root().joinpath(*parts)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    return p


def _upload_dir(token: str) -> Path:
    """The caller's own upload directory for `token` (404 for anything else)."""
    if not TOKEN_RE.match(token or ""):
        raise NotFound()
    d = _root() / "u" / str(current_user().id) / token
    if not (d / "meta.json").is_file():
        raise NotFound()
    return d


def _rejects_path(job_id: int) -> Path:
    return _private_dir("jobs", str(int(job_id))) / "rejects.csv"


def _sweep() -> None:
    """Remove uploads and reject files older than UPLOAD_TTL_S (7 × that for rejects)."""
    now = time.time()
    for sub, ttl in (("u", UPLOAD_TTL_S), ("jobs", 7 * UPLOAD_TTL_S)):
        base = _root() / sub
        if not base.is_dir():
            continue
        for d in base.glob("*/*") if sub == "u" else base.glob("*"):
            try:
                if d.is_dir() and now - d.stat().st_mtime > ttl:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass


def display_name(filename: str | None) -> str:
    """A safe display/file name: path parts dropped, unsafe characters replaced."""
    base = os.path.basename((filename or "").replace("\\", "/"))
    safe = secure_filename(base)[:120]
    return safe or "upload"


# -- import ------------------------------------------------------------------------------------
def _recent_jobs(limit: int = 15) -> list[dict]:
    rows = db().execute(text(
        "SELECT id, kind, filename, status, dry_run, total_rows, created_at, finished_at FROM import_job"
        " WHERE created_by = :u ORDER BY id DESC LIMIT :n"), {"u": current_user().id, "n": limit}).mappings()
    return [dict(r) for r in rows]


def _import_page(error: str | None = None, status: int = 200, form: dict | None = None):
    return render_template("data/import.html", kinds=IMPORT_KINDS, error=error, jobs=_recent_jobs(),
                           max_bytes=MAX_FILE_BYTES, max_mb=MAX_FILE_BYTES // (1024 * 1024),
                           form=form or {}, fields={k: [f.name for f in KINDS[k]] for k in IMPORT_KINDS}), status


@bp.get("/import")
@require("import.run")
def import_view():
    return _import_page()


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(e):
    """Over MAX_CONTENT_LENGTH: the body is refused before the caller is even loaded
    (the CSRF check reads the form first), so this page names the limit plainly."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or MAX_FILE_BYTES
    msg = _("The file is too large: the limit is %(mb)s MB. Split the file or compress a Shapefile as .zip.",
            mb=round(limit / (1024 * 1024), 1) if limit < 1024 * 1024 else limit // (1024 * 1024))
    if request.endpoint == "data.upload" and current_user() is not None:
        return _import_page(msg, 413)
    return render_template("error.html", status=413, message=msg), 413


def _opt(name: str, pattern: str, max_len: int) -> str | None:
    v = (request.form.get(name) or "").strip()
    if not v:
        return None
    if len(v) > max_len or not re.fullmatch(pattern, v):
        raise ValueError(name)
    return v


@bp.post("/import")
@require("import.run")
def upload():
    form = {k: request.form.get(k, "") for k in ("kind", "encoding", "crs")}
    kind = request.form.get("kind", "")
    if kind not in IMPORT_KINDS:
        return _import_page(_("Choose what the file contains."), 422, form)
    up = request.files.get("file")
    if up is None or not up.filename:
        return _import_page(_("Choose a file to upload."), 422, form)
    name = display_name(up.filename)
    ext = os.path.splitext(name.lower())[1]
    if name.lower().endswith(".shp.zip"):
        ext = ".zip"
    if ext not in ALLOWED_EXT:
        return _import_page(_("Unsupported file type %(ext)s: use CSV, XLSX, GeoJSON, GeoPackage or a zipped "
                              "Shapefile.", ext=ext or "(none)"), 422, form)
    try:
        encoding = _opt("encoding", r"[A-Za-z0-9_\-]+", 20)
        crs = _opt("crs", r"(EPSG:)?\d{4,6}", 40)
    except ValueError as e:
        return _import_page(_("Invalid value for %(f)s.", f=str(e)), 422, form)
    _sweep()
    token = secrets.token_urlsafe(24)
    d = _private_dir("u", str(current_user().id), token)
    path = d / ("upload" + ext)
    up.save(str(path))
    os.chmod(path, 0o600)
    if os.path.getsize(path) > MAX_FILE_BYTES:
        shutil.rmtree(d, ignore_errors=True)
        return _import_page(_("The file is too large: the limit is %(mb)s MB.", mb=MAX_FILE_BYTES // (1024 * 1024)),
                            413, form)
    try:
        pv = preview(path, kind, name=name, encoding=encoding)
    except PreviewError as e:
        shutil.rmtree(d, ignore_errors=True)
        return _import_page(_("The file cannot be read: %(why)s", why=str(e)), 422, form)
    meta = {"kind": kind, "name": name, "file": path.name, "encoding": encoding, "crs": crs, "preview": pv}
    (d / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, default=str), encoding="utf-8")
    return redirect(url_for("data.mapping", token=token))


@bp.get("/import/u/<token>")
@require("import.run")
def mapping(token: str, error: str | None = None, status: int = 200):
    meta = json.loads((_upload_dir(token) / "meta.json").read_text(encoding="utf-8"))
    return render_template("data/mapping.html", token=token, meta=meta, pv=meta["preview"], modes=MODES,
                           error=error, chosen=meta.get("chosen") or meta["preview"]["mapping"],
                           mode=meta.get("mode", "dry_run")), status


@bp.post("/import/u/<token>")
@require("import.run")
def run(token: str):
    d = _upload_dir(token)
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    if request.form.get("action") == "cancel":
        shutil.rmtree(d, ignore_errors=True)
        return redirect(url_for("data.import_view"))
    pv = meta["preview"]
    mode = request.form.get("mode", "dry_run")
    chosen = {h: (request.form.get(f"map_{i}") or None) for i, h in enumerate(pv["headers"])}
    meta.update(chosen=chosen, mode=mode)
    (d / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, default=str), encoding="utf-8")
    if mode not in MODES:
        return mapping(token, _("Choose how to run the import."), 422)
    try:
        overrides = overrides_from(meta["kind"], chosen)
    except ValueError as e:
        return mapping(token, str(e), 422)
    missing = [f for f in pv["required"] if not overrides.get(f)]
    if missing:
        return mapping(token, _("Map a column to each required field: %(f)s", f=", ".join(missing)), 422)
    opts = ImportOptions(meta["kind"], mapping=overrides, dry_run=mode == "dry_run",
                         skip_invalid=mode == "skip_invalid", crs=meta.get("crs"), encoding=meta.get("encoding"))
    user = current_user()
    s = db()
    job_id = create_job(s, meta["kind"], meta["name"], opts.dry_run, user.id)
    s.execute(text("UPDATE import_job SET report = CAST(:r AS jsonb) WHERE id = :id"),
              {"r": json.dumps({"stage": "queued", "mode": mode, "rows": pv["rows"]}), "id": job_id})
    s.commit()
    # the job owns the uploaded file from here (it removes it when done)
    path = str(d / meta["file"])
    job_path = str(_private_dir("jobs", str(job_id)) / meta["file"])
    os.replace(path, job_path)
    shutil.rmtree(d, ignore_errors=True)
    kw = dict(name=meta["name"], user_id=user.id, username=user.username, rejects_path=str(_rejects_path(job_id)))
    database = current_app.extensions["geo_crm.db"]
    if current_app.config.get("IMPORT_INLINE"):
        run_job(database, job_id, job_path, opts, **kw)    # tests: the request's own connection
    else:
        start_background(database, job_id, job_path, opts, **kw)
    return redirect(url_for("data.job", job_id=job_id))


def progress_pct(job: dict) -> int:
    """0..100 from the job's status, stage and row counts (the same rule as data.js)."""
    if job["status"] in FINAL:
        return 100
    stage = (job.get("report") or {}).get("stage") or "queued"
    pct = STAGES.get(stage, 0)
    if stage == "validating" and job.get("total_rows"):
        pct += int(30 * min(1.0, (job.get("processed_rows") or 0) / job["total_rows"]))
    return pct


def _job_or_404(job_id: int) -> dict:
    job = get_job(db(), job_id, current_user().id, current_scope().role == "admin")
    if job is None:
        raise NotFound()
    return job


@bp.get("/import/jobs/<int:job_id>")
@require("import.run")
def job(job_id: int):
    j = _job_or_404(job_id)
    rep = j.get("report") or {}
    has_rejects = j["status"] in FINAL and _rejects_path(job_id).is_file()
    return render_template("data/job.html", job=j, rep=rep, final=j["status"] in FINAL, has_rejects=has_rejects,
                           pct=progress_pct(j), stages=STAGES,
                           status_url=url_for("api.data_import_job", job_id=job_id))


@bp.get("/import/jobs/<int:job_id>/report.<fmt>")
@require("import.run")
def job_report(job_id: int, fmt: str):
    j = _job_or_404(job_id)
    if fmt not in ("csv", "json") or j["status"] not in FINAL:
        raise NotFound()
    with tempfile.TemporaryDirectory(prefix="geocrm-report-") as t:
        p = os.path.join(t, f"report.{fmt}")
        write_report(j["report"] or {}, p)
        data = Path(p).read_bytes()
    stem = os.path.splitext(display_name(j["filename"]))[0]
    return Response(data, mimetype="text/csv" if fmt == "csv" else "application/json", headers={
        "Content-Disposition": f'attachment; filename="import-{job_id}-{stem}-report.{fmt}"'})


@bp.get("/import/jobs/<int:job_id>/rejects.csv")
@require("import.run")
def job_rejects(job_id: int):
    j = _job_or_404(job_id)
    p = _rejects_path(job_id)
    if j["status"] not in FINAL or not p.is_file():
        raise NotFound()
    stem = os.path.splitext(display_name(j["filename"]))[0]
    return send_file(io.BytesIO(p.read_bytes()), mimetype="text/csv", as_attachment=True,
                     download_name=f"import-{job_id}-{stem}-rejects.csv")


# -- export ------------------------------------------------------------------------------------
def _export_context(errors: dict | None = None):
    scope = current_scope()
    s = read_db()
    restricted = scope.customer_fields
    show_filter = {k: restricted is None or svc.FILTER_FIELDS.get(k, k) in restricted
                   for k in ("level", "status", "industry", "owner_id", "region_id", "branch_id")}
    f, errs = _filter_from_args(request.args)
    errors = {**errs, **(errors or {})}
    count = None
    if f is not None and not errors:
        try:
            count = s.execute(apply(select(func.count(Customer.id)), f, scope)).scalar()
        except FilterError as e:
            errors[e.field] = e.problem
    return dict(args=request.args, errors=errors, count=count, formats=EXPORT_FORMATS, levels=CUSTOMER_LEVELS,
                statuses=CUSTOMER_STATUSES, regions=_regions(s), territories=_territories(s, scope),
                branches=_branches(s), industries=_industries(s),
                owners=_owners(s) if show_filter["owner_id"] else [], show_filter=show_filter,
                fmt=request.args.get("format", "csv"), ogc_url=url_for("ogc.landing") if _has("ogc.landing") else "/ogc")


def _has(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


@bp.get("/export")
@require("customer.export")
def export_view():
    return render_template("data/export.html", **_export_context())


@bp.get("/export/download")
@require("customer.export")
def export_download():
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        return render_template("data/export.html", **_export_context({"format": _("unknown format")})), 422
    f, errors = _filter_from_args(request.args)
    if f is None:
        return render_template("data/export.html", **_export_context()), 422
    try:
        data = export_customers(read_db(), current_scope(), f, fmt)
    except FilterError as e:
        return render_template("data/export.html", **_export_context({e.field: e.problem})), 422
    mime, ext = FORMATS[fmt]
    stamp = time.strftime("%Y%m%d")
    return Response(data, mimetype=mime.split(";")[0], headers={
        "Content-Disposition": f'attachment; filename="customers-{stamp}.{ext}"', "Cache-Control": "private, no-store"})
