"""The database connection dies while a payment is at the gateway: the money is
taken once, the attempt (written pending before the call) is settled by the
reconcile job, and nothing charges again."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from kassa.hookspecs import hookimpl
from kassa.models import Invoice, LedgerTransaction, Payment
from kassa.services import cards, charges, invoicing, plugin_settings, subscriptions
from kassa.services.errors import Conflict
from kassa.services.invoicing import DraftLine
from kassa.testing.billing import service, subscribe
from kassa.testing.fake_gateway import FakeGateway

from .conftest import side_connection

pytestmark = [pytest.mark.faults, pytest.mark.postgres]
D = Decimal


class DroppingGateway(FakeGateway):
    """Charges the card, then — before the answer is back in Kassa — the database
    connection of the session that is paying is terminated by the server."""

    def __init__(self, db):
        super().__init__()
        self.db, self.drop_for = db, set()
        self.dropped: list[int] = []

    @hookimpl
    def kassa_gateway_charge(self, gateway, settings, charge):
        result = super().kassa_gateway_charge(gateway, settings, charge)
        if result is not None and charge.idempotency_key in self.drop_for:
            self.drop_for.discard(charge.idempotency_key)
            backend = self.db.session.execute(text("SELECT pg_backend_pid()")).scalar()
            with side_connection(self.db) as conn:
                assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend}).scalar()
            self.dropped.append(backend)
        return result


@pytest.fixture
def gateway(pg, db, app, provider, admin, register_plugin):
    fake = DroppingGateway(db)
    register_plugin(fake, "fakegateway", enable_for=provider.id)
    plugin_settings.save_settings(admin, "fakegateway", {"api_key": "good-key", "webhook_secret": "whsec_fake"})
    app.extensions["kassa_plugins"].forget_cache()
    return fake


def _invoice(provider, customer, sub, amount):
    return invoicing.issue(provider=provider, buyer=customer, issue_date=date(2026, 2, 5), subscription_id=sub.id,
                           billing_key=f"{sub.id}:2026-01-05", lines=[
                               DraftLine(description="Service", quantity=D(1), unit_price=amount, amount=amount)])


def _payments_booked(db, invoice_id) -> int:
    return db.session.scalar(select(func.count(LedgerTransaction.id)).where(
        LedgerTransaction.kind == "payment", LedgerTransaction.invoice_id == invoice_id))


def test_connection_dropped_during_a_payment(db, clock, gateway, provider, admin, customer):
    cards.add_card(admin, customer, "tok_visa_4242")
    subs = [subscribe(admin, customer, [(service(admin, f"svc{i}"), 1)], name=f"C{i}") for i in range(2)]
    for sub in subs:
        subscriptions.set_auto_deduction(admin, sub, True)
    first, second = (_invoice(provider, customer, s, D(a)) for s, a in zip(subs, ("118.00", "59.00")))
    first_id, second_id = first.id, second.id
    first_key = f"invoice:{first_id}:attempt:1"
    gateway.drop_for.add(first_key)

    # the auto-deduction job: the first payment loses its connection after the card was charged,
    # the second invoice is charged all the same (before the fix the job died on the first)
    outcome = charges.auto_deduct([first_id, second_id])
    assert gateway.dropped, "the connection was not dropped"
    assert outcome == {"succeeded": 1, "declined": 0, "skipped": 0, "failed": 0, "pending": 1}
    invoice_charges = [c for c in gateway.charges if c[0].startswith("invoice:")]
    assert invoice_charges == [(first_key, D("118.00")), (f"invoice:{second_id}:attempt:1", D("59.00"))]

    db.session.rollback()
    pending = db.session.scalar(select(Payment).where(Payment.invoice_id == first_id))
    assert pending.status == "pending" and _payments_booked(db, first_id) == 0
    assert invoicing.amount_due(db.session.get(Invoice, first_id)) == D("118.00")

    # a second capture while the outcome is unknown charges nothing
    with pytest.raises(Conflict, match="already in progress"):
        charges.capture(admin, db.session.get(Invoice, first_id))
    # the reconcile job asks the gateway (by the attempt's idempotency key) and settles it
    assert charges.reconcile() == 0  # not before the attempt is 5 minutes old
    clock.advance(minutes=10)
    assert charges.reconcile() == 1
    assert charges.reconcile() == 0  # settled once
    db.session.expire_all()
    payment = db.session.get(Payment, pending.id)
    assert payment.status == "succeeded" and payment.reference == gateway.results[first_key].reference
    assert _payments_booked(db, first_id) == 1 and _payments_booked(db, second_id) == 1
    assert invoicing.status(db.session.get(Invoice, first_id)) == "paid"
    with pytest.raises(Conflict, match="already paid"):
        charges.capture(admin, db.session.get(Invoice, first_id))
    assert [c for c in gateway.charges if c[0] == first_key] == [(first_key, D("118.00"))]  # charged once
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == first_id)) == 1


def test_capture_itself_reports_the_lost_connection(db, clock, gateway, provider, admin, customer):
    """Outside the job, the caller sees the error; the attempt stays pending, never lost."""
    cards.add_card(admin, customer, "tok_visa_4242")
    sub = subscribe(admin, customer, [(service(admin), 1)])
    invoice_id = _invoice(provider, customer, sub, D("10.00")).id
    gateway.drop_for.add(f"invoice:{invoice_id}:attempt:1")
    with pytest.raises(OperationalError):
        charges.capture(admin, db.session.get(Invoice, invoice_id))
    db.session.rollback()
    assert db.session.scalar(select(Payment.status).where(Payment.invoice_id == invoice_id)) == "pending"
    clock.advance(minutes=6)
    assert charges.reconcile() == 1
    assert [c[0] for c in gateway.charges if c[0].startswith("invoice:")] == [f"invoice:{invoice_id}:attempt:1"]
