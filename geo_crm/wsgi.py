"""WSGI entry point for gunicorn: `gunicorn geo_crm.wsgi:app`."""
from geo_crm.app import create_app

app = create_app()
