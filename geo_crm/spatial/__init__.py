"""Spatial analysis of the customer base: spatial queries (areas of a customer, nearest
branches/partners, radius search), density statistics (region, territory, hex grid),
patterns (Getis-Ord Gi* hot spots, under-served areas, branch distance table) and
Mapbox vector tiles.

Every function takes `(session, scope, ...)`, filters customers through
`geo_crm.customers.filters.apply` (visibility + CRM filters), and knows nothing of Flask.
Coordinates are EPSG:4326; distances are metres on the WGS84 spheroid; areas km² geodesic;
hex grids are built in EPSG:3067 (ETRS-TM35FIN).

At scale: `aggregates` is the nightly density revenue snapshot (`geo-crm spatial
refresh`), and low-zoom tiles of everything read `customer_tile_cell`, kept live by
triggers (migration 0014).
"""
