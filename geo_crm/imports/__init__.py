"""Validated bulk import of customers, contacts, branches and partners from CSV,
XLSX, GeoJSON, GeoPackage and zipped Shapefile. See `runner.run_import`."""
from geo_crm.imports.runner import ImportOptions, load_mapping_file, run_import, write_rejects, write_report  # noqa: F401
