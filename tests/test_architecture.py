"""Layering rules that code review alone lets slip: the domain knows nothing of Flask,
and the map builders know nothing of Flask, the database or the application.

Checked statically from the import statements (including imports inside functions),
following geo_crm's own modules transitively, so a domain module cannot reach Flask
through a helper either.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DELIVERY = ("geo_crm.api", "geo_crm.web", "geo_crm.ogc", "geo_crm.app", "geo_crm.http", "geo_crm.cli",
            "geo_crm.wsgi")


def _module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


@cache
def _imports(name: str) -> frozenset[str]:
    """Absolute names of the modules `name` imports (relative imports resolved)."""
    path = _module_path(name)
    if path is None:
        return frozenset()
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if _module_path(f"{mod}.{a.name}"))
    return frozenset(out)


def _reaches(start: str, forbidden: tuple[str, ...]) -> list[str] | None:
    """The first import chain from `start` to a module under `forbidden`, or None."""
    seen, stack = {start}, [[start]]
    while stack:
        chain = stack.pop()
        for mod in sorted(_imports(chain[-1])):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                return chain + [mod]
            local = mod.split(".")[0] in ("geo_crm", "maps")
            if local and mod not in seen and _module_path(mod):
                seen.add(mod)
                stack.append(chain + [mod])
    return None


def _modules(package: str) -> list[str]:
    top = ROOT / package
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in top.rglob("*.py"))


def _is_delivery(name: str) -> bool:
    return any(name == d or name.startswith(d + ".") for d in DELIVERY) or name.endswith(".cli")


def test_domain_modules_do_not_reach_flask():
    domain = [m for m in _modules("geo_crm") if not _is_delivery(m)]
    assert {"geo_crm.customers.service", "geo_crm.spatial.queries", "geo_crm.errors"} <= set(domain)
    bad = {m: chain for m in domain if (chain := _reaches(m, ("flask", "flask_wtf", "flask_babel", "geo_crm.http")))}
    assert bad == {}, "\n".join(" -> ".join(c) for c in bad.values())


def test_map_builders_know_neither_flask_nor_the_database():
    maps = _modules("maps")
    assert "maps.layers" in maps
    bad = {m: chain for m in maps if (chain := _reaches(m, ("flask", "sqlalchemy", "geoalchemy2", "psycopg2", "geo_crm")))}
    assert bad == {}, "\n".join(" -> ".join(c) for c in bad.values())


@pytest.mark.parametrize("src, target", [("geo_crm.customers.service", "geo_crm.errors"),
                                         ("geo_crm.http", "flask")])
def test_the_import_walker_sees_real_imports(src, target):
    """Guards the checker itself: known edges must be found."""
    assert _reaches(src, (target,)) is not None
