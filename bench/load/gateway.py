"""The load test's gateway: the test FakeGateway with its card charges in a SQLite
file that every server worker shares, and the server's WSGI app that loads it."""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from decimal import Decimal

from kassa.contracts import GatewayResult
from kassa.hookspecs import hookimpl
from kassa.testing.fake_gateway import FakeGateway


class SharedGateway(FakeGateway):
    """FakeGateway whose card charges live in a SQLite file: every gunicorn worker
    sees the same charges, and a repeated idempotency key returns the first answer
    without charging again (as a real gateway does)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        with self._db() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS charges (key TEXT PRIMARY KEY, amount TEXT NOT NULL, "
                         "currency TEXT NOT NULL, reference TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS calls (kind TEXT NOT NULL, key TEXT NOT NULL)")

    @contextlib.contextmanager
    def _db(self):
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        if gateway != self.CARD:
            return super().kassa_gateway_charge(gateway, settings, charge)
        with self._db() as conn:
            conn.execute("INSERT INTO calls VALUES ('charge', ?)", (charge.idempotency_key,))
            row = conn.execute("SELECT amount, currency, reference FROM charges WHERE key = ?",
                               (charge.idempotency_key,)).fetchone()
            if row is None:
                row = (str(charge.amount), charge.currency,
                       "ch_" + hashlib.sha256(charge.idempotency_key.encode()).hexdigest()[:20])
                conn.execute("INSERT INTO charges VALUES (?, ?, ?, ?)", (charge.idempotency_key, *row))
        return GatewayResult(status="succeeded", reference=row[2], amount=Decimal(row[0]), currency=row[1])

    @hookimpl
    def kassa_gateway_lookup(self, gateway, settings, idempotency_key, reference):
        if gateway != self.CARD:
            return super().kassa_gateway_lookup(gateway, settings, idempotency_key, reference)
        with self._db() as conn:
            row = conn.execute("SELECT amount, currency, reference FROM charges WHERE key = ?",
                               (idempotency_key,)).fetchone()
        return None if row is None else GatewayResult(status="succeeded", reference=row[2], amount=Decimal(row[0]),
                                                       currency=row[1])

    def taken(self) -> dict[str, tuple[Decimal, str]]:
        """Money actually taken: idempotency key -> (amount, reference)."""
        with self._db() as conn:
            return {k: (Decimal(a), r) for k, a, _, r in conn.execute("SELECT key, amount, currency, reference "
                                                                       "FROM charges")}

    def charge_calls(self) -> int:
        with self._db() as conn:
            return conn.execute("SELECT count(*) FROM calls WHERE kind = 'charge'").fetchone()[0]


def wsgi():
    """The server's app (gunicorn ``bench.load.gateway:wsgi()``): Kassa with the shared gateway,
    configured from the environment the load test sets."""
    from kassa import create_app

    return create_app({"KASSA_EXTRA_PLUGINS": [(SharedGateway(os.environ["KASSA_LOAD_GATEWAY_DB"]), "fakegateway")],
                       "KASSA_REDIS_URL": None, "KASSA_JOBS_SYNC": False})
