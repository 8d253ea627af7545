"""Alembic environment: the URL comes from the caller (`geo-crm db upgrade`, tests) or
from DATABASE_URL / the embedded cluster."""
from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from geo_crm.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from geo_crm.config import database_url, load_env
    load_env()
    return database_url()


def _include_object(obj, name, type_, reflected, compare_to):
    # PostGIS / pgRouting / tiger catalogues are not ours
    if type_ == "table" and (name in {"spatial_ref_sys"} or (reflected and compare_to is None)):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      include_object=_include_object,
                      process_revision_directives=alembic_helpers.writer,
                      render_item=alembic_helpers.render_item)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(_url(), poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      include_object=_include_object,
                      process_revision_directives=alembic_helpers.writer,
                      render_item=alembic_helpers.render_item,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
