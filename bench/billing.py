"""Billing run benchmark (issue: bill 100,000 subscriptions, two items each, tax
applied, ledger posted) against a raw driver bulk insert of the same rows."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import text

from .common import REDIS_URL, Timer, make_app, postgres_database, sqlite_url
from .seed import provider_with_catalogue, subscriptions

AS_OF = date(2026, 2, 10)
TABLES = ("invoices", "invoice_lines", "invoice_taxes", "ledger_transactions", "ledger_entries")


def _seed(app, count: int):
    from kassa.extensions import db

    with app.app_context():
        provider, _, service_ids = provider_with_catalogue()
        subscriptions(provider, service_ids, count, date(2026, 1, 5))
        db.session.commit()
        return provider.id


def _baseline(app) -> float:
    """Take the rows the run wrote, delete them, and time inserting them again with the driver."""
    from kassa.extensions import db

    with app.app_context():
        engine = db.engine
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            data = {}
            for table in TABLES:
                cur.execute(f'SELECT * FROM "{table}"')
                data[table] = ([c[0] for c in cur.description], cur.fetchall())
            for table in reversed(TABLES):
                cur.execute(f'DELETE FROM "{table}"')
            raw.commit()
            marker = "%s" if engine.dialect.name == "postgresql" else "?"
            if engine.dialect.name == "postgresql":
                from psycopg.types.json import Json

                data = {t: (cols, [tuple(Json(v) if isinstance(v, (dict, list)) else v for v in row) for row in rows])
                        for t, (cols, rows) in data.items()}
            with Timer() as t:
                for table in TABLES:
                    columns, rows = data[table]
                    sql = (f'INSERT INTO "{table}" ({", ".join(columns)}) '
                           f'VALUES ({", ".join([marker] * len(columns))})')
                    cur.executemany(sql, rows)
                raw.commit()
            return t.seconds
        finally:
            raw.close()


def _invoices(app) -> int:
    from kassa.extensions import db

    with app.app_context():
        return db.session.execute(text("SELECT count(*) FROM invoices")).scalar()


def sqlite_one_process(report, count: int) -> None:
    from kassa.services import billing_run

    app = make_app(sqlite_url())
    provider_id = _seed(app, count)
    with app.app_context(), Timer() as t:
        billing_run.start(None, provider_id, AS_OF, background=False)
    made = _invoices(app)
    raw = _baseline(app)
    report.add(f"billing run, SQLite, 1 process ({made:,} invoices)", f"{made / t.seconds:,.0f} invoices/s "
               f"({t.seconds:.1f} s)", f"raw insert {raw:.1f} s", f"{t.seconds / raw:.1f}×")


def postgres_workers(report, count: int, workers: int) -> None:
    from redis import Redis

    from kassa.extensions import db
    from kassa.models import BillingRun
    from kassa.services import billing_run

    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    with postgres_database() as url:
        app = make_app(url, KASSA_REDIS_URL=REDIS_URL)
        provider_id = _seed(app, count)
        env = dict(os.environ, KASSA_DATABASE_URL=url, KASSA_REDIS_URL=REDIS_URL, KASSA_SECRET_KEY="bench",
                   KASSA_TEST_CLOCK="0")
        kassa = str(Path(sys.executable).with_name("kassa"))
        with app.app_context(), Timer() as t:
            run = billing_run.start(None, provider_id, AS_OF, background=False, distribute=True)  # enqueues chunks
            procs = [subprocess.Popen([kassa, "worker", "--burst", "--no-tick"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for _ in range(workers)]
            for proc in procs:
                _, err = proc.communicate(timeout=3600)
                if proc.returncode:
                    raise RuntimeError(f"worker failed: {err[-2000:]}")
        with app.app_context():
            finished = db.session.get(BillingRun, run.id, populate_existing=True)
            made = _invoices(app)
            assert finished.status == "finished" and made == count, (finished.status, made)
        raw = _baseline(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    report.add(f"billing run, PostgreSQL, {workers} RQ worker{'s' if workers > 1 else ''} ({made:,} invoices)",
               f"{made / t.seconds:,.0f} invoices/s ({t.seconds:.1f} s)", f"raw insert {raw:.1f} s",
               f"{t.seconds / raw:.1f}×")


def run(report, count: int = 100_000) -> None:
    sqlite_one_process(report, count)
    postgres_workers(report, count, 1)
    postgres_workers(report, count, 2)
