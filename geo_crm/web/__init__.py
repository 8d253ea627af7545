"""Server-rendered HTML views (Jinja templates in /templates)."""
