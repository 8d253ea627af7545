"""Sales territory planning: CRUD, build from regions, split, merge, overlap/gap report,
balance report, suggested balanced alignment, and branch service areas.

Geometry is EPSG:4326 MultiPolygon; areas km² on the spheroid. Customer membership is
recomputed by the database triggers when a territory's geometry changes (migration 0002).
"""
