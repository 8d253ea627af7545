"""Data in and out over the API: exports of filtered customers, file imports,
import job status, forward and reverse geocoding."""
from __future__ import annotations

import os
import tempfile
from typing import Literal

from flask import Response, request
from pydantic import Field

from geo_crm.api.framework import ApiError, StrictModel, operation, validation_error
from geo_crm.customers.filters import CustomerFilter
from geo_crm.exports import FORMATS, export_customers
from geo_crm.http import NotFound, current_scope, current_user, db, read_db
from geo_crm.imports.runner import ImportOptions, load_mapping_file, run_import
from geo_crm.imports.safety import MAX_FILE_BYTES


class ExportQuery(CustomerFilter):
    format: Literal["csv", "xlsx", "geojson", "gpkg", "kml"] = "csv"


@operation("/export/customers", summary="Export the filtered, visible customers as a file", tags=["data"],
           permission="customer.export", query=ExportQuery,
           content_types=[v[0] for v in FORMATS.values()],
           responses={200: "the file", 422: "invalid filter"})
def export_customers_op(query: ExportQuery):
    fmt = query.format
    f = CustomerFilter(**query.model_dump(exclude={"format"}, exclude_none=True))
    data = export_customers(read_db(), current_scope(), f, fmt)
    mime, ext = FORMATS[fmt]
    return Response(data, mimetype=mime.split(";")[0], headers={
        "Content-Disposition": f'attachment; filename="customers.{ext}"', "Cache-Control": "private, no-store"})


class ImportQuery(StrictModel):
    dry_run: bool = False
    skip_invalid: bool = False
    crs: str | None = Field(None, max_length=40, pattern=r"^(EPSG:)?\d{4,6}$")
    encoding: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z0-9_\-]+$")


@operation("/import/<kind>", "POST", summary="Import a file (multipart field 'file'; optional 'mapping' JSON/YAML)",
           tags=["data"], permission="import.run", query=ImportQuery,
           responses={200: "imported or dry run report", 413: "file too large", 422: "invalid file or rows"})
def import_file(kind: str, query: ImportQuery):
    if kind not in ("customers", "contacts", "branches", "partners"):
        raise NotFound()
    if request.content_length and request.content_length > MAX_FILE_BYTES + 1024 * 1024:
        raise ApiError(413, "too_large", f"the file is larger than {MAX_FILE_BYTES} bytes")
    up = request.files.get("file")
    if up is None or not up.filename:
        raise validation_error("file", "a file upload is required (multipart field 'file')")
    with tempfile.TemporaryDirectory(prefix="geocrm-import-") as d:
        path = os.path.join(d, "upload" + os.path.splitext(up.filename)[1][:10].lower())
        up.save(path)
        mapping = {}
        if request.files.get("mapping"):
            mp = os.path.join(d, "mapping" + os.path.splitext(request.files["mapping"].filename or ".json")[1][:6])
            request.files["mapping"].save(mp)
            try:
                mapping = load_mapping_file(mp)
            except ValueError as e:
                raise validation_error("mapping", str(e))
        opts = ImportOptions(kind, mapping=mapping, dry_run=query.dry_run, skip_invalid=query.skip_invalid,
                             crs=query.crs, encoding=query.encoding)
        session = db()
        report = run_import(session, path, opts, name=up.filename, user_id=current_user().id)
    if report["status"] == "imported":
        session.commit()
    else:
        session.rollback()
    return (report, 200) if report["status"] in ("imported", "dry_run") else (report, 422)


@operation("/import/jobs/<int:job_id>", summary="Status and report of an import job", tags=["data"],
           permission="import.run")
def import_job(job_id: int):
    from geo_crm.imports.jobs import get_job
    job = get_job(db(), job_id, current_user().id, current_scope().role == "admin")
    if job is None:
        raise NotFound()
    return job


class GeocodeQuery(StrictModel):
    q: str = Field(min_length=1, max_length=300)
    postcode: str = Field("", max_length=16)
    city: str = Field("", max_length=100)


@operation("/geocode", summary="Geocode an address (offline gazetteer first)", tags=["data"],
           permission="map.read", query=GeocodeQuery)
def geocode_op(query: GeocodeQuery):
    from geo_crm.geocoding import geocode
    res = geocode(db(), query.q, query.postcode, query.city)
    db().commit()   # online answers are cached
    return res.as_dict()


class ReverseQuery(StrictModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


@operation("/geocode/reverse", summary="Nearest address or place to a point (EPSG:4326)", tags=["data"],
           permission="map.read", query=ReverseQuery)
def reverse_op(query: ReverseQuery):
    from geo_crm.geocoding import reverse
    res = reverse(read_db(), query.lon, query.lat)
    if res is None:
        raise NotFound()
    return res
