"""The load test, bounded: a real server on 127.0.0.1, concurrent clients, then the
money checked (no latency goals here: those are benchmarks, `make bench`)."""
from __future__ import annotations

import logging
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kassa.testing.services import require_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the bench package lives beside tests/

from bench import load  # noqa: E402

REQUESTS, CONCURRENCY, INVOICES, TIMEOUT = 600, 8, 5_000, 240


@pytest.fixture(autouse=True)
def _log_levels_given_back():
    """The benchmark helpers turn Kassa's logs down; later tests (tests/test_ops.py) read them."""
    kassa = logging.getLogger("kassa")
    level = kassa.level
    yield
    kassa.setLevel(level)


def _assert_clean(result: load.Result) -> None:
    assert result.errors == [], result.table()
    assert result.problems == [], result.table()
    assert result.http_requests >= REQUESTS
    assert result.charges > 0 and result.charges == result.statuses["capture"].get(201)
    assert result.statuses["capture"].get(409, 0) > 0, "the repeated captures of one invoice were not refused"


def test_load():
    """On the run's database: SQLite by default; in the PostgreSQL run (KASSA_DATABASE_URL)
    a fresh database beside that one, dropped afterwards."""
    url = os.environ.get("KASSA_DATABASE_URL", "")
    if url.startswith("postgresql"):
        require_postgres()
        with load.fresh_postgres(url) as fresh:
            _assert_clean(load.run(REQUESTS, CONCURRENCY, INVOICES, fresh, timeout=TIMEOUT))
    else:
        _assert_clean(load.run(REQUESTS, CONCURRENCY, INVOICES, timeout=TIMEOUT))


def test_money_check_catches_a_lost_and_a_doubled_charge(tmp_path):
    """The invariants can fail: money the gateway took without a payment, and a
    second payment of one invoice, are both reported."""
    from bench.common import make_app, sqlite_url
    from kassa.extensions import db
    from kassa.models import Payment
    from kassa.services import invoice_queries

    gateway = load.SharedGateway(str(tmp_path / "gateway.db"))
    app = make_app(sqlite_url(), KASSA_EXTRA_PLUGINS=[(gateway, "fakegateway")])
    seeded = load.seed(app, gateway, 50, 2)
    out = load.Outcome()
    assert load.check_money(app, gateway, seeded, out, set()) == []

    with app.app_context():
        from kassa.services.users import user_for_token

        admin = user_for_token(seeded.token)
        invoice = invoice_queries.get(admin, seeded.capture_ids[0])
        from kassa.services import charges

        payment = charges.capture(admin, invoice)
        assert payment.status == "succeeded"
        out.captured[invoice.id].append({"id": payment.id})
        assert load.check_money(app, gateway, seeded, out, {invoice.id}) == []
        # a charge the gateway took that Kassa never recorded
        with gateway._db() as conn:
            conn.execute("INSERT INTO charges VALUES ('invoice:999:attempt:1', '5.00', 'INR', 'ch_lost')")
        # and a second succeeded payment of the same invoice
        db.session.add(Payment(provider_id=payment.provider_id, org_id=payment.org_id, invoice_id=invoice.id,
                               purpose="invoice", gateway="fakepay", amount=Decimal("1180"), currency="INR",
                               idempotency_key="invoice:dup", attempt=2, status="succeeded",
                               created_at=payment.created_at, updated_at=payment.updated_at))
        db.session.commit()
        db.session.remove()
    problems = "\n".join(load.check_money(app, gateway, seeded, out, {seeded.capture_ids[0]}))
    assert "money taken by the gateway but no succeeded payment: ['invoice:999:attempt:1']" in problems
    assert "succeeded payments the gateway never charged: ['invoice:dup']" in problems
    assert "invoices paid more than once" in problems
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
