"""Kassa: billing and invoicing for cloud providers and their resellers."""
from __future__ import annotations

import os

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import from_environment

__all__ = ["create_app"]


def create_app(config: dict | None = None) -> Flask:
    """Build the app: configuration, extensions, plugins, blueprints."""
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static",
                instance_path=os.environ.get("KASSA_INSTANCE_PATH") or None,
                instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(from_environment(app.instance_path))
    if config:
        app.config.update(config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    from .logs import configure_logging

    configure_logging(app.config)  # KASSA_LOG_FORMAT text|json, KASSA_LOG_LEVEL

    from . import models  # noqa: F401  (register the tables)
    from .clock import FrozenClock, SystemClock
    from .extensions import csrf, db, login_manager, migrate
    from .plugins import build_host

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    migrations = app.config.get("KASSA_MIGRATIONS_DIR") or os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "migrations")
    migrate.init_app(app, db, directory=migrations, render_as_batch=True, compare_type=True)
    app.extensions.setdefault("kassa_clock", FrozenClock() if app.config.get("KASSA_TEST_CLOCK") else SystemClock())
    app.extensions["kassa_plugins"] = host = build_host(app)

    @migrate.configure
    def plugin_version_locations(alembic_config):
        """The core's versions folder plus each plugin's (hook ``kassa_migrations``)."""
        folders = [os.path.join(migrations, "versions")]
        folders += [path for path in host.pm.hook.kassa_migrations() if path]
        alembic_config.set_main_option("version_locations", os.pathsep.join(folders))
        return alembic_config

    from .web import init_web

    init_web(app)
    from .logs import init_request_logging
    from .web.health import init_health

    init_health(app)
    init_request_logging(app)
    from .jobs import init_jobs

    init_jobs(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, WAL so the web app and the job thread share it,
    and let SQLAlchemy (not the driver) open transactions (see _sqlite_begin)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across crashes of the app, not of the OS
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLite has no row locks (SELECT ... FOR UPDATE is ignored) and a read
    transaction that later writes can fail at once when another writer went first.
    A service's write transaction (``atomic``) therefore starts with BEGIN IMMEDIATE,
    taking the write lock up front (waiting up to busy_timeout), so two writers are
    serialised as PostgreSQL's row locks serialise them. Reads outside a service
    run without BEGIN, each statement seeing the latest commit, as PostgreSQL's
    READ COMMITTED does (a WAL read transaction would pin an old snapshot)."""
    if conn.dialect.name == "sqlite":
        from .services.uow import wants_write_lock

        if wants_write_lock():
            conn.exec_driver_sql("BEGIN IMMEDIATE")
