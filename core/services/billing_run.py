"""The billing run: every subscription whose period has ended gets exactly one
invoice for that period.

Billing is in arrears: a period ``[start, end)`` is invoiced once ``end`` has
come. Each subscription is billed in its own transaction, so a failure costs
only that subscription (and its invoice number goes back to the sequence). Two
runs racing for one subscription cannot both invoice a period: the invoice's
``billing_key`` is unique in the database, and the loser's transaction rolls
back.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..clock import today, utcnow_naive
from ..extensions import db
from ..models import BillingRun, Organisation, Subscription, UnitChange
from ..money import plain, round_money
from . import audit, invoicing, settings
from .errors import Conflict
from .invoicing import DraftLine
from .periods import day_fraction, months, period_end
from .uow import atomic

log = logging.getLogger(__name__)
BILLABLE = ("active", "suspended", "cancelled", "trial")
PROGRESS_EVERY = 50
ONE_DAY = timedelta(days=1)


def start(actor, provider_id: int, as_of: date | None = None, *, background: bool = True) -> BillingRun:
    """Queue a run (console button, schedule), or with ``background=False`` run it
    here (CLI, demo). One run at a time per provider."""
    from ..jobs import enqueue

    busy = db.session.scalar(select(BillingRun.id).where(BillingRun.provider_id == provider_id,
                                                         BillingRun.status.in_(("queued", "running"))))
    if busy:
        raise Conflict(f"Billing run {busy} is still in progress.")
    with atomic():
        run = BillingRun(provider_id=provider_id, as_of=as_of or today(), status="queued",
                         triggered_by_id=getattr(actor, "id", None), created_at=utcnow_naive(), errors=[])
        db.session.add(run)
        db.session.flush()
        if actor is not None:
            audit.record(actor, "billing.run", run, provider_id=provider_id, summary=f"as of {run.as_of}")
    run_id = run.id
    if background:
        enqueue("kassa.jobs.tasks.run_billing", run_id)
    else:
        execute(run_id)
    return db.session.get(BillingRun, run_id, populate_existing=True)  # the job may have run already


def due_ids(provider_id: int, as_of: date) -> list[int]:
    """Subscriptions that may have a period ended by ``as_of`` (a superset: the
    exact end depends on each cycle and is checked per subscription)."""
    return list(db.session.scalars(
        select(Subscription.id).where(
            Subscription.provider_id == provider_id, Subscription.status.in_(BILLABLE),
            Subscription.next_period_start < as_of,
            or_(Subscription.cancelled_on.is_(None), Subscription.cancelled_on > Subscription.next_period_start),
        ).order_by(Subscription.id)))


def execute(run_id: int) -> dict:
    run = db.session.get(BillingRun, run_id)
    ids = due_ids(run.provider_id, run.as_of)
    with atomic():
        run.status, run.total = "running", len(ids)
    created = skipped = failed = 0
    errors: list[dict] = []
    for n, sub_id in enumerate(ids, start=1):
        try:
            made = _bill_with_retry(sub_id, run.as_of)
            created += made
            skipped += 0 if made else 1
        except Exception as exc:  # one subscription's failure must not stop the run
            db.session.rollback()
            failed += 1
            errors.append({"subscription_id": sub_id, "error": f"{type(exc).__name__}: {exc}"[:300]})
            log.exception("billing subscription %s failed", sub_id)
        if n % PROGRESS_EVERY == 0 or n == len(ids):
            with atomic():
                run = db.session.get(BillingRun, run_id)
                run.done, run.invoices_created, run.skipped, run.failed = n, created, skipped, failed
                run.errors = errors[-100:]
    with atomic():
        run = db.session.get(BillingRun, run_id)
        run.status = "finished"
        run.done, run.invoices_created, run.skipped, run.failed = len(ids), created, skipped, failed
        run.errors = errors[-100:]
        run.finished_at = utcnow_naive()
    return {"invoices": created, "skipped": skipped, "failed": failed}


def _bill_with_retry(sub_id: int, as_of: date, attempts: int = 3) -> int:
    """A unique-key clash means another worker got there first: roll back and look
    again (the subscription then shows what is left to bill, often nothing)."""
    made = 0
    for attempt in range(attempts):
        try:
            return made + bill_subscription(sub_id, as_of)
        except IntegrityError:
            db.session.rollback()
            if attempt == attempts - 1:
                raise
    return made


def bill_subscription(sub_id: int, as_of: date) -> int:
    """Invoice every ended, unbilled period of one subscription; return how many."""
    made = 0
    while True:
        with atomic():
            sub = db.session.scalar(select(Subscription).where(Subscription.id == sub_id).with_for_update())
            if sub.status == "trial":
                if sub.trial_ends_on and sub.trial_ends_on <= as_of:
                    sub.status = "active"
                else:
                    return made
            start = sub.next_period_start
            end = period_end(sub.anchor_date, sub.cycle, start)
            stop = end
            if sub.cancelled_on is not None:
                if sub.cancelled_on <= start:
                    return made
                stop = min(end, sub.cancelled_on)
            if stop > as_of:
                return made
            lines = period_lines(sub, start, end, stop)
            provider = db.session.get(Organisation, sub.provider_id)
            invoicing.issue(provider=provider, buyer=sub.org, lines=lines, issue_date=stop, period_start=start,
                            period_end=stop, subscription_id=sub.id, kind="recurring",
                            billing_key=f"{sub.id}:{start.isoformat()}")
            sub.next_period_start = end
            made += 1


def period_lines(sub: Subscription, start: date, end: date, stop: date) -> list[DraftLine]:
    """The lines of one period: each item at its units on the first day, plus one
    prorated line per unit change within the period. ``stop`` < ``end`` when the
    subscription was cancelled within the period (everything prorated to it)."""
    precision = settings.billing_settings(sub.provider_id).precision
    period = (start, end)
    factor = months(sub.cycle)
    label = {1: "month", 3: "quarter", 12: "year"}[factor]
    lines: list[DraftLine] = []
    for item in sub.items:
        changes = list(db.session.scalars(select(UnitChange).where(
            UnitChange.item_id == item.id, UnitChange.effective_on > start).order_by(UnitChange.effective_on,
                                                                                     UnitChange.id)))
        units_at_start = item.units - sum((c.new_units - c.old_units for c in changes), Decimal(0))
        period_price = item.unit_price * factor
        service = item.service
        if units_at_start:
            share = day_fraction(start, stop, period)
            lines.append(DraftLine(
                description=f"{service.name} ({label} {start:%d %b %Y} – {end - ONE_DAY:%d %b %Y})" +
                            (f", cancelled from {stop:%d %b %Y}" if stop < end else ""),
                quantity=units_at_start, unit_price=period_price,
                amount=round_money(units_at_start * period_price * share, precision), taxable=service.taxable,
                tax_code=service.tax_code, service_id=service.id, period_start=start, period_end=stop))
        for change in changes:
            if change.effective_on >= stop:
                continue
            delta = change.new_units - change.old_units
            share = day_fraction(change.effective_on, stop, period)
            lines.append(DraftLine(
                description=f"{service.name}: {plain(change.old_units, 0)} → {plain(change.new_units, 0)} "
                            f"units from {change.effective_on:%d %b %Y} (prorated {(stop - change.effective_on).days}"
                            f"/{(end - start).days} days)",
                quantity=delta, unit_price=period_price, amount=round_money(delta * period_price * share, precision),
                taxable=service.taxable, tax_code=service.tax_code, service_id=service.id,
                period_start=change.effective_on, period_end=stop, unit_change_id=change.id))
    if not lines:
        lines.append(DraftLine(description=f"{sub.name}: no billable units this period", quantity=Decimal(0),
                               unit_price=Decimal(0), amount=Decimal(0), taxable=False))
    return lines
