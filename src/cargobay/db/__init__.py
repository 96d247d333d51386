"""Metadata: SQLAlchemy 2 models, the engine, and Alembic migrations (SQLite and PostgreSQL)."""
