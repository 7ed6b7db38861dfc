"""Alembic migrations of the pathway schema (run with `pathway db upgrade`)."""
