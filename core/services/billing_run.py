"""The billing run: every subscription whose period has ended gets exactly one
invoice for that period.

Billing is in arrears: a period ``[start, end)`` is invoiced once ``end`` has
come. The run bills subscriptions in chunks: one transaction per chunk, the
chunk's subscription rows locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two workers never bill the same one), every invoice priced first and then
written by the batch issuer (:mod:`.issuing`). A subscription that cannot be
priced (a tax engine failing, say) is recorded and left out; if the chunk's
write fails, it is billed again one subscription at a time. Two runs racing for
one period cannot both invoice it: the invoice's ``billing_key`` is unique in
the database. With Redis, chunks are RQ jobs that any number of workers take.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..clock import today, utcnow_naive
from ..jobs import enqueue
from ..extensions import db
from ..models import BillingRun, BillingRunError, Organisation, Subscription, SubscriptionItem, UnitChange
from ..money import plain, round_money
from . import audit, issuing, settings
from .context import party
from .errors import Conflict
from .issuing import DraftLine
from .periods import day_fraction, months, period_end
from .uow import after_commit, atomic

log = logging.getLogger(__name__)
BILLABLE = ("active", "suspended", "cancelled", "trial")
CHUNK = 500
ONE_DAY = timedelta(days=1)


def start(actor, provider_id: int, as_of: date | None = None, *, background: bool = True,
          distribute: bool = False) -> BillingRun:
    """Queue a run (console button, schedule), or with ``background=False`` run it
    here (CLI, demo) — or, with ``distribute``, find what is due here and hand the
    chunks to the RQ workers. One run at a time per provider."""
    busy = db.session.scalar(select(BillingRun.id).where(BillingRun.provider_id == provider_id,
                                                         BillingRun.status.in_(("queued", "running"))))
    if busy:
        raise Conflict(f"Billing run {busy} is still in progress.")
    with atomic():
        run = BillingRun(provider_id=provider_id, as_of=as_of or today(), status="queued",
                         triggered_by_id=getattr(actor, "id", None), created_at=utcnow_naive())
        db.session.add(run)
        db.session.flush()
        if actor is not None:
            audit.record(actor, "billing.run", run, provider_id=provider_id, summary=f"as of {run.as_of}")
    run_id = run.id
    if background:
        enqueue("kassa.jobs.tasks.run_billing", run_id)
    else:
        execute(run_id, distribute=distribute)
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


def execute(run_id: int, distribute: bool = True) -> dict:
    """The run's job: find what is due, then bill it chunk by chunk — here, or on
    every RQ worker when Redis is configured and ``distribute`` is on."""
    run = db.session.get(BillingRun, run_id)
    ids = due_ids(run.provider_id, run.as_of)
    with atomic():
        run.status, run.total = "running", len(ids)
    chunks = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
    if not chunks:
        _finish_if_done(run_id)
    elif distribute and current_app.config.get("KASSA_REDIS_URL") and len(chunks) > 1:
        for chunk in chunks:
            enqueue("kassa.jobs.tasks.run_billing_chunk", run_id, chunk)
        return {"chunks": len(chunks)}
    else:
        for chunk in chunks:
            run_chunk(run_id, chunk)
    run = db.session.get(BillingRun, run_id, populate_existing=True)
    return {"invoices": run.invoices_created, "skipped": run.skipped, "failed": run.failed}


def run_chunk(run_id: int, sub_ids: list[int]) -> dict:
    """Bill one chunk and add its counts to the run (safe on any worker)."""
    as_of = db.session.scalar(select(BillingRun.as_of).where(BillingRun.id == run_id))
    try:
        outcome = bill(sub_ids, as_of)
    except IntegrityError:
        db.session.rollback()  # a concurrent run got to a period first: look again one by one
        outcome = Outcome()
        for sub_id in sub_ids:
            try:
                outcome.add(bill([sub_id], as_of))
            except IntegrityError:
                db.session.rollback()
                outcome.skipped += 1
    with atomic():
        db.session.execute(update(BillingRun).where(BillingRun.id == run_id).values(
            done=BillingRun.done + len(sub_ids), invoices_created=BillingRun.invoices_created + outcome.invoices,
            skipped=BillingRun.skipped + outcome.skipped, failed=BillingRun.failed + len(outcome.errors)))
        now = utcnow_naive()
        for sub_id, error in outcome.errors:
            db.session.add(BillingRunError(run_id=run_id, subscription_id=sub_id, error=error[:500], at=now))
    _finish_if_done(run_id)
    return {"invoices": outcome.invoices, "skipped": outcome.skipped, "failed": len(outcome.errors)}


def _finish_if_done(run_id: int) -> None:
    with atomic():
        db.session.execute(update(BillingRun).where(
            BillingRun.id == run_id, BillingRun.status == "running", BillingRun.done >= BillingRun.total
        ).values(status="finished", finished_at=utcnow_naive()))


@dataclass
class Outcome:
    invoices: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: "Outcome") -> None:
        self.invoices += other.invoices
        self.skipped += other.skipped
        self.errors += other.errors


def bill(sub_ids: list[int], as_of: date) -> Outcome:
    """Invoice every ended, unbilled period of these subscriptions in one transaction."""
    outcome = Outcome()
    with atomic():
        subs = list(db.session.scalars(
            select(Subscription).where(Subscription.id.in_(sub_ids)).order_by(Subscription.id)
            .with_for_update(skip_locked=True).options(
                selectinload(Subscription.items).selectinload(SubscriptionItem.service),
                selectinload(Subscription.org))))
        outcome.skipped += len(sub_ids) - len(subs)  # held by another worker right now
        if not subs:
            return outcome
        changes = _unit_changes([i.id for s in subs for i in s.items])
        seller = party(db.session.get(Organisation, subs[0].provider_id))
        priced, moves = [], []
        for sub in subs:
            try:
                drafts, move = _due(sub, as_of, changes, seller)
                batch = [issuing.prepare(d) for d in drafts]
            except Exception as exc:  # one subscription's failure must not stop the run
                log.exception("billing subscription %s failed", sub.id)
                outcome.errors.append((sub.id, f"{type(exc).__name__}: {exc}"))
                continue
            if not batch and move is None:
                outcome.skipped += 1
                continue
            priced += batch
            moves.append((sub, move))
        issuing.write(priced)
        for sub, (next_start, status) in ((s, m) for s, m in moves if m is not None):
            sub.next_period_start, sub.status = next_start, status
        outcome.invoices = len(priced)
        auto = {s.id for s in subs if s.auto_deduction}
        charge = [p.invoice_id for p in priced if p.draft.subscription_id in auto and p.total > p.paid]
        if charge:
            after_commit(lambda: enqueue("kassa.jobs.tasks.auto_deduct", charge))
    return outcome


def bill_subscription(sub_id: int, as_of: date) -> int:
    """Bill one subscription now; return how many invoices it got."""
    outcome = bill([sub_id], as_of)
    if outcome.errors:
        raise RuntimeError(outcome.errors[0][1])
    return outcome.invoices


def _unit_changes(item_ids: list[int]) -> dict[int, list[UnitChange]]:
    found: dict[int, list[UnitChange]] = {i: [] for i in item_ids}
    if item_ids:
        for change in db.session.scalars(select(UnitChange).where(UnitChange.item_id.in_(item_ids))
                                         .order_by(UnitChange.effective_on, UnitChange.id)):
            found[change.item_id].append(change)
    return found


def _due(sub: Subscription, as_of: date, changes, seller) -> tuple[list[issuing.Draft], tuple | None]:
    """The drafts of every ended, unbilled period, and where the subscription moves
    to (next period start, status), or None when nothing changes."""
    status, start = sub.status, sub.next_period_start
    if status == "trial":
        if not (sub.trial_ends_on and sub.trial_ends_on <= as_of):
            return [], None
        status = "active"
    drafts = []
    buyer = party(sub.org)
    while True:
        end = period_end(sub.anchor_date, sub.cycle, start)
        stop = end
        if sub.cancelled_on is not None:
            if sub.cancelled_on <= start:
                break
            stop = min(end, sub.cancelled_on)
        if stop > as_of:
            break
        drafts.append(issuing.Draft(seller=seller, buyer=buyer, lines=period_lines(sub, start, end, stop, changes),
                                    issue_date=stop, period_start=start, period_end=stop, subscription_id=sub.id,
                                    kind="recurring", billing_key=f"{sub.id}:{start.isoformat()}"))
        start = end
    if not drafts and status == sub.status:
        return [], None
    return drafts, (start, status)


def period_lines(sub: Subscription, start: date, end: date, stop: date, changes=None) -> list[DraftLine]:
    """The lines of one period: each item at its units on the first day, plus one
    prorated line per unit change within the period. ``stop`` < ``end`` when the
    subscription was cancelled within the period (everything prorated to it)."""
    precision = settings.config(sub.provider_id).precision
    if changes is None:
        changes = _unit_changes([i.id for i in sub.items])
    period = (start, end)
    factor = months(sub.cycle)
    label = {1: "month", 3: "quarter", 12: "year"}[factor]
    lines: list[DraftLine] = []
    for item in sub.items:
        later = [c for c in changes.get(item.id, ()) if c.effective_on > start]
        units_at_start = item.units - sum((c.new_units - c.old_units for c in later), Decimal(0))
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
        for change in later:
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
