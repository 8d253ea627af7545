"""Offline geocoding from the OSM address gazetteer (`address_point`) and GeoNames
places, with optional online providers. See `geocoder.geocode` and `reverse`."""
from geo_crm.geocoding.geocoder import QUALITY_ORDER, GeocodeResult, geocode, reverse  # noqa: F401
from geo_crm.geocoding.normalise import normalise_street, parse_address  # noqa: F401
