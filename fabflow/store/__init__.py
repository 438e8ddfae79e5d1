"""Persistence: SQLAlchemy schema, the repository with guarded updates, migrations, files."""
