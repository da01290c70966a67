"""Alembic migrations of the region memory (run them with :func:`regionreasoner.memory.migrate.upgrade`)."""
