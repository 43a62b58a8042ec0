"""Real PostgreSQL and Redis for tests: skip with a reason on a machine without
them, fail in CI (CI=true) so nothing silently stops being tested."""
from __future__ import annotations

import os
import socket

import pytest

PG_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1/test"
REDIS_URL_DEFAULT = "redis://127.0.0.1:6379/15"


class ServiceUnavailable(RuntimeError):
    pass


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def missing(what: str, why: str):
    """Skip outside CI; fail in CI."""
    message = f"{what} is not available ({why})"
    if in_ci():
        pytest.fail(message + " and CI=true: this test must run in CI.", pytrace=False)
    pytest.skip(message)


def require_postgres() -> str:
    url = os.environ.get("KASSA_TEST_POSTGRES_URL", PG_URL_DEFAULT)
    if not _port_open("127.0.0.1", 5432):
        missing("PostgreSQL on 127.0.0.1:5432", "nothing listens there")
    return url


def require_redis() -> str:
    url = os.environ.get("KASSA_TEST_REDIS_URL", REDIS_URL_DEFAULT)
    if not _port_open("127.0.0.1", 6379):
        missing("Redis on 127.0.0.1:6379", "nothing listens there")
    return url
