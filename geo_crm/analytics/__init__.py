"""Reports and customer analytics: contribution, composition, service, churn, value
segments (+ RFM) and the sales pipeline.

Every function takes `(session, scope, params)` and knows nothing of Flask. Figures
are aggregated in SQL over the caller's visible customers (`Scope.customer_filter()`
plus the report filters). Revenue comes from the materialised views of `revenue.py`:
the 12-month view for the default window, otherwise per-customer monthly prefix sums
for the whole months of any period plus the edge days read live (`periods.py`); from
the base tables alone until the views are first refreshed. Per-customer distributions
are fetched as numpy columns (`arrays.py`) and ranked there. Results are plain dicts:
`{"report", "params", "source", "summary", "tables": {name: Table}, "charts": {...}}`
so the API, the web pages and the exporters treat every report alike.

Money is EUR, durations are hours (service) or days (pipeline stages).
"""
REPORTS = ("contribution", "composition", "service", "churn", "segments", "pipeline")
