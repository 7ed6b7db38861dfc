"""Persistence at the edge: SQLAlchemy Core tables, migrations and the unit of work."""
