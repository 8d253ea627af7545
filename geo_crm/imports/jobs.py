"""Import jobs for the web UI: an `import_job` row tracks status and progress while
a background thread runs the import in its own transaction. Progress is written
through a separate short transaction so the polling page sees it live."""
from __future__ import annotations

import json
import os
import threading

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_crm.imports.runner import ImportOptions, run_import


def create_job(session: Session, kind: str, filename: str, dry_run: bool, user_id: int | None) -> int:
    return session.execute(text(
        "INSERT INTO import_job (kind, filename, status, dry_run, created_by) VALUES (:k, :f, 'queued', :d, :u)"
        " RETURNING id"), {"k": kind, "f": filename[:300], "d": dry_run, "u": user_id}).scalar()


def get_job(session: Session, job_id: int, user_id: int | None, sees_all: bool) -> dict | None:
    row = session.execute(text(
        "SELECT id, kind, filename, status, dry_run, total_rows, processed_rows, report, created_at, finished_at,"
        " created_by FROM import_job WHERE id = :id"), {"id": job_id}).mappings().first()
    if row is None or (not sees_all and row["created_by"] != user_id):
        return None
    d = dict(row)
    d.pop("created_by")
    for k in ("created_at", "finished_at"):
        d[k] = d[k].isoformat() if d[k] else None
    return d


def _progress_writer(write_session_factory, job_id: int):
    last = {"stage": None}

    def progress(stage: str, done: int, total: int):
        if stage == last["stage"] and stage not in ("validating", "done"):
            return
        last["stage"] = stage
        with write_session_factory() as s:
            s.execute(text("UPDATE import_job SET status = 'running', report = jsonb_build_object('stage', :st),"
                           " processed_rows = CASE WHEN :t > 0 THEN :d ELSE processed_rows END,"
                           " total_rows = CASE WHEN :t > 0 THEN :t ELSE total_rows END WHERE id = :id"),
                      {"st": stage, "d": done, "t": total, "id": job_id})
            s.commit()
    return progress


def execute_job(session: Session, job_id: int, path: str, opts: ImportOptions, *, name: str,
                user_id: int | None, progress=None) -> dict:
    """Run the import in `session` and store the final report on the job."""
    try:
        report = run_import(session, path, opts, name=name, progress=progress, user_id=user_id)
    except Exception as e:  # the job must not stay 'running' forever
        session.rollback()
        report = {"status": "failed", "errors": [{"row": None, "field": "internal", "problem": e.__class__.__name__}]}
    if report["status"] != "imported":
        session.rollback()
    session.execute(text(
        "UPDATE import_job SET status = :s, report = CAST(:r AS jsonb), total_rows = :n, processed_rows = :n,"
        " finished_at = now() WHERE id = :id"),
        {"s": report["status"], "r": json.dumps(report, default=str), "n": report.get("rows", 0), "id": job_id})
    session.commit()
    return report


def run_job(database, job_id: int, path: str, opts: ImportOptions, *, name: str, user_id: int | None,
            username: str = "", rejects_path: str | None = None) -> dict:
    """Run the job with its own sessions. When `rejects_path` is given and rows were
    invalid, the rejected rows (original cells plus `_row` and `_errors`) are written
    there before the uploaded file `path` is removed."""
    report: dict = {}
    try:
        s = database.Session()
        s.info.update(user_id=user_id, username=username)
        with s:
            report = execute_job(s, job_id, path, opts, name=name, user_id=user_id,
                                 progress=_progress_writer(database.Session, job_id))
        if rejects_path and report.get("invalid_rows"):
            from geo_crm.imports.runner import write_rejects
            try:
                write_rejects(path, opts, report, rejects_path, name=name)
            except Exception:  # the report is stored already; a missing reject file is not fatal
                pass
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return report


def start_background(database, job_id: int, path: str, opts: ImportOptions, *, name: str,
                     user_id: int | None, username: str = "", rejects_path: str | None = None) -> threading.Thread:
    """`run_job` on a thread; the uploaded temp file is removed after."""
    t = threading.Thread(target=run_job, args=(database, job_id, path, opts),
                         kwargs=dict(name=name, user_id=user_id, username=username, rejects_path=rejects_path),
                         name=f"import-job-{job_id}", daemon=True)
    t.start()
    return t
