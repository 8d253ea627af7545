"""Limits that protect the server from hostile uploads.

Archives (zipped Shapefiles, and XLSX files, which are zip archives too) are
inspected from their central directory BEFORE anything is decompressed: number of
entries, the total uncompressed size claimed by the headers, the compression ratio
of every entry, and entry names (absolute paths, `..`, drive letters and symlinks are
rejected). Extraction then streams each entry with a hard byte budget, so an archive
whose headers lie is still stopped.
"""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 200 * 1024 * 1024          # an upload or input file
MAX_UNCOMPRESSED_BYTES = 500 * 1024 * 1024  # all entries of an archive together
MAX_ENTRIES = 1000
MAX_RATIO = 100                              # uncompressed / compressed, per entry
MAX_ROWS = 2_000_000


class UnsafeFile(ValueError):
    """The file is refused as a whole (too big, a zip bomb, path traversal...)."""


def check_size(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> int:
    size = os.path.getsize(path)
    if size > limit:
        raise UnsafeFile(f"file is {size} bytes; the limit is {limit} bytes")
    return size


def _safe_name(name: str) -> bool:
    if not name or "\x00" in name or name.startswith(("/", "\\")) or ":" in name.split("/")[0]:
        return False
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return ".." not in parts


def inspect_zip(path: str | os.PathLike, *, max_total: int = MAX_UNCOMPRESSED_BYTES,
                max_entries: int = MAX_ENTRIES, max_ratio: float = MAX_RATIO) -> list[zipfile.ZipInfo]:
    """Validate an archive's directory without decompressing anything."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsafeFile(f"not a valid zip archive: {e}")
    with zf:
        infos = zf.infolist()
    if len(infos) > max_entries:
        raise UnsafeFile(f"archive has {len(infos)} entries; the limit is {max_entries}")
    total = 0
    for i in infos:
        if not _safe_name(i.filename):
            raise UnsafeFile(f"unsafe path in archive: {i.filename!r}")
        if stat.S_ISLNK(i.external_attr >> 16):
            raise UnsafeFile(f"symbolic link in archive: {i.filename!r}")
        if i.flag_bits & 0x1:
            raise UnsafeFile("encrypted archives are not supported")
        total += i.file_size
        if total > max_total:
            raise UnsafeFile(f"archive would expand to more than {max_total} bytes")
        if i.file_size > 1024 * 1024 and i.file_size > max_ratio * max(i.compress_size, 1):
            raise UnsafeFile(f"entry {i.filename!r} has a suspicious compression ratio "
                             f"({i.file_size // max(i.compress_size, 1)}:1)")
    return infos


def extract_zip(path: str | os.PathLike, dest: str | os.PathLike, **limits) -> list[Path]:
    """Inspect, then extract regular files under `dest` with a streaming byte budget."""
    infos = inspect_zip(path, **limits)
    budget = limits.get("max_total", MAX_UNCOMPRESSED_BYTES)
    dest = Path(dest).resolve()
    out: list[Path] = []
    with zipfile.ZipFile(path) as zf:
        for i in infos:
            if i.is_dir():
                continue
            target = (dest / i.filename).resolve()
            if dest not in target.parents:
                raise UnsafeFile(f"unsafe path in archive: {i.filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with zf.open(i) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 16):
                    written += len(chunk)
                    budget -= len(chunk)
                    if written > i.file_size or budget < 0:
                        raise UnsafeFile(f"entry {i.filename!r} expands beyond its declared size")
                    dst.write(chunk)
            out.append(target)
    return out
