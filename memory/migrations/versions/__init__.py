"""Alembic revision scripts, oldest first (0001_initial.py creates the schema, 0002 adds image versions)."""
