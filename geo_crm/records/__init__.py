"""The CRM's other records: branches and vehicles, partners, products, orders with
lines, regions (read-mostly), dictionaries, users administration and audit-log
queries.

Domain functions take `(session, scope, ...)`, know nothing of Flask, filter every
read through the Scope (a record the caller may not see raises `NotFound`), and raise
`Invalid(field, problem)` for bad input. Geometry is EPSG:4326 (lon, lat degrees).
"""
