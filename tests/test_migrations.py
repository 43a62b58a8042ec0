"""The migrated schema matches the models, on SQLite and on PostgreSQL."""
import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from kassa import create_app
from kassa.testing.services import require_postgres


def _diff_after_upgrade(url: str, kassa_config: dict) -> list:
    import flask_migrate

    from kassa.extensions import db

    app = create_app(dict(kassa_config, SQLALCHEMY_DATABASE_URI=url))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.session.remove()
        db.engine.dispose()
    return diff


def test_sqlite_migrations_match_models(tmp_path, kassa_config):
    assert _diff_after_upgrade(f"sqlite:///{tmp_path / 'migrated.db'}", kassa_config) == []


def test_postgres_migrations_match_models(kassa_config):
    base = require_postgres()
    name = f"kassa_migr_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.rsplit("/", 1)[0] + f"/{name}"
        assert _diff_after_upgrade(url, kassa_config) == []
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
