"""Fault tests: real PostgreSQL, real Redis, real `kassa worker` processes.

They need worker processes sharing a server database with the test, so they
skip on SQLite (the PostgreSQL pass of `make test` in CI runs them) and, through
require_postgres()/require_redis(), fail in CI when a service is missing."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from kassa import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the bench package beside tests/
from kassa.testing.services import require_postgres, require_redis

AS_OF = date(2026, 2, 10)  # every seeded subscription (anchored Jan 5) has one period ended
KASSA = str(Path(sys.executable).with_name("kassa"))


@pytest.fixture
def pg(kassa_config):
    """The test database URL, which must be PostgreSQL."""
    url = kassa_config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        pytest.skip("fault tests need PostgreSQL (worker processes sharing the database with the test, "
                    "server sessions to terminate): set KASSA_DATABASE_URL=postgresql+psycopg://...; CI's PostgreSQL pass runs them")
    require_postgres()
    return url


def worker_env(kassa_config, kassa_tmp_root, redis_url: str, name: str = "", **extra) -> dict:
    url = kassa_config["SQLALCHEMY_DATABASE_URI"]
    if name:  # the worker's PostgreSQL sessions are found by application_name
        url += ("&" if "?" in url else "?") + f"application_name={name}"
    env = dict(os.environ, KASSA_DATABASE_URL=url, KASSA_REDIS_URL=redis_url,
               KASSA_SECRET_KEY=kassa_config["SECRET_KEY"], KASSA_TEST_CLOCK="0",
               KASSA_INSTANCE_PATH=os.path.join(kassa_tmp_root, "instance"), KASSA_LOG_LEVEL="WARNING")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(env: dict, log_dir: str, name: str) -> subprocess.Popen:
    log = open(os.path.join(log_dir, f"{name}.log"), "ab")
    return subprocess.Popen([KASSA, "worker", "--burst", "--no-tick"], env=env, stdout=log, stderr=subprocess.STDOUT)


def worker_log(log_dir: str, name: str) -> str:
    path = os.path.join(log_dir, f"{name}.log")
    return Path(path).read_text(errors="replace") if os.path.exists(path) else ""


def stop(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def redis_app(pg, kassa_config):
    """The app the test plans with, on the shared database and the test's Redis db."""
    url = require_redis()
    app = create_app(dict(kassa_config, KASSA_REDIS_URL=url, KASSA_JOBS_SYNC=False))
    from kassa.jobs import rq_queue

    with app.app_context():
        rq_queue(app).connection.flushdb()
    yield app
    with app.app_context():
        rq_queue(app).connection.flushdb()
        from kassa.extensions import db

        db.session.remove()


@pytest.fixture
def log_dir():
    path = tempfile.mkdtemp(prefix="kassa-faults-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def seed(provider, count: int, per_org: int = 5) -> list[int]:
    """``count`` monthly subscriptions (anchored Jan 5, two items each) of ``count / per_org`` customers,
    written with the benchmarks' bulk inserts (the services would take minutes for thousands)."""
    from bench.seed import catalogue, subscriptions

    return subscriptions(provider, catalogue(provider), count, date(2026, 1, 5), per_org=per_org)


def assert_billed_once(db, provider, sub_ids: list[int], run_id: int) -> None:
    """The invariants after a run that survived a fault: one invoice per subscription
    and period, no billing key twice, numbers 1..N without a gap, the ledger
    balanced (one invoice transaction per invoice), the run finished with exact counts."""
    from kassa.models import BillingRun, Invoice, InvoiceSequence, LedgerTransaction
    from kassa.services import ledger, settings

    db.session.rollback()
    db.session.expire_all()
    rows = db.session.execute(select(Invoice.subscription_id, Invoice.period_start, Invoice.billing_key,
                                     Invoice.sequence, Invoice.number).where(Invoice.provider_id == provider.id)
                              ).all()
    assert len(rows) == len(sub_ids), f"{len(rows)} invoices for {len(sub_ids)} due subscriptions"
    assert sorted(r.subscription_id for r in rows) == sorted(sub_ids)  # every one, once
    assert all(r.period_start == date(2026, 1, 5) for r in rows)
    assert len({r.billing_key for r in rows}) == len(rows)
    assert sorted(r.sequence for r in rows) == list(range(1, len(rows) + 1))  # gapless
    prefix = settings.config(provider.id).invoice_prefix
    assert {r.number for r in rows} == {f"{prefix}{n:06d}" for n in range(1, len(rows) + 1)}
    assert db.session.scalar(select(InvoiceSequence.last_number).filter_by(provider_id=provider.id)) == len(rows)
    assert ledger.unbalanced_transactions() == []
    assert db.session.scalar(select(func.count(LedgerTransaction.id)).where(
        LedgerTransaction.kind == "invoice")) == len(rows)
    run = db.session.get(BillingRun, run_id)
    assert (run.status, run.done, run.total, run.invoices_created, run.failed) == (
        "finished", len(sub_ids), len(sub_ids), len(sub_ids), 0)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def side_connection(db):
    """A connection of its own (autocommit) for watching and disturbing the others."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def scalar(conn, sql: str, **params):
    return conn.execute(text(sql), params).scalar()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
