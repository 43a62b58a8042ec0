"""The money after the run: what must hold whatever the timing."""
from __future__ import annotations

from collections import Counter

from .client import Outcome
from .gateway import SharedGateway
from .seeding import Seeded


def check_money(app, gateway: SharedGateway, seeded: Seeded, out: Outcome, targets: set[int]) -> list[str]:
    """What must hold whatever the timing; each broken rule is one line."""
    from sqlalchemy import func, select

    from kassa.extensions import db
    from kassa.models import Invoice, LedgerTransaction, Order, Payment, WebhookEvent
    from kassa.services import invoicing
    from kassa.services.ledger import unbalanced_transactions

    problems = []
    taken = gateway.taken()
    with app.app_context():
        succeeded = {p.idempotency_key: p for p in db.session.scalars(
            select(Payment).where(Payment.provider_id == seeded.provider_id, Payment.status == "succeeded"))}
        lost = sorted(set(taken) - set(succeeded))
        if lost:
            problems.append(f"money taken by the gateway but no succeeded payment: {lost[:5]}")
        phantom = sorted(set(succeeded) - set(taken))
        if phantom:
            problems.append(f"succeeded payments the gateway never charged: {phantom[:5]}")
        for key in set(taken) & set(succeeded):
            if taken[key][0] != succeeded[key].amount:
                problems.append(f"{key}: gateway took {taken[key][0]}, payment says {succeeded[key].amount}")
        per_invoice = Counter(p.invoice_id for p in succeeded.values())
        doubled = [i for i, n in per_invoice.items() if n > 1]
        if doubled:
            problems.append(f"invoices paid more than once: {doubled[:5]}")
        for invoice_id in sorted(targets):
            invoice = db.session.get(Invoice, invoice_id)
            if per_invoice[invoice_id] != 1 or invoicing.amount_due(invoice) != 0:
                problems.append(f"capture target {invoice_id}: {per_invoice[invoice_id]} succeeded payments, "
                                f"{invoicing.amount_due(invoice)} still due")
        for invoice_id, bodies in out.captured.items():
            if len(bodies) != 1:
                problems.append(f"invoice {invoice_id} answered 201 to {len(bodies)} captures")
        booked = Counter(db.session.scalars(select(LedgerTransaction.invoice_id).where(
            LedgerTransaction.provider_id == seeded.provider_id, LedgerTransaction.kind == "payment")))
        for invoice_id, n in per_invoice.items():
            if booked[invoice_id] != n:
                problems.append(f"invoice {invoice_id}: {n} succeeded payment(s), {booked[invoice_id]} booked")
        stored = Counter(db.session.scalars(select(WebhookEvent.event_id).where(
            WebhookEvent.provider_id == seeded.provider_id)))
        if set(stored) != set(out.webhook_events) or any(n != 1 for n in stored.values()):
            problems.append(f"webhook events stored {len(stored)} (max copies {max(stored.values(), default=0)}), "
                            f"sent {len(out.webhook_events)} distinct")
        if out.applied != len(out.webhook_events) or out.replayed != sum(out.webhook_sends.values()) - out.applied:
            problems.append(f"webhooks applied {out.applied}, replayed {out.replayed}, for "
                            f"{len(out.webhook_events)} events sent {sum(out.webhook_sends.values())} times")
        orders = db.session.scalar(select(func.count(Order.id)).where(Order.provider_id == seeded.provider_id))
        if orders != out.orders:
            problems.append(f"{orders} orders stored, {out.orders} answered 201")
        unbalanced = unbalanced_transactions()
        if unbalanced:
            problems.append(f"unbalanced ledger transactions: {unbalanced[:5]}")
        db.session.remove()
    return problems
