"""Sample data generation (see loader.py)."""
