"""Durable storage of the dispatch service: SQLAlchemy models, engines, migrations and seeding.

One set of SQLAlchemy 2 + GeoAlchemy2 models serves both backends: SQLite with SpatiaLite (the
default, a file in the cache directory) and PostgreSQL with PostGIS (``postgresql+psycopg://``).
"""
