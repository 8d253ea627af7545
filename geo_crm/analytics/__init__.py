"""Reports and customer analytics: contribution, composition, service, churn, value
segments (+ RFM) and the sales pipeline.

Every function takes `(session, scope, params)` and knows nothing of Flask. Figures
are aggregated in SQL over the caller's visible customers (`Scope.customer_filter()`
plus the report filters), reading the materialised views of `revenue.py` when they
cover the requested period and the base tables otherwise. Results are plain dicts:
`{"report", "params", "source", "summary", "tables": {name: Table}, "charts": {...}}`
so the API, the web pages and the exporters treat every report alike.

Money is EUR, durations are hours (service) or days (pipeline stages).
"""
REPORTS = ("contribution", "composition", "service", "churn", "segments", "pipeline")
