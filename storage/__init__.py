"""Persistence: SQLModel models, the async engine, queries and Alembic migrations."""
