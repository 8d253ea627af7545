"""VRPLIB benchmark through the app's solver interface (needs ../shared/vrp)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from geo_crm.routing.vrplib_bench import main, solve_instance

VRP_DIR = Path(os.environ.get("GEO_CRM_VRP_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "vrp"))
X101 = VRP_DIR / "X-n101-k25.vrp"
PR11A = VRP_DIR / "PR11A.vrp"
LINE = re.compile(r"^cost=(\d+(?:\.\d+)?) routes=(\d+) feasible=(true|false) time_s=(\d+\.\d+)$")

pytestmark = pytest.mark.skipif(not X101.exists(), reason=f"VRPLIB instances not found in {VRP_DIR}")


def test_x101_feasible_and_close_to_bks():
    res = solve_instance(X101, time_limit_s=2, seed=1)
    assert res.feasible, res.violations
    assert res.bks == 27591
    assert res.gap_pct is not None and 0 <= res.gap_pct < 5
    assert res.round_mode == "round"
    assert res.routes >= 25


def test_main_prints_one_final_line(capsys):
    rc = main([str(X101), "--time-limit", "1", "--seed", "2"])
    out = capsys.readouterr().out.strip().splitlines()
    m = LINE.match(out[-1])
    assert m, out[-1]
    assert m.group(3) == "true" and rc == 0
    assert (float(m.group(1)) - 27591) / 27591 * 100 < 5


@pytest.mark.skipif(not PR11A.exists(), reason="PR11A not present")
def test_pr11a_parses_and_is_feasible():
    res = solve_instance(PR11A, time_limit_s=3, seed=1)
    assert res.round_mode == "exact"
    assert res.num_stops == 360
    assert res.bks == 6655548
    assert res.feasible, res.violations
    assert res.cost >= res.bks
