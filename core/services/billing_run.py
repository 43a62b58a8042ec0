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

A chunk is one transaction: its invoices, the run's counters and its failures
commit together, so a worker killed mid-chunk leaves nothing of it behind (the
database rolls the transaction back, invoice numbers included). A chunk counts
only the subscriptions it settles itself — invoiced, moved on, or failed — and
passes over any that are no longer due when it holds the lock (settled by an
earlier copy of the chunk), so running a chunk twice never counts twice. That
makes :func:`resume` simple and safe to repeat: whatever of the run is still due
and not failed, and not locked by a live chunk, is billed again.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..clock import today, utcnow_naive
from ..jobs import enqueue
from ..jobs import billing as run_jobs
from ..extensions import db
from ..models import BillingRun, BillingRunError, Organisation, Subscription, SubscriptionItem, UnitChange
from ..money import plain, round_money
from ..plugins import PluginFailure
from . import audit, issuing, settings
from .context import party
from .errors import Conflict, NotFound
from .issuing import DraftLine
from .periods import day_fraction, months, period_end
from .uow import after_commit, atomic

log = logging.getLogger(__name__)
BILLABLE = ("active", "suspended", "cancelled", "trial")
CHUNK = 500
ONE_DAY = timedelta(days=1)
STALL_SECONDS = 120  # a run younger than this is not resumed automatically


def _tunable(name: str, default: int) -> int:
    """A number from the app's config, else the environment (a worker has no other config)."""
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def chunk_size() -> int:
    return _tunable("KASSA_BILLING_CHUNK", CHUNK)


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
        _enqueue_start(run_id)
    else:
        execute(run_id, distribute=distribute)
    return db.session.get(BillingRun, run_id, populate_existing=True)  # the job may have run already


def _enqueue_start(run_id: int) -> None:
    job_id = run_jobs.job_id(run_id, "start") if run_jobs.redis_configured() else None
    enqueue("kassa.jobs.tasks.run_billing", run_id, job_id=job_id)


def _candidates(provider_id: int, as_of: date, *columns):
    """Subscriptions that may have a period ended by ``as_of`` (a superset: the
    exact end depends on each cycle, see :func:`is_due`)."""
    return select(*columns).where(
        Subscription.provider_id == provider_id, Subscription.status.in_(BILLABLE),
        Subscription.next_period_start < as_of,
        or_(Subscription.cancelled_on.is_(None), Subscription.cancelled_on > Subscription.next_period_start),
    ).order_by(Subscription.id)


def is_due(status: str, anchor: date, cycle: str, start: date, trial_ends_on: date | None,
           cancelled_on: date | None, as_of: date, ends=period_end) -> bool:
    """Whether :func:`_due` would bill or move this subscription as of ``as_of``."""
    if status == "trial":
        return bool(trial_ends_on and trial_ends_on <= as_of)
    if cancelled_on is not None and cancelled_on <= start:
        return False
    stop = ends(anchor, cycle, start)
    if cancelled_on is not None:
        stop = min(stop, cancelled_on)
    return stop <= as_of


def split_due(provider_id: int, as_of: date) -> tuple[list[int], int]:
    """The candidates that are due now (ids, in order) and how many candidates there were."""
    rows = db.session.execute(_candidates(
        provider_id, as_of, Subscription.id, Subscription.status, Subscription.anchor_date, Subscription.cycle,
        Subscription.next_period_start, Subscription.trial_ends_on, Subscription.cancelled_on)).all()
    ends = lru_cache(maxsize=4096)(period_end)  # most subscriptions share an anchor and a period
    due = [r.id for r in rows if is_due(r.status, r.anchor_date, r.cycle, r.next_period_start, r.trial_ends_on,
                                        r.cancelled_on, as_of, ends)]
    return due, len(rows)


def execute(run_id: int, distribute: bool = True) -> dict:
    """The run's job: find what is due, then bill it chunk by chunk — here, or on
    every RQ worker when Redis is configured and ``distribute`` is on. Candidates
    not due yet are counted done and skipped at once; the chunks hold the rest."""
    with atomic():
        claimed = db.session.execute(update(BillingRun).where(BillingRun.id == run_id, BillingRun.status == "queued")
                                     .values(status="running")).rowcount
        if not claimed:  # a second copy of the start job (a resume raced it): the run is under way
            log.info("billing run %s already started", run_id)
            return {"chunks": 0}
        run = db.session.get(BillingRun, run_id, populate_existing=True)
        due, candidates = split_due(run.provider_id, run.as_of)
        run.total, run.done = candidates, candidates - len(due)
        run.skipped = candidates - len(due)
    chunks = dispatch(run_id, due, here=not distribute)
    run = db.session.get(BillingRun, run_id, populate_existing=True)
    if chunks is None and run.status == "running":  # billed here: what another transaction held gets one more pass
        resume(run_id, here=True)
        run = db.session.get(BillingRun, run_id, populate_existing=True)
    if chunks is not None:
        return {"chunks": chunks}
    return {"invoices": run.invoices_created, "skipped": run.skipped, "failed": run.failed}


def dispatch(run_id: int, ids: list[int], *, here: bool) -> int | None:
    """Bill ``ids`` in chunks: as RQ jobs (returns how many) when Redis is configured,
    ``here`` is off and there is more than one chunk; else in this process (None)."""
    size = chunk_size()
    chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    if not here and run_jobs.redis_configured() and len(chunks) > 1:
        from rq import Retry

        for chunk in chunks:
            enqueue("kassa.jobs.tasks.run_billing_chunk", run_id, chunk, job_id=run_jobs.job_id(run_id, chunk[0]),
                    retry=Retry(max=2, interval=[5, 30]))
        return len(chunks)
    for chunk in chunks:
        run_chunk(run_id, chunk)
    _finish_if_done(run_id)
    return None


def run_chunk(run_id: int, sub_ids: list[int]) -> dict:
    """Bill one chunk and add its counts to the run, in one transaction (safe on
    any worker, and safe to run again: see the module's docstring)."""
    as_of = db.session.scalar(select(BillingRun.as_of).where(BillingRun.id == run_id))
    try:
        with atomic():
            outcome = bill(sub_ids, as_of, run_id=run_id)
            _count(run_id, outcome)
    except IntegrityError:  # a concurrent biller got to a period first: look again one by one
        outcome = Outcome()
        for sub_id in sub_ids:
            try:
                with atomic():
                    one = bill([sub_id], as_of, run_id=run_id)
                    _count(run_id, one)
                outcome.add(one)
            except IntegrityError:
                outcome.skipped += 1  # invoiced by someone else meanwhile: not this run's to count
    _finish_if_done(run_id)
    return {"invoices": outcome.invoices, "settled": outcome.settled, "failed": len(outcome.errors)}


def _count(run_id: int, outcome: "Outcome") -> None:
    db.session.execute(update(BillingRun).where(BillingRun.id == run_id).values(
        done=BillingRun.done + outcome.settled, invoices_created=BillingRun.invoices_created + outcome.invoices,
        failed=BillingRun.failed + len(outcome.errors)))
    now = utcnow_naive()
    for sub_id, error in outcome.errors:
        db.session.add(BillingRunError(run_id=run_id, subscription_id=sub_id, error=error[:500], at=now))


def _finish_if_done(run_id: int) -> None:
    with atomic():
        db.session.execute(update(BillingRun).where(
            BillingRun.id == run_id, BillingRun.status == "running", BillingRun.done >= BillingRun.total
        ).values(status="finished", finished_at=utcnow_naive()))


@dataclass
class Resumed:
    run_id: int
    status: str
    remaining: int = 0  # still due, not failed
    busy: int = 0  # of which a live chunk holds the row right now
    dropped: int = 0  # queued jobs taken back
    chunks: int | None = None  # jobs enqueued (None: billed here)


def _failed_ids(run_id: int) -> set[int]:
    return set(db.session.scalars(select(BillingRunError.subscription_id).where(BillingRunError.run_id == run_id)))


def _lockable(ids: list[int]) -> set[int]:
    """Of ``ids``, those no other transaction holds (all of them on SQLite, where
    a writer holds the whole database)."""
    free: set[int] = set()
    for i in range(0, len(ids), 5000):
        free.update(db.session.scalars(select(Subscription.id).where(Subscription.id.in_(ids[i:i + 5000]))
                                       .with_for_update(skip_locked=True)))
    return free


def resume(run_id: int, *, here: bool = False) -> Resumed:
    """Bill again what a run has not finished: what is still due and has not failed
    in it, except rows a live chunk holds (it counts them itself). Queued jobs of
    the run are taken back first, so the new plan replaces them. Safe to repeat."""
    run = db.session.get(BillingRun, run_id)
    if run is None:
        raise NotFound(f"No billing run {run_id}.")
    if run.status == "finished":
        raise Conflict(f"Billing run {run_id} has finished; there is nothing to resume.")
    distributed = run_jobs.redis_configured() and not here
    if run.status == "queued":  # its start job never ran (lost with Redis' data, or still waiting)
        if distributed:
            dropped = run_jobs.drop_waiting(run_id)
            _enqueue_start(run_id)
            return Resumed(run_id, "queued", dropped=dropped, chunks=0)
        execute(run_id, distribute=False)
        return Resumed(run_id, db.session.get(BillingRun, run_id, populate_existing=True).status)
    dropped = run_jobs.drop_waiting(run_id) if distributed else 0
    with atomic():
        # the run's row first: a chunk cannot commit its counts while the plan is made
        run = db.session.scalar(select(BillingRun).where(BillingRun.id == run_id).with_for_update()
                                .execution_options(populate_existing=True))
        failed = _failed_ids(run_id)
        due = [i for i in split_due(run.provider_id, run.as_of)[0] if i not in failed]
        free = _lockable(due)
        todo = [i for i in due if i in free]
        run.total = run.done + len(due)
    log.info("billing run %s resumed: %s due, %s held by live chunks", run_id, len(due), len(due) - len(todo))
    _finish_if_done(run_id)
    chunks = dispatch(run_id, todo, here=not distributed) if todo else 0
    status = db.session.scalar(select(BillingRun.status).where(BillingRun.id == run_id))
    return Resumed(run_id, status, remaining=len(due), busy=len(due) - len(todo), dropped=dropped, chunks=chunks)


def stalled(run: BillingRun) -> bool:
    """A run in progress with nothing of it left on Redis to move it on: its start
    job or chunks were lost (Redis lost its data) or their worker died."""
    grace = timedelta(seconds=_tunable("KASSA_BILLING_STALL_SECONDS", STALL_SECONDS))
    if run.status not in ("queued", "running") or run.created_at > utcnow_naive() - grace:
        return False
    if not run_jobs.redis_configured():
        return True  # in-process jobs die with the process that ran them
    jobs = run_jobs.run_jobs(run.id)
    return not (jobs["queued"] or jobs["scheduled"])  # a started job may be a dead worker's: resume anyway


def resume_stalled() -> list[int]:
    """Resume every stalled run (the worker's maintenance and the hourly schedule call
    this; with Redis one caller at a time, so two workers starting together plan once)."""
    resumed = []
    if run_jobs.redis_configured() and not run_jobs.claim("resume-stalled", seconds=30):
        return resumed
    for run in db.session.scalars(select(BillingRun).where(BillingRun.status.in_(("queued", "running")))
                                  .order_by(BillingRun.id)).all():
        if stalled(run):
            try:
                resume(run.id)
                resumed.append(run.id)
            except Conflict:
                continue
    return resumed


def progress(run_id: int) -> dict:
    """The run's progress and result (CLI, console, API), with its jobs on Redis when reachable."""
    run = db.session.get(BillingRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"No billing run {run_id}.")
    info = {"id": run.id, "provider_id": run.provider_id, "as_of": run.as_of.isoformat(), "status": run.status,
            "total": run.total, "done": run.done, "invoices_created": run.invoices_created, "skipped": run.skipped,
            "failed": run.failed, "errors": [{"subscription_id": e.subscription_id, "error": e.error}
                                             for e in run.errors], "jobs": None}
    if run_jobs.redis_configured() and run.status != "finished":
        try:
            info["jobs"] = {state: len(ids) for state, ids in run_jobs.run_jobs(run_id).items()}
        except Exception as exc:  # Redis down: the database still tells the progress
            log.warning("billing run %s: jobs unknown: %s", run_id, exc)
    return info


@dataclass
class Outcome:
    invoices: int = 0
    skipped: int = 0  # not due (any more), or held by another transaction
    settled: int = 0  # invoiced, moved on (a trial ending) or failed
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: "Outcome") -> None:
        self.invoices += other.invoices
        self.skipped += other.skipped
        self.settled += other.settled
        self.errors += other.errors


def bill(sub_ids: list[int], as_of: date, run_id: int | None = None) -> Outcome:
    """Invoice every ended, unbilled period of these subscriptions in one transaction.
    In a run, subscriptions that already failed in it are passed over."""
    outcome = Outcome()
    with atomic():
        subs = list(db.session.scalars(
            select(Subscription).where(Subscription.id.in_(sub_ids)).order_by(Subscription.id)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True).options(
                selectinload(Subscription.items).selectinload(SubscriptionItem.service),
                selectinload(Subscription.org))))
        outcome.skipped += len(sub_ids) - len(subs)  # held by another worker right now
        if run_id is not None and subs:  # read after the lock: a failure is committed with its chunk
            failed = set(db.session.scalars(select(BillingRunError.subscription_id).where(
                BillingRunError.run_id == run_id, BillingRunError.subscription_id.in_([s.id for s in subs]))))
            outcome.skipped += len(failed)
            subs = [s for s in subs if s.id not in failed]
        if not subs:
            return outcome
        changes = _unit_changes([i.id for s in subs for i in s.items])
        seller = party(db.session.get(Organisation, subs[0].provider_id))
        priced, moves = [], []
        for sub in subs:
            try:
                drafts, move = _due(sub, as_of, changes, seller)
                batch = [issuing.prepare(d) for d in drafts]
            except PluginFailure as exc:  # already logged with its traceback by the plugin host
                log.warning("billing subscription %s failed: %s", sub.id, exc)
                outcome.errors.append((sub.id, str(exc)))
                outcome.settled += 1
                continue
            except Exception as exc:  # one subscription's failure must not stop the run
                log.exception("billing subscription %s failed", sub.id)
                outcome.errors.append((sub.id, f"{type(exc).__name__}: {exc}"))
                outcome.settled += 1
                continue
            if not batch and move is None:
                outcome.skipped += 1
                continue
            outcome.settled += 1
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
