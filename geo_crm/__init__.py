"""geo-crm: a PostGIS-backed CRM where every customer, branch and partner has a place on the map.

The application factory is `geo_crm.app.create_app`."""

__version__ = "0.1.0"
