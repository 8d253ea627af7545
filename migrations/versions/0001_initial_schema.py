"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import geoalchemy2
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for ext in ("postgis", "pgrouting", "pg_trgm", "btree_gist"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    op.create_geospatial_table('address_point',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('osm_type', sa.String(length=8), server_default='node', nullable=False),
    sa.Column('osm_id', sa.BigInteger(), nullable=True),
    sa.Column('street', sa.String(length=200), nullable=False),
    sa.Column('housenumber', sa.String(length=32), server_default='', nullable=False),
    sa.Column('postcode', sa.String(length=16), server_default='', nullable=False),
    sa.Column('city', sa.String(length=100), server_default='', nullable=False),
    sa.Column('street_norm', sa.String(length=200), server_default='', nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('geom IS NULL OR (ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(geom))', name=op.f('ck_address_point_geom_lonlat_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address_point'))
    )
    op.create_geospatial_index('idx_address_point_geom', 'address_point', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_address_point_postcode', 'address_point', ['postcode'], unique=False)
    op.create_index('ix_address_point_street_norm_trgm', 'address_point', ['street_norm'], unique=False, postgresql_using='gin', postgresql_ops={'street_norm': 'gin_trgm_ops'})
    op.create_table('app_setting',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_app_setting'))
    )
    op.create_geospatial_table('branch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('postcode', sa.String(length=16), server_default='', nullable=False),
    sa.Column('city', sa.String(length=100), server_default='', nullable=False),
    sa.Column('phone', sa.String(length=50), server_default='', nullable=False),
    sa.Column('email', sa.String(length=200), server_default='', nullable=False),
    sa.Column('opening_hours', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('is_depot', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('service_area', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('service_area_kind', sa.String(length=16), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("service_area_kind IS NULL OR service_area_kind IN ('drawn', 'voronoi')", name=op.f('ck_branch_service_area_kind')),
    sa.CheckConstraint('geom IS NULL OR (ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(geom))', name=op.f('ck_branch_geom_lonlat_range')),
    sa.CheckConstraint('service_area IS NULL OR (ST_IsValid(service_area) AND NOT ST_IsEmpty(service_area))', name=op.f('ck_branch_service_area_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branch')),
    sa.UniqueConstraint('code', name=op.f('uq_branch_code'))
    )
    op.create_geospatial_index('idx_branch_geom', 'branch', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_branch_service_area', 'branch', ['service_area'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('dictionary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('sort', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dictionary')),
    sa.UniqueConstraint('kind', 'code', name=op.f('uq_dictionary_kind_code'))
    )
    op.create_table('geocode_cache',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geocode_cache')),
    sa.UniqueConstraint('provider', 'query', name=op.f('uq_geocode_cache_provider_query'))
    )
    op.create_geospatial_table('partner',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('partner_type', sa.String(length=16), nullable=False),
    sa.Column('credit_level', sa.String(length=8), server_default='A', nullable=False),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('postcode', sa.String(length=16), server_default='', nullable=False),
    sa.Column('city', sa.String(length=100), server_default='', nullable=False),
    sa.Column('phone', sa.String(length=50), server_default='', nullable=False),
    sa.Column('email', sa.String(length=200), server_default='', nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('coverage', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('commission_pct', sa.Numeric(precision=5, scale=2), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("partner_type IN ('distributor', 'reseller', 'supplier')", name=op.f('ck_partner_partner_type')),
    sa.CheckConstraint('coverage IS NULL OR (ST_IsValid(coverage) AND NOT ST_IsEmpty(coverage))', name=op.f('ck_partner_coverage_valid')),
    sa.CheckConstraint('geom IS NULL OR (ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(geom))', name=op.f('ck_partner_geom_lonlat_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner')),
    sa.UniqueConstraint('code', name=op.f('uq_partner_code'))
    )
    op.create_geospatial_index('idx_partner_coverage', 'partner', ['coverage'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_partner_geom', 'partner', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=64), server_default='', nullable=False),
    sa.Column('unit', sa.String(length=16), server_default='pcs', nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('unit_cost', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('load_units', sa.SmallInteger(), server_default='1', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('unit_price >= 0 AND unit_cost >= 0', name=op.f('ck_product_prices_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product')),
    sa.UniqueConstraint('sku', name=op.f('uq_product_sku'))
    )
    op.create_geospatial_table('region',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_local', sa.String(length=200), nullable=True),
    sa.Column('level', sa.Integer(), server_default='1', nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('population', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('area_km2', sa.Float(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))', name=op.f('ck_region_geom_valid')),
    sa.ForeignKeyConstraint(['parent_id'], ['region.id'], name=op.f('fk_region_parent_id_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region')),
    sa.UniqueConstraint('code', name=op.f('uq_region_code'))
    )
    op.create_geospatial_index('idx_region_geom', 'region', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('road_segment',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('osm_way_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('highway', sa.String(length=32), server_default='', nullable=False),
    sa.Column('source', sa.BigInteger(), nullable=False),
    sa.Column('target', sa.BigInteger(), nullable=False),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('maxspeed_kmh', sa.Float(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('reverse_cost', sa.Float(), nullable=False),
    sa.Column('oneway', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('geom', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_road_segment'))
    )
    op.create_geospatial_index('idx_road_segment_geom', 'road_segment', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_road_segment_source'), 'road_segment', ['source'], unique=False)
    op.create_index(op.f('ix_road_segment_target'), 'road_segment', ['target'], unique=False)
    op.create_geospatial_table('road_vertex',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('osm_node_id', sa.BigInteger(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_road_vertex')),
    sa.UniqueConstraint('osm_node_id', name=op.f('uq_road_vertex_osm_node_id'))
    )
    op.create_geospatial_index('idx_road_vertex_geom', 'road_vertex', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('role',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_role'))
    )
    op.create_geospatial_table('territory',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('color', sa.String(length=16), server_default='#3388ff', nullable=False),
    sa.Column('source', sa.String(length=16), server_default='drawn', nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('area_km2', sa.Float(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("color ~ '^#[0-9a-fA-F]{6}$'", name=op.f('ck_territory_color_hex')),
    sa.CheckConstraint("source IN ('drawn', 'regions', 'suggested')", name=op.f('ck_territory_source')),
    sa.CheckConstraint('geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))', name=op.f('ck_territory_geom_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_territory')),
    sa.UniqueConstraint('name', name=op.f('uq_territory_name'))
    )
    op.create_geospatial_index('idx_territory_geom', 'territory', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('full_name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('auth_epoch', sa.Integer(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role <> 'customer' OR customer_id IS NOT NULL", name=op.f('ck_app_user_customer_login_has_customer')),
    sa.CheckConstraint('length(username) BETWEEN 2 AND 64', name=op.f('ck_app_user_username_length')),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_app_user_branch_id_branch'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_app_user_customer_id_customer'), ondelete='CASCADE', use_alter=True),
    sa.ForeignKeyConstraint(['role'], ['role.name'], name=op.f('fk_app_user_role_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_index(op.f('ix_app_user_role'), 'app_user', ['role'], unique=False)
    op.create_table('partner_region',
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_partner_region_partner_id_partner'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_partner_region_region_id_region'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('partner_id', 'region_id', name=op.f('pk_partner_region'))
    )
    op.create_geospatial_table('place',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('ascii_name', sa.String(length=200), nullable=False),
    sa.Column('population', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('geom IS NULL OR (ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(geom))', name=op.f('ck_place_geom_lonlat_range')),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_place_region_id_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_place'))
    )
    op.create_geospatial_index('idx_place_geom', 'place', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_place_region_id'), 'place', ['region_id'], unique=False)
    op.create_table('territory_region',
    sa.Column('territory_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_territory_region_region_id_region'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_territory_region_territory_id_territory'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('territory_id', 'region_id', name=op.f('pk_territory_region'))
    )
    op.create_table('vehicle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('shift_start', sa.Time(), server_default='7:00', nullable=False),
    sa.Column('shift_end', sa.Time(), server_default='17:00', nullable=False),
    sa.Column('max_duration_min', sa.Integer(), server_default='600', nullable=False),
    sa.Column('speed_kmh', sa.Integer(), server_default='50', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.CheckConstraint('capacity > 0', name=op.f('ck_vehicle_capacity_positive')),
    sa.CheckConstraint('max_duration_min > 0', name=op.f('ck_vehicle_duration_positive')),
    sa.CheckConstraint('shift_end > shift_start', name=op.f('ck_vehicle_shift_order')),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_vehicle_branch_id_branch'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vehicle'))
    )
    op.create_index(op.f('ix_vehicle_branch_id'), 'vehicle', ['branch_id'], unique=False)
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('auth_epoch', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_api_token_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_api_token_token_sha256'))
    )
    op.create_index(op.f('ix_api_token_user_id'), 'api_token', ['user_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), server_default='', nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('old', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('new', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_audit_log_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_entity', 'audit_log', ['entity', 'entity_id'], unique=False)
    op.create_index(op.f('ix_audit_log_user_id'), 'audit_log', ['user_id'], unique=False)
    op.create_geospatial_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='company', nullable=False),
    sa.Column('industry', sa.String(length=64), nullable=True),
    sa.Column('level', sa.String(length=16), server_default='ordinary', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('credit_rating', sa.String(length=4), nullable=True),
    sa.Column('satisfaction', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('annual_revenue_eur', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('postcode', sa.String(length=16), server_default='', nullable=False),
    sa.Column('city', sa.String(length=100), server_default='', nullable=False),
    sa.Column('country', sa.String(length=2), server_default='FI', nullable=False),
    sa.Column('phone', sa.String(length=50), server_default='', nullable=False),
    sa.Column('email', sa.String(length=200), server_default='', nullable=False),
    sa.Column('website', sa.String(length=200), server_default='', nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('geocode_quality', sa.String(length=16), server_default='none', nullable=False),
    sa.Column('delivery_start', sa.Time(), nullable=True),
    sa.Column('delivery_end', sa.Time(), nullable=True),
    sa.Column('service_min', sa.SmallInteger(), server_default='10', nullable=False),
    sa.Column('delivery_notes', sa.Text(), server_default='', nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('service_branch_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(geom IS NULL) = (geocode_quality = 'none')", name=op.f('ck_customer_geocode_quality_matches_geom')),
    sa.CheckConstraint("credit_rating IS NULL OR credit_rating IN ('AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'C')", name=op.f('ck_customer_credit_rating')),
    sa.CheckConstraint("geocode_quality IN ('exact', 'address', 'street', 'postcode', 'city', 'manual', 'none')", name=op.f('ck_customer_geocode_quality')),
    sa.CheckConstraint("kind IN ('company', 'person')", name=op.f('ck_customer_kind')),
    sa.CheckConstraint("level IN ('key', 'major', 'ordinary', 'small')", name=op.f('ck_customer_level')),
    sa.CheckConstraint("status IN ('prospect', 'active', 'dormant', 'lost')", name=op.f('ck_customer_status')),
    sa.CheckConstraint('delivery_end IS NULL OR delivery_start IS NULL OR delivery_end > delivery_start', name=op.f('ck_customer_delivery_window_order')),
    sa.CheckConstraint('geom IS NULL OR (ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(geom))', name=op.f('ck_customer_geom_lonlat_range')),
    sa.CheckConstraint('length(trim(name)) > 0', name=op.f('ck_customer_name_not_blank')),
    sa.CheckConstraint('satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5', name=op.f('ck_customer_satisfaction_range')),
    sa.ForeignKeyConstraint(['owner_id'], ['app_user.id'], name=op.f('fk_customer_owner_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_customer_region_id_region'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['service_branch_id'], ['branch.id'], name=op.f('fk_customer_service_branch_id_branch'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer')),
    sa.UniqueConstraint('code', name=op.f('uq_customer_code'))
    )
    op.create_geospatial_index('idx_customer_geom', 'customer', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_customer_address_trgm', 'customer', ['address'], unique=False, postgresql_using='gin', postgresql_ops={'address': 'gin_trgm_ops'})
    op.create_index('ix_customer_code_trgm', 'customer', ['code'], unique=False, postgresql_using='gin', postgresql_ops={'code': 'gin_trgm_ops'})
    op.create_index(op.f('ix_customer_industry'), 'customer', ['industry'], unique=False)
    op.create_index('ix_customer_level_status', 'customer', ['level', 'status'], unique=False)
    op.create_index('ix_customer_name_trgm', 'customer', ['name'], unique=False, postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.create_index(op.f('ix_customer_owner_id'), 'customer', ['owner_id'], unique=False)
    op.create_index(op.f('ix_customer_region_id'), 'customer', ['region_id'], unique=False)
    op.create_index(op.f('ix_customer_service_branch_id'), 'customer', ['service_branch_id'], unique=False)
    op.create_table('delivery_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('plan_date', sa.Date(), nullable=False),
    sa.Column('cost_mode', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='planned', nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.CheckConstraint("cost_mode IN ('network', 'haversine')", name=op.f('ck_delivery_plan_cost_mode')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_delivery_plan_created_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_plan'))
    )
    op.create_index(op.f('ix_delivery_plan_plan_date'), 'delivery_plan', ['plan_date'], unique=False)
    op.create_table('import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('dry_run', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('total_rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('processed_rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_import_job_created_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job'))
    )
    op.create_geospatial_table('territory_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('changed_by', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['changed_by'], ['app_user.id'], name=op.f('fk_territory_history_changed_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_territory_history'))
    )
    op.create_geospatial_index('idx_territory_history_geom', 'territory_history', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_territory_history_territory_id'), 'territory_history', ['territory_id'], unique=False)
    op.create_table('user_territory',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.Integer(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_user_territory_territory_id_territory'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_territory_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'territory_id', name=op.f('pk_user_territory'))
    )
    op.create_index(op.f('ix_user_territory_territory_id'), 'user_territory', ['territory_id'], unique=False)
    op.create_table('churn_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('last_order_at', sa.Date(), nullable=True),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='warning', nullable=False),
    sa.Column('recovery_measures', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('warning', 'under_recovery', 'confirmed_lost', 'recovered')", name=op.f('ck_churn_alert_status')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_churn_alert_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by'], ['app_user.id'], name=op.f('fk_churn_alert_decided_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_churn_alert'))
    )
    op.create_index(op.f('ix_churn_alert_customer_id'), 'churn_alert', ['customer_id'], unique=False)
    op.create_index('uq_churn_alert_open_per_customer', 'churn_alert', ['customer_id'], unique=True, postgresql_where=sa.text("status IN ('warning', 'under_recovery')"))
    op.create_table('contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('gender', sa.String(length=8), server_default='unknown', nullable=False),
    sa.Column('title', sa.String(length=100), server_default='', nullable=False),
    sa.Column('office_phone', sa.String(length=50), server_default='', nullable=False),
    sa.Column('mobile_phone', sa.String(length=50), server_default='', nullable=False),
    sa.Column('email', sa.String(length=200), server_default='', nullable=False),
    sa.Column('is_primary', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("gender IN ('female', 'male', 'other', 'unknown')", name=op.f('ck_contact_gender')),
    sa.CheckConstraint('length(trim(name)) > 0', name=op.f('ck_contact_name_not_blank')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_contact_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact'))
    )
    op.create_index(op.f('ix_contact_customer_id'), 'contact', ['customer_id'], unique=False)
    op.create_index('ix_contact_name_trgm', 'contact', ['name'], unique=False, postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.create_table('customer_territory',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('territory_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_territory_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_customer_territory_territory_id_territory'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'territory_id', name=op.f('pk_customer_territory'))
    )
    op.create_index(op.f('ix_customer_territory_territory_id'), 'customer_territory', ['territory_id'], unique=False)
    op.create_geospatial_table('delivery_route',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('route_no', sa.SmallInteger(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('vehicle_id', sa.Integer(), nullable=True),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('distance_m', sa.Float(), server_default='0', nullable=False),
    sa.Column('duration_s', sa.Float(), server_default='0', nullable=False),
    sa.Column('load', sa.Integer(), server_default='0', nullable=False),
    sa.Column('color', sa.String(length=16), server_default='#e6194b', nullable=False),
    sa.Column('violations', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('geom', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_delivery_route_branch_id_branch')),
    sa.ForeignKeyConstraint(['plan_id'], ['delivery_plan.id'], name=op.f('fk_delivery_route_plan_id_delivery_plan'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicle.id'], name=op.f('fk_delivery_route_vehicle_id_vehicle'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_route'))
    )
    op.create_geospatial_index('idx_delivery_route_geom', 'delivery_route', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_delivery_route_branch_id'), 'delivery_route', ['branch_id'], unique=False)
    op.create_index(op.f('ix_delivery_route_plan_id'), 'delivery_route', ['plan_id'], unique=False)
    op.create_geospatial_table('opportunity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('prospect_name', sa.String(length=200), nullable=True),
    sa.Column('prospect_geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('contact_phone', sa.String(length=50), server_default='', nullable=False),
    sa.Column('probability', sa.SmallInteger(), server_default='10', nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('stage', sa.String(length=16), server_default='lead', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('expected_close', sa.Date(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lost_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("customer_id IS NOT NULL OR length(trim(coalesce(prospect_name, ''))) > 0", name=op.f('ck_opportunity_customer_or_prospect')),
    sa.CheckConstraint("stage IN ('lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost')", name=op.f('ck_opportunity_stage')),
    sa.CheckConstraint("status IN ('open', 'won', 'lost')", name=op.f('ck_opportunity_status')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_opportunity_amount_non_negative')),
    sa.CheckConstraint('probability BETWEEN 0 AND 100', name=op.f('ck_opportunity_probability_range')),
    sa.CheckConstraint('prospect_geom IS NULL OR (ST_X(prospect_geom) BETWEEN -180 AND 180 AND ST_Y(prospect_geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(prospect_geom))', name=op.f('ck_opportunity_prospect_geom_lonlat_range')),
    sa.ForeignKeyConstraint(['assignee_id'], ['app_user.id'], name=op.f('fk_opportunity_assignee_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_opportunity_created_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_opportunity_customer_id_customer'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity'))
    )
    op.create_geospatial_index('idx_opportunity_prospect_geom', 'opportunity', ['prospect_geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_opportunity_assignee_id'), 'opportunity', ['assignee_id'], unique=False)
    op.create_index(op.f('ix_opportunity_customer_id'), 'opportunity', ['customer_id'], unique=False)
    op.create_geospatial_table('sales_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('order_date', sa.Date(), nullable=False),
    sa.Column('delivery_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='confirmed', nullable=False),
    sa.Column('delivery_address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('delivery_geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('total_amount', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('total_cost', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('total_load', sa.Integer(), server_default='0', nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'confirmed', 'delivered', 'cancelled')", name=op.f('ck_sales_order_status')),
    sa.CheckConstraint('delivery_geom IS NULL OR (ST_X(delivery_geom) BETWEEN -180 AND 180 AND ST_Y(delivery_geom) BETWEEN -90 AND 90 AND NOT ST_IsEmpty(delivery_geom))', name=op.f('ck_sales_order_delivery_geom_lonlat_range')),
    sa.CheckConstraint('total_amount >= 0', name=op.f('ck_sales_order_amount_non_negative')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_sales_order_created_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_sales_order_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_order')),
    sa.UniqueConstraint('number', name=op.f('uq_sales_order_number'))
    )
    op.create_geospatial_index('idx_sales_order_delivery_geom', 'sales_order', ['delivery_geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_sales_order_customer_date', 'sales_order', ['customer_id', 'order_date'], unique=False)
    op.create_index(op.f('ix_sales_order_customer_id'), 'sales_order', ['customer_id'], unique=False)
    op.create_index(op.f('ix_sales_order_delivery_date'), 'sales_order', ['delivery_date'], unique=False)
    op.create_index(op.f('ix_sales_order_order_date'), 'sales_order', ['order_date'], unique=False)
    op.create_table('service_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), server_default='', nullable=False),
    sa.Column('request_text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('creator_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('assigned_by', sa.Integer(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handling_notes', sa.Text(), server_default='', nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('satisfaction', sa.SmallInteger(), nullable=True),
    sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopen_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('new', 'assigned', 'in_progress', 'resolved', 'archived')", name=op.f('ck_service_record_status')),
    sa.CheckConstraint('length(trim(request_text)) > 0', name=op.f('ck_service_record_request_not_blank')),
    sa.CheckConstraint('satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5', name=op.f('ck_service_record_satisfaction_range')),
    sa.ForeignKeyConstraint(['assigned_by'], ['app_user.id'], name=op.f('fk_service_record_assigned_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignee_id'], ['app_user.id'], name=op.f('fk_service_record_assignee_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['creator_id'], ['app_user.id'], name=op.f('fk_service_record_creator_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_service_record_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_record'))
    )
    op.create_index(op.f('ix_service_record_assignee_id'), 'service_record', ['assignee_id'], unique=False)
    op.create_index(op.f('ix_service_record_customer_id'), 'service_record', ['customer_id'], unique=False)
    op.create_index('ix_service_record_status_created', 'service_record', ['status', 'created_at'], unique=False)
    op.create_table('development_plan_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('planned_on', sa.Date(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('length(trim(action)) > 0', name=op.f('ck_development_plan_step_action_not_blank')),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], name=op.f('fk_development_plan_step_created_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_development_plan_step_opportunity_id_opportunity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_development_plan_step'))
    )
    op.create_index(op.f('ix_development_plan_step_opportunity_id'), 'development_plan_step', ['opportunity_id'], unique=False)
    op.create_table('opportunity_stage_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('from_stage', sa.String(length=16), nullable=True),
    sa.Column('to_stage', sa.String(length=16), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('changed_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by'], ['app_user.id'], name=op.f('fk_opportunity_stage_change_changed_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunity.id'], name=op.f('fk_opportunity_stage_change_opportunity_id_opportunity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity_stage_change'))
    )
    op.create_index(op.f('ix_opportunity_stage_change_opportunity_id'), 'opportunity_stage_change', ['opportunity_id'], unique=False)
    op.create_table('order_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('unit_cost', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_line_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['sales_order.id'], name=op.f('fk_order_line_order_id_sales_order'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_order_line_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_line'))
    )
    op.create_index(op.f('ix_order_line_order_id'), 'order_line', ['order_id'], unique=False)
    op.create_index(op.f('ix_order_line_product_id'), 'order_line', ['product_id'], unique=False)
    op.create_geospatial_table('route_stop',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('route_id', sa.Integer(), nullable=True),
    sa.Column('seq', sa.SmallInteger(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('eta', sa.DateTime(timezone=True), nullable=True),
    sa.Column('departure', sa.DateTime(timezone=True), nullable=True),
    sa.Column('demand', sa.Integer(), server_default='0', nullable=False),
    sa.Column('load_after', sa.Integer(), nullable=True),
    sa.Column('service_min', sa.SmallInteger(), server_default='10', nullable=False),
    sa.Column('tw_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tw_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('required', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('priority', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('unassigned_reason', sa.String(length=16), nullable=True),
    sa.Column('violation', sa.Text(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint("unassigned_reason IS NULL OR unassigned_reason IN ('capacity', 'time_window', 'out_of_reach', 'not_selected', 'no_location')", name=op.f('ck_route_stop_unassigned_reason')),
    sa.CheckConstraint('(route_id IS NULL) = (unassigned_reason IS NOT NULL)', name=op.f('ck_route_stop_assigned_xor_reason')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_route_stop_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['sales_order.id'], name=op.f('fk_route_stop_order_id_sales_order'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['delivery_plan.id'], name=op.f('fk_route_stop_plan_id_delivery_plan'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['route_id'], ['delivery_route.id'], name=op.f('fk_route_stop_route_id_delivery_route'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_route_stop'))
    )
    op.create_geospatial_index('idx_route_stop_geom', 'route_stop', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_route_stop_customer_id'), 'route_stop', ['customer_id'], unique=False)
    op.create_index(op.f('ix_route_stop_plan_id'), 'route_stop', ['plan_id'], unique=False)
    op.create_index(op.f('ix_route_stop_route_id'), 'route_stop', ['route_id'], unique=False)
    op.create_table('service_rating',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_record_id', sa.Integer(), nullable=False),
    sa.Column('rating', sa.SmallInteger(), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('rated_by', sa.Integer(), nullable=True),
    sa.Column('rated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('rating BETWEEN 1 AND 5', name=op.f('ck_service_rating_rating_range')),
    sa.ForeignKeyConstraint(['rated_by'], ['app_user.id'], name=op.f('fk_service_rating_rated_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['service_record_id'], ['service_record.id'], name=op.f('fk_service_rating_service_record_id_service_record'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_rating'))
    )
    op.create_index(op.f('ix_service_rating_service_record_id'), 'service_rating', ['service_record_id'], unique=False)


def downgrade() -> None:
    # extensions are left in place: other databases' objects may use them
    op.drop_index(op.f('ix_service_rating_service_record_id'), table_name='service_rating')
    op.drop_table('service_rating')
    op.drop_index(op.f('ix_route_stop_route_id'), table_name='route_stop')
    op.drop_index(op.f('ix_route_stop_plan_id'), table_name='route_stop')
    op.drop_index(op.f('ix_route_stop_customer_id'), table_name='route_stop')
    op.drop_geospatial_index('idx_route_stop_geom', table_name='route_stop', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('route_stop')
    op.drop_index(op.f('ix_order_line_product_id'), table_name='order_line')
    op.drop_index(op.f('ix_order_line_order_id'), table_name='order_line')
    op.drop_table('order_line')
    op.drop_index(op.f('ix_opportunity_stage_change_opportunity_id'), table_name='opportunity_stage_change')
    op.drop_table('opportunity_stage_change')
    op.drop_index(op.f('ix_development_plan_step_opportunity_id'), table_name='development_plan_step')
    op.drop_table('development_plan_step')
    op.drop_index('ix_service_record_status_created', table_name='service_record')
    op.drop_index(op.f('ix_service_record_customer_id'), table_name='service_record')
    op.drop_index(op.f('ix_service_record_assignee_id'), table_name='service_record')
    op.drop_table('service_record')
    op.drop_index(op.f('ix_sales_order_order_date'), table_name='sales_order')
    op.drop_index(op.f('ix_sales_order_delivery_date'), table_name='sales_order')
    op.drop_index(op.f('ix_sales_order_customer_id'), table_name='sales_order')
    op.drop_index('ix_sales_order_customer_date', table_name='sales_order')
    op.drop_geospatial_index('idx_sales_order_delivery_geom', table_name='sales_order', postgresql_using='gist', column_name='delivery_geom')
    op.drop_geospatial_table('sales_order')
    op.drop_index(op.f('ix_opportunity_customer_id'), table_name='opportunity')
    op.drop_index(op.f('ix_opportunity_assignee_id'), table_name='opportunity')
    op.drop_geospatial_index('idx_opportunity_prospect_geom', table_name='opportunity', postgresql_using='gist', column_name='prospect_geom')
    op.drop_geospatial_table('opportunity')
    op.drop_index(op.f('ix_delivery_route_plan_id'), table_name='delivery_route')
    op.drop_index(op.f('ix_delivery_route_branch_id'), table_name='delivery_route')
    op.drop_geospatial_index('idx_delivery_route_geom', table_name='delivery_route', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('delivery_route')
    op.drop_index(op.f('ix_customer_territory_territory_id'), table_name='customer_territory')
    op.drop_table('customer_territory')
    op.drop_index('ix_contact_name_trgm', table_name='contact', postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.drop_index(op.f('ix_contact_customer_id'), table_name='contact')
    op.drop_table('contact')
    op.drop_index('uq_churn_alert_open_per_customer', table_name='churn_alert', postgresql_where=sa.text("status IN ('warning', 'under_recovery')"))
    op.drop_index(op.f('ix_churn_alert_customer_id'), table_name='churn_alert')
    op.drop_table('churn_alert')
    op.drop_index(op.f('ix_user_territory_territory_id'), table_name='user_territory')
    op.drop_table('user_territory')
    op.drop_index(op.f('ix_territory_history_territory_id'), table_name='territory_history')
    op.drop_geospatial_index('idx_territory_history_geom', table_name='territory_history', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('territory_history')
    op.drop_table('import_job')
    op.drop_index(op.f('ix_delivery_plan_plan_date'), table_name='delivery_plan')
    op.drop_table('delivery_plan')
    op.drop_index(op.f('ix_customer_service_branch_id'), table_name='customer')
    op.drop_index(op.f('ix_customer_region_id'), table_name='customer')
    op.drop_index(op.f('ix_customer_owner_id'), table_name='customer')
    op.drop_index('ix_customer_name_trgm', table_name='customer', postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.drop_index('ix_customer_level_status', table_name='customer')
    op.drop_index(op.f('ix_customer_industry'), table_name='customer')
    op.drop_index('ix_customer_code_trgm', table_name='customer', postgresql_using='gin', postgresql_ops={'code': 'gin_trgm_ops'})
    op.drop_index('ix_customer_address_trgm', table_name='customer', postgresql_using='gin', postgresql_ops={'address': 'gin_trgm_ops'})
    op.drop_geospatial_index('idx_customer_geom', table_name='customer', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('customer')
    op.drop_index(op.f('ix_audit_log_user_id'), table_name='audit_log')
    op.drop_index('ix_audit_log_entity', table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_api_token_user_id'), table_name='api_token')
    op.drop_table('api_token')
    op.drop_index(op.f('ix_vehicle_branch_id'), table_name='vehicle')
    op.drop_table('vehicle')
    op.drop_table('territory_region')
    op.drop_index(op.f('ix_place_region_id'), table_name='place')
    op.drop_geospatial_index('idx_place_geom', table_name='place', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('place')
    op.drop_table('partner_region')
    op.drop_index(op.f('ix_app_user_role'), table_name='app_user')
    op.drop_table('app_user')
    op.drop_geospatial_index('idx_territory_geom', table_name='territory', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('territory')
    op.drop_table('role')
    op.drop_geospatial_index('idx_road_vertex_geom', table_name='road_vertex', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('road_vertex')
    op.drop_index(op.f('ix_road_segment_target'), table_name='road_segment')
    op.drop_index(op.f('ix_road_segment_source'), table_name='road_segment')
    op.drop_geospatial_index('idx_road_segment_geom', table_name='road_segment', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('road_segment')
    op.drop_geospatial_index('idx_region_geom', table_name='region', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('region')
    op.drop_table('product')
    op.drop_geospatial_index('idx_partner_geom', table_name='partner', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_index('idx_partner_coverage', table_name='partner', postgresql_using='gist', column_name='coverage')
    op.drop_geospatial_table('partner')
    op.drop_table('geocode_cache')
    op.drop_table('dictionary')
    op.drop_geospatial_index('idx_branch_service_area', table_name='branch', postgresql_using='gist', column_name='service_area')
    op.drop_geospatial_index('idx_branch_geom', table_name='branch', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('branch')
    op.drop_table('app_setting')
    op.drop_index('ix_address_point_street_norm_trgm', table_name='address_point', postgresql_using='gin', postgresql_ops={'street_norm': 'gin_trgm_ops'})
    op.drop_index('ix_address_point_postcode', table_name='address_point')
    op.drop_geospatial_index('idx_address_point_geom', table_name='address_point', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('address_point')
