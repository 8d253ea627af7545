"""The import page in headless Chromium under the strict CSP: an admin uploads a small
CSV, checks the column mapping, runs the import, watches the progress bar reach 100 %
(polled with fetch) and the report appear, and finds the new customers in the list."""
from __future__ import annotations

import csv
import secrets
import urllib.parse
import urllib.request

import pytest

from tests.live_http import call as _call, token as _token


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")


@pytest.mark.browser
def test_admin_imports_a_csv_and_sees_the_customers(page, browser_login, live_server, tmp_path):
    tag = "BRI" + secrets.token_hex(3).upper()
    rows = [(f"{tag}-1", f"Selainimportti {tag} Alfa Oy", "key", "60.1699", "24.9384"),
            (f"{tag}-2", f"Selainimportti {tag} Beta Oy", "small", "60.2055", "24.6559"),
            (f"{tag}-3", f"Selainimportti {tag} Gamma Oy", "major", "61.4978", "23.7610")]
    path = tmp_path / f"asiakkaat-{tag}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Asiakasnumero", "Nimi", "Taso", "Leveysaste", "Pituusaste"])   # Finnish headers
        w.writerows(rows)
    tok = _token(live_server, "admin")
    try:
        browser_login("admin")
        page.goto("/data/import")
        page.select_option("select[name=kind]", "customers")
        page.set_input_files("#upload-file", str(path))
        page.click("#upload-submit")
        page.wait_for_url("**/data/import/u/**")
        # the Finnish headers were recognised
        assert page.input_value("select[name=map_0]") == "code"
        assert page.input_value("select[name=map_1]") == "name"
        assert page.input_value("select[name=map_3]") == "lat"
        # choosing one field twice is flagged before submitting
        page.select_option("select[name=map_2]", "name")
        assert page.locator("#dup-warning").is_visible()
        page.select_option("select[name=map_2]", "level")
        assert not page.locator("#dup-warning").is_visible()
        page.check("input[name=mode][value=all_or_nothing]")
        page.click("#run-import")
        page.wait_for_url("**/data/import/jobs/*")
        page.locator("#report").wait_for(timeout=30_000)
        assert page.get_attribute("#job-progress", "aria-valuenow") == "100"
        assert page.inner_text("#job-pct") == "100"
        assert page.inner_text("#count-inserted") == "3"
        assert page.get_attribute("#report", "data-status") == "imported"
        # the new customers are in the list
        page.goto("/customers?" + urllib.parse.urlencode({"q": tag}))
        table = page.locator("#customer-table")
        for code, name, *_ in rows:
            assert table.get_by_text(name).count() == 1, name
    finally:
        got = _call(live_server, "GET", "/api/v1/customers?" + urllib.parse.urlencode({"q": tag, "limit": 50}), token=tok)
        for feat in got["features"]:
            if feat["properties"]["code"].startswith(tag):
                _call(live_server, "DELETE", f"/api/v1/customers/{feat['id']}", token=tok)
