"""Health endpoints for load balancers and orchestrators (no authentication).

``/health/live``: the process answers (no I/O). ``/health/ready``: the database
answers ``SELECT 1`` and its schema is at the migrations' head; with Redis
configured, Redis answers and the RQ queue depth and worker count are reported.
200 when ready, 503 naming the failed checks. The output never carries URLs,
hostnames or exception messages (those may hold credentials): only a check's
state and the error's class name.
"""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__, url_prefix="/health")
REDIS_TIMEOUT_SECONDS = 1.0


@bp.get("/live")
def live():
    return _json({"status": "ok"}, 200)


@bp.get("/ready")
def ready():
    checks = {"database": _database()}
    if current_app.config.get("KASSA_REDIS_URL"):
        checks["redis"] = _redis()
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    body = {"status": "unavailable" if failed else "ready", "checks": checks}
    if failed:
        body["failed"] = failed
    return _json(body, 503 if failed else 200)


def _json(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(exc: Exception) -> str:
    return type(exc).__name__  # never str(exc): driver messages name hosts and users


def _database() -> dict:
    from ..extensions import db

    started = time.perf_counter()
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = current_revisions(conn)
    except Exception as exc:
        return {"ok": False, "error": _error(exc)}
    heads = migration_heads(current_app)
    at_head = set(current) == set(heads)
    result = {"ok": at_head, "latency_ms": round((time.perf_counter() - started) * 1000, 1),
              "migrations": {"at_head": at_head, "current": sorted(current), "head": sorted(heads)}}
    if not at_head:
        result["error"] = "migrations not at head: run `kassa db upgrade`"
    return result


def _redis() -> dict:
    from rq import Queue, Worker

    from ..jobs import QUEUE_NAME

    started = time.perf_counter()
    try:
        connection = redis_client(current_app)
        connection.ping()
        latency = round((time.perf_counter() - started) * 1000, 1)
        depth = Queue(QUEUE_NAME, connection=connection).count
        workers = Worker.count(connection=connection)
    except Exception as exc:
        return {"ok": False, "error": _error(exc)}
    return {"ok": True, "latency_ms": latency, "queue_depth": depth, "workers": workers}


def redis_client(app):
    """One client per app and URL, with short timeouts (a probe must not hang)."""
    from redis import Redis

    url = app.config["KASSA_REDIS_URL"]
    clients = app.extensions.setdefault("kassa_health_redis", {})
    if url not in clients:
        clients[url] = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                      socket_timeout=REDIS_TIMEOUT_SECONDS)
    return clients[url]


def current_revisions(conn) -> tuple[str, ...]:
    """The revisions the database is stamped with (empty when never migrated)."""
    from alembic.migration import MigrationContext

    return tuple(MigrationContext.configure(conn).get_current_heads())


def migration_heads(app) -> tuple[str, ...]:
    """The head revisions of the core's and the plugins' migrations, read once per process."""
    heads = app.extensions.get("kassa_migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        config = app.extensions["migrate"].migrate.get_config()
        heads = tuple(ScriptDirectory.from_config(config).get_heads())
        app.extensions["kassa_migration_heads"] = heads
    return heads


def init_health(app) -> None:
    from ..extensions import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)
