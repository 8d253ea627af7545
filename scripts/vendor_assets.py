#!/usr/bin/env python3
"""Vendor geo-crm's front-end libraries from the npm registry.

Steps (idempotent, safe to re-run):

1. ``npm ci`` (or ``npm install`` when there is no ``package-lock.json``) in
   the repository root, with ``--ignore-scripts`` so no package install script
   runs, into ``node_modules/``.
2. Copy the files listed in ``maps/vendor_spec.py`` (JS, CSS, images and the
   licence files) into ``geo_crm/static/vendor/<package>/...``. Files whose
   content is unchanged are left alone.
3. Write ``geo_crm/static/vendor/manifest.json``: logical name -> relative
   path, package, version, licence.

Nothing is ever fetched from a CDN; the only network access is npm talking to
the configured npm registry.

Usage::

    python scripts/vendor_assets.py              # npm ci + copy
    python scripts/vendor_assets.py --skip-npm   # only copy from existing node_modules/
    python scripts/vendor_assets.py --out DIR    # another output folder

Exit status: 0 on success, 2 if npm is missing, 1 on any other failure.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "geo_crm" / "static" / "vendor"


def _load_spec():
    """Load maps/vendor_spec.py by path (no need for folium to be importable)."""
    path = ROOT / "maps" / "vendor_spec.py"
    spec = importlib.util.spec_from_file_location("_geocrm_vendor_spec", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def log(msg: str) -> None:
    print(f"[vendor_assets] {msg}", flush=True)


def run_npm(root: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        log("ERROR: 'npm' was not found on PATH. Install Node.js 20+ with npm "
            "(e.g. 'apt-get install nodejs npm') and run this script again.")
        raise SystemExit(2)
    if (root / "package-lock.json").exists():
        cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    else:
        log("no package-lock.json: using 'npm install' (this creates the lock file)")
        cmd = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"]
    log("running: " + " ".join(["npm"] + cmd[1:]) + f"  (in {root})")
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode != 0:
        log(f"ERROR: npm exited with status {proc.returncode}")
        raise SystemExit(1)


def _copy_file(src: Path, dst: Path, out: Path, counts: dict[str, int]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    rel = dst.relative_to(out).as_posix()
    if dst.exists() and filecmp.cmp(src, dst, shallow=False):
        counts["unchanged"] += 1
        log(f"unchanged {rel}")
        return
    shutil.copy2(src, dst)
    counts["copied"] += 1
    log(f"copied    {rel}")


def copy_assets(root: Path, out: Path, spec) -> dict:
    node_modules = root / "node_modules"
    if not node_modules.is_dir():
        log(f"ERROR: {node_modules} does not exist; run without --skip-npm")
        raise SystemExit(1)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"copied": 0, "unchanged": 0}
    versions: dict[str, str] = {}
    for package in spec.PACKAGES:
        pkg_json = node_modules / package / "package.json"
        if not pkg_json.exists():
            log(f"ERROR: npm package {package!r} is missing from node_modules/ "
                "(is it in package.json?)")
            raise SystemExit(1)
        versions[package] = json.loads(pkg_json.read_text(encoding="utf-8"))["version"]

    assets = {}
    for name, (package, src_rel, dest) in spec.FILES.items():
        src = node_modules / package / src_rel
        dst = out / spec.package_dir(package) / dest
        if src.is_dir():
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                _copy_file(f, dst / f.relative_to(src), out, counts)
        elif src.is_file():
            _copy_file(src, dst, out, counts)
        else:
            log(f"ERROR: {package}/{src_rel} not found in node_modules/")
            raise SystemExit(1)
        assets[name] = {
            "path": spec.relative_path(name),
            "package": package,
            "version": versions[package],
            "license": spec.PACKAGES[package]["license"],
        }

    packages = {}
    for package, info in spec.PACKAGES.items():
        entry = {"version": versions[package], "license": info["license"], "license_file": None}
        if info.get("license_file"):
            src = node_modules / package / info["license_file"]
            dst = out / spec.package_dir(package) / info["license_file"]
            _copy_file(src, dst, out, counts)
            entry["license_file"] = dst.relative_to(out).as_posix()
        packages[package] = entry

    manifest = {
        "generated_by": "scripts/vendor_assets.py",
        "source": "npm registry (package.json / package-lock.json)",
        "assets": assets,
        "packages": packages,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and manifest_path.read_text(encoding="utf-8") == text:
        log("unchanged manifest.json")
    else:
        manifest_path.write_text(text, encoding="utf-8")
        log("wrote     manifest.json")
    log(f"done: {counts['copied']} copied, {counts['unchanged']} unchanged -> {out}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-npm", action="store_true",
                        help="do not run npm; copy from the existing node_modules/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    spec = _load_spec()
    if not args.skip_npm:
        run_npm(ROOT)
    copy_assets(ROOT, args.out.resolve(), spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
