"""Dunning: grace → warning → suspension → delete notice → termination (seed 000).

The phases are whatever the enabled plugins declare (``kassa_dunning_phases``),
run in ``order``; each phase is switched on or off, and given its number of
days, by the settings of the plugin that declares it (``<key>_enabled``,
``<key>_days``; defaults from the :class:`DunningPhase`). The effects a phase
declares — banner, suspension, e-mails, termination on exit — are applied here.

One pure function, :func:`timeline`, says what happens on which day from the
due date of the oldest unpaid invoice; the daily sweep, a payment's
re-evaluation and the console's preview all read it.

Races (Kill Bill #472, #687, #2297):

* every decision is taken under a lock on the organisation's row (``FOR NO KEY
  UPDATE``, ``SKIP LOCKED`` in the sweep) from the ledger as it is then, never
  from the sweep's candidate list, so a payment committed meanwhile is seen;
* a payment re-evaluates the organisation after it commits, waiting for any
  sweep holding the lock, so a decision taken a moment before the payment is
  undone at once;
* the timeline is re-anchored on the oldest *remaining* unpaid invoice at every
  evaluation, so a partial payment moves the next phase date and no phase is
  passed over;
* a phase entered late (the sweep did not run, or dunning was switched on over
  old debts) still lasts its full days from the day it was entered, so nobody is
  terminated without the full delete notice;
* transitions are idempotent (the state is compared first) and each e-mail has
  a unique key per organisation, phase and day, so running the sweep twice, or
  on two workers at once, changes nothing the second time.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, insert, select

from ..clock import today as clock_today
from ..clock import utcnow_naive
from ..contracts import DunningCase, DunningPhase
from ..extensions import db
from ..money import plain
from ..models import (Account, AuditEvent, DunningEvent, DunningState, Invoice, LedgerEntry, LedgerTransaction,
                      Organisation, OutboxMessage, PaymentMethod, Subscription, User)
from ..plugins import host
from . import plugin_settings, settings
from .cache import memo
from .context import party, provider_context
from .errors import ServiceError
from .uow import after_commit, atomic

log = logging.getLogger(__name__)

RETRY_EVERY_DAYS = 3  # the card on file is retried every this many days while in dunning
LATE_TOLERANCE_DAYS = 1  # entered this late (the day after the due date), a phase keeps its schedule
CHUNK = 500  # organisations locked and decided in one transaction by the sweep
ACTIVE, TERMINATED = "active", "terminated"
TERMINATED_NAME = "Terminated"


# ------------------------------------------------------------------ the plan and the timeline (pure)


@dataclass(frozen=True)
class PhasePlan:
    """A declared phase with this provider's settings applied."""

    key: str
    name: str
    order: int
    plugin: str
    enabled: bool
    days: int
    banner: bool = False
    suspend: bool = False
    email_template: str = ""
    email_every_days: int = 0
    terminate_on_exit: bool = False
    description: str = ""

    @classmethod
    def of(cls, phase: DunningPhase, plugin: str, values: Mapping) -> "PhasePlan":
        enabled = values.get(f"{phase.key}_enabled", phase.default_enabled)
        days = values.get(f"{phase.key}_days", phase.default_days)
        try:
            days = max(1, int(days))
        except (TypeError, ValueError):
            days = max(1, phase.default_days)
        return cls(key=phase.key, name=phase.name, order=phase.order, plugin=plugin,
                   enabled=enabled if isinstance(enabled, bool) else str(enabled).lower() in ("1", "true", "y", "on"),
                   days=days, banner=phase.banner, suspend=phase.suspend, email_template=phase.email_template,
                   email_every_days=max(0, phase.email_every_days), terminate_on_exit=phase.terminate_on_exit,
                   description=phase.description)


@dataclass(frozen=True)
class Step:
    """A phase on the calendar: from ``starts_on`` until the day before ``ends_on``."""

    plan: PhasePlan
    starts_on: date
    ends_on: date  # exclusive: the next phase (or termination) begins this day
    open_ended: bool = False  # the last phase, without termination: it lasts until paid

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def name(self) -> str:
        return self.plan.name

    def emails(self, until: date | None = None) -> tuple[date, ...]:
        """The days an e-mail is due: the first day, then every ``email_every_days``."""
        if not self.plan.email_template:
            return ()
        end = self.ends_on if not self.open_ended else max(self.ends_on, until or self.ends_on)
        if not self.plan.email_every_days:
            return (self.starts_on,)
        out, day = [], self.starts_on
        while day < end:
            out.append(day)
            day += timedelta(days=self.plan.email_every_days)
        return tuple(out)

    def email_slot(self, day: date) -> date | None:
        """The latest e-mail day on or before ``day`` (``None`` before the first)."""
        if not self.plan.email_template or day < self.starts_on:
            return None
        if not self.plan.email_every_days:
            return self.starts_on
        if day >= self.ends_on and not self.open_ended:
            day = self.ends_on - timedelta(days=1)
        every = self.plan.email_every_days
        return self.starts_on + timedelta(days=((day - self.starts_on).days // every) * every)


@dataclass(frozen=True)
class Timeline:
    """What happens on which day if nothing is paid."""

    anchor: date  # due date of the oldest unpaid invoice
    steps: tuple[Step, ...]
    termination_on: date | None  # subscriptions cancelled on this day (None: never)
    skipped: tuple[PhasePlan, ...] = ()  # switched off
    unreached: tuple[PhasePlan, ...] = ()  # enabled, but after the phase that terminates
    retry_every_days: int = RETRY_EVERY_DAYS

    def index(self, key: str) -> int | None:
        return next((i for i, s in enumerate(self.steps) if s.key == key), None)

    def terminated_by(self, day: date) -> bool:
        return self.termination_on is not None and day >= self.termination_on

    def step_on(self, day: date) -> Step | None:
        """The phase on ``day``: none before the due date has passed, nor once terminated."""
        if not self.steps or day <= self.anchor or self.terminated_by(day):
            return None
        for step in self.steps:
            if step.starts_on <= day < step.ends_on:
                return step
        return self.steps[-1] if day >= self.steps[-1].ends_on else self.steps[0]

    def next_change(self, day: date) -> tuple[str, date] | None:
        """The next thing to happen after ``day``: the next phase, or termination."""
        for step in self.steps:
            if step.starts_on > day:
                return step.name, step.starts_on
        if self.termination_on is not None and self.termination_on > day:
            return TERMINATED_NAME, self.termination_on
        return None

    def retries(self, until: date | None = None) -> tuple[date, ...]:
        """Days the card on file is charged again, while in dunning."""
        if not self.steps or not self.retry_every_days:
            return ()
        end = self.termination_on or max(self.steps[-1].ends_on, until or self.steps[-1].ends_on)
        out, day = [], self.anchor + timedelta(days=self.retry_every_days)
        while day < end:
            out.append(day)
            day += timedelta(days=self.retry_every_days)
        return tuple(out)

    def retry_slot(self, day: date) -> date | None:
        if not self.steps or not self.retry_every_days or self.terminated_by(day):
            return None
        k = (day - self.anchor).days // self.retry_every_days
        return self.anchor + timedelta(days=k * self.retry_every_days) if k >= 1 else None

    def calendar(self) -> list[tuple[date, str, str]]:
        """Everything that happens, in order: (day, kind, text) for the preview."""
        out: list[tuple[date, str, str]] = []
        for step in self.steps:
            effects = [e for e, on in (("banner on every page", step.plan.banner),
                                       ("console limited to the payment prompt, subscriptions suspended",
                                        step.plan.suspend)) if on]
            out.append((step.starts_on, "phase", f"{step.name} begins ({step.plan.days} days"
                        + ("" if not effects else "; " + ", ".join(effects)) + ")"))
            for sent in step.emails():
                out.append((sent, "email", f"{step.name} e-mail ({step.plan.email_template})"))
        for day in self.retries():
            out.append((day, "retry", "Card on file charged again (if one is active)"))
        if self.termination_on is not None:
            out.append((self.termination_on, "terminate",
                        "Every subscription cancelled, its resources terminated"))
        order = {"phase": 0, "email": 1, "retry": 2, "terminate": 3}
        return sorted(out, key=lambda e: (e[0], order[e[1]]))


def timeline(anchor: date, plans: Iterable[PhasePlan], *, current: tuple[str, date] | None = None,
             retry_every_days: int = RETRY_EVERY_DAYS) -> Timeline:
    """The dunning calendar from ``anchor`` (due date of the oldest unpaid invoice):
    the enabled phases in ``order``, each ``days`` long, the first beginning on the
    due date; a ``terminate_on_exit`` phase ends it with termination. ``current``
    (phase key, day entered) is where the organisation is: entered later than
    scheduled, that phase lasts its full days from then and the rest follow."""
    ordered = sorted(plans, key=lambda p: (p.order, p.key))
    enabled = [p for p in ordered if p.enabled]
    steps: list[Step] = []
    start, termination, unreached = anchor, None, ()
    for i, plan in enumerate(enabled):
        if current is not None and current[0] == plan.key and current[1] > start:
            if steps:
                steps[-1] = replace(steps[-1], ends_on=current[1])
            start = current[1]
        end = start + timedelta(days=plan.days)
        if plan.terminate_on_exit:
            steps.append(Step(plan, start, end))
            termination, unreached = end, tuple(enabled[i + 1:])
            break
        steps.append(Step(plan, start, end, open_ended=i == len(enabled) - 1))
        start = end
    return Timeline(anchor=anchor, steps=tuple(steps), termination_on=termination,
                    skipped=tuple(p for p in ordered if not p.enabled), unreached=unreached,
                    retry_every_days=retry_every_days)


# ------------------------------------------------------------------ settings


def phase_plans(provider_id: int) -> list[PhasePlan]:
    """The phases the provider's enabled plugins declare, with its settings, in order.
    Memoised for the request or job (saving settings or toggling a plugin forgets it)."""

    def load():
        h = host()
        plans = []
        for plugin_name, phases in h.call_each("kassa_dunning_phases", h.enabled_names(provider_id)):
            if not phases:
                continue
            values = plugin_settings.settings_for(provider_id, plugin_name)
            plans.extend(PhasePlan.of(p, plugin_name, values) for p in phases)
        return sorted(plans, key=lambda p: (p.order, p.key))

    return memo(("context", "dunning", provider_id), load)


def settings_plugins(provider_id: int) -> list[str]:
    """The enabled plugins that declare phases and have a settings form (for the console's link)."""
    names = sorted({p.plugin for p in phase_plans(provider_id)})
    return [n for n in names if plugin_settings.form_class(n) is not None]


# ------------------------------------------------------------------ reading the ledger


@dataclass(frozen=True)
class Unpaid:
    invoice_id: int
    org_id: int
    number: str
    due_date: date
    due: Decimal
    currency: str


def total(unpaid: Sequence[Unpaid]) -> tuple[Decimal, str]:
    """What is owed, in the currency of the oldest invoice (an organisation is billed in one)."""
    if not unpaid:
        return Decimal(0), ""
    currency = unpaid[0].currency
    return sum((u.due for u in unpaid if u.currency == currency), Decimal(0)), currency


def overdue_org_ids(provider_id: int, day: date) -> list[int]:
    """One set-based query: organisations of the provider with an invoice past its due
    date, not cancelled, with something still owed (receivable entries of the invoice)."""
    query = (select(Invoice.org_id)
             .join(LedgerTransaction, LedgerTransaction.invoice_id == Invoice.id)
             .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
             .join(Account, Account.id == LedgerEntry.account_id)
             .where(Invoice.provider_id == provider_id, Invoice.cancelled_at.is_(None), Invoice.due_date < day,
                    Account.code == "receivable")
             .group_by(Invoice.id, Invoice.org_id)
             .having(func.sum(LedgerEntry.amount) > 0))
    return sorted(set(db.session.scalars(query)))


def unpaid_invoices(org_ids: Sequence[int], before: date | None = None) -> dict[int, list[Unpaid]]:
    """Unpaid invoices of the organisations, oldest due first (only those due before
    ``before`` when given), from the ledger as it is now."""
    if not org_ids:
        return {}
    due = func.sum(LedgerEntry.amount)
    query = (select(Invoice.id, Invoice.org_id, Invoice.number, Invoice.due_date, Invoice.currency, due.label("due"))
             .join(LedgerTransaction, LedgerTransaction.invoice_id == Invoice.id)
             .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
             .join(Account, Account.id == LedgerEntry.account_id)
             .where(Invoice.org_id.in_(list(org_ids)), Invoice.cancelled_at.is_(None), Account.code == "receivable")
             .group_by(Invoice.id, Invoice.org_id, Invoice.number, Invoice.due_date, Invoice.currency)
             .having(due > 0).order_by(Invoice.due_date, Invoice.id))
    if before is not None:
        query = query.where(Invoice.due_date < before)
    out: dict[int, list[Unpaid]] = {}
    for row in db.session.execute(query):
        out.setdefault(row.org_id, []).append(Unpaid(row.id, row.org_id, row.number, row.due_date, row.due,
                                                     row.currency))
    return out


def has_overdue(org_id: int, day: date | None = None) -> bool:
    return bool(unpaid_invoices([org_id], before=day or clock_today()))


# ------------------------------------------------------------------ deciding, under the lock


class _Engine:
    """The engine as the actor of the changes it makes (audit rows without a user)."""

    id = None
    role = "system"
    privileges = ()
    is_authenticated = False

    def __init__(self, provider: Organisation):
        self.org, self.org_id = provider, provider.id


@dataclass
class _Run:
    provider_id: int
    day: date
    plans: list[PhasePlan]
    currency: str
    actor: _Engine
    precision: int = 2
    counts: dict = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow_naive)  # the clock's now, naive UTC, for the rows written
    # read once per chunk, under the lock (see _preload)
    active_subs: dict = field(default_factory=dict)  # org id -> active subscriptions
    emailed: dict = field(default_factory=dict)  # (org id, phase) -> day of the last e-mail
    contacts: dict = field(default_factory=dict)  # org id -> primary contact's address
    outbox: list = field(default_factory=list)  # (message row, its history event) queued in this chunk
    events: list = field(default_factory=list)  # history rows of this chunk
    audits: list = field(default_factory=list)  # audit-log rows of this chunk

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def _event(run: _Run, org_id: int, kind: str, phase: str, summary: str, details: dict | None = None,
           key: str | None = None) -> dict:
    """A line of the organisation's history, written with the chunk (see _write_rows)."""
    row = dict(provider_id=run.provider_id, org_id=org_id, kind=kind, phase=phase, day=run.day,
               summary=summary[:500], details=details or {}, key=key, at=run.now)
    run.events.append(row)
    return row


def _audit(run: _Run, org: Organisation, action: str, summary: str) -> dict:
    """An audit-log row, as audit.record writes it (the engine is the actor: no user)."""
    row = dict(provider_id=run.provider_id, org_id=org.id, actor_id=None, action=action,
               object_type=type(org).__name__, object_id=str(org.id), summary=summary[:500], details={},
               at=run.now)
    run.audits.append(row)
    return row


def _case(org: Organisation, state: DunningState, unpaid: list[Unpaid]) -> DunningCase:
    return DunningCase(org=party(org), phase=state.phase,
                       overdue_amount=total(unpaid)[0] if unpaid else state.overdue_amount,
                       currency=state.currency, oldest_due_date=unpaid[0].due_date if unpaid else state.anchor_date,
                       entered_on=state.entered_on, invoice_numbers=tuple(u.number for u in unpaid))


def _fire_enter(provider_id: int, phase: str, case: DunningCase) -> None:
    host().hooks(provider_id).kassa_dunning_enter_phase(phase=phase, case=case, ctx=provider_context(provider_id))


def _fire_resolved(provider_id: int, case: DunningCase, reason: str) -> None:
    host().hooks(provider_id).kassa_dunning_resolved(case=case, reason=reason, ctx=provider_context(provider_id))


def _money(run: "_Run", amount: Decimal, currency: str) -> str:
    return f"{plain(amount, run.precision)} {currency}"


def _decide(run: _Run, org: Organisation, unpaid: list[Unpaid], state: DunningState | None) -> None:
    """Bring one locked organisation to where the timeline says it is today."""
    day = run.day
    if not unpaid:
        if state is not None:
            _close(run, org, state, paid=True)
        return
    anchor = unpaid[0].due_date
    amount, currency = total(unpaid)
    if state is not None and state.status == TERMINATED:
        if state.overdue_amount != amount:
            state.overdue_amount, state.updated_at = amount, run.now
        return
    current = (state.phase, state.entered_on) if state is not None else None
    tl = timeline(anchor, run.plans, current=current)
    if not tl.steps:
        if state is not None:
            _close(run, org, state, paid=False)
        return
    if state is not None and tl.terminated_by(day) and state.phase == tl.steps[-1].key:
        state.overdue_amount, state.anchor_date = amount, anchor
        _terminate(run, org, state, unpaid)
        return
    target = tl.steps[-1] if tl.terminated_by(day) else tl.step_on(day)
    if target is None:
        return
    target_index = tl.index(target.key)
    current_index = tl.index(state.phase) if state is not None else None
    back = current_index is not None and target_index < current_index
    if state is None:
        walk = list(tl.steps[:target_index + 1])
        state = DunningState(org_id=org.id, provider_id=run.provider_id, status=ACTIVE, phase="", phase_name="",
                             started_on=day, entered_on=day, anchor_date=anchor, banner=False, restricted=False,
                             suspended_subscription_ids=[], overdue_amount=amount, currency=currency,
                             next_step="", updated_at=run.now)
        db.session.add(state)
    elif current_index is None or back:
        walk = [target]
    elif target_index == current_index:
        walk = []
    else:
        walk = list(tl.steps[current_index + 1:target_index + 1])
    for step in walk:
        late = (day - step.starts_on).days > LATE_TOLERANCE_DAYS
        previous = state.phase
        state.phase, state.phase_name = step.key, step.name
        state.entered_on = day if (late and not back) else step.starts_on
        case = _case(org, state, unpaid)
        verb = "Back to" if back else "Entered"
        summary = (f"{verb} {step.name}: {_money(run, amount, currency)} overdue since {anchor}"
                   + (f" (scheduled {step.starts_on}; lasts {step.plan.days} days from today)" if late and not back
                      else ""))
        _event(run, org.id, "back" if back else "enter", step.key, summary,
               {"from": previous, "entered_on": state.entered_on.isoformat(), "scheduled": step.starts_on.isoformat(),
                "anchor": anchor.isoformat(), "amount": str(amount)})
        _audit(run, org, "dunning.enter", summary=summary)
        run.count("entered")
        after_commit(lambda p=run.provider_id, k=step.key, c=case: _fire_enter(p, k, c))
    tl = timeline(anchor, run.plans, current=(state.phase, state.entered_on))
    step = tl.steps[tl.index(state.phase)]
    _apply(run, org, state, step, unpaid, tl)


def _apply(run: _Run, org: Organisation, state: DunningState, step: Step, unpaid: list[Unpaid],
           tl: Timeline) -> None:
    """The effects of the phase the organisation is in: banner, suspension, e-mails."""
    day = run.day
    amount, currency = total(unpaid)
    upcoming = tl.next_change(day)
    next_step, next_on = upcoming if upcoming else ("", None)
    values = {"banner": step.plan.banner, "restricted": step.plan.suspend, "overdue_amount": amount,
              "currency": currency, "anchor_date": unpaid[0].due_date, "next_step": next_step, "next_on": next_on}
    changed = {k: v for k, v in values.items() if getattr(state, k) != v}
    if changed:  # an unchanged organisation is not written at all
        for key, value in changed.items():
            setattr(state, key, value)
        state.updated_at = run.now
    if step.plan.suspend:
        _suspend(run, org, state)
    elif state.suspended_subscription_ids:
        _restore(run, org, state)
    slot = step.email_slot(day)
    if slot is not None:
        _email(run, org, state, step, slot, unpaid, upcoming)


def _suspend(run: _Run, org: Organisation, state: DunningState) -> None:
    from . import subscriptions

    subs = [s for s in run.active_subs.get(org.id, ()) if s.status == "active"]
    if not subs:
        return
    for sub in subs:
        subscriptions.set_status(run.actor, sub, "suspend")
    state.suspended_subscription_ids = sorted(set(state.suspended_subscription_ids or ()) | {s.id for s in subs})
    names = ", ".join(s.name for s in subs)
    _event(run, org.id, "suspend", state.phase, f"Suspended {len(subs)} subscription(s): {names}",
           {"subscriptions": [s.id for s in subs]})
    _audit(run, org, "dunning.suspend", summary=f"{org.name}: {len(subs)} subscription(s) suspended")
    run.count("suspended", len(subs))


def _restore(run: _Run, org: Organisation, state: DunningState) -> None:
    """Resume what dunning suspended (and only that, and only if still suspended)."""
    from . import subscriptions

    ids = list(state.suspended_subscription_ids or ())
    state.suspended_subscription_ids = []
    subs = db.session.scalars(select(Subscription).where(Subscription.id.in_(ids),
                                                         Subscription.status == "suspended")
                              .order_by(Subscription.id)).all() if ids else []
    for sub in subs:
        subscriptions.set_status(run.actor, sub, "resume")
    if subs:
        _event(run, org.id, "restore", state.phase, f"Resumed {len(subs)} subscription(s) dunning had suspended",
               {"subscriptions": [s.id for s in subs]})
        _audit(run, org, "dunning.restore", summary=f"{org.name}: {len(subs)} subscription(s) resumed")
        run.count("restored", len(subs))


def _email(run: _Run, org: Organisation, state: DunningState, step: Step, slot: date, unpaid: list[Unpaid],
           upcoming: tuple[str, date] | None) -> None:
    """Send the phase's e-mail due on ``slot`` unless one was sent since; at most one a day."""
    since = max(slot, state.started_on) if state.started_on else slot
    last = run.emailed.get((org.id, step.key))
    if last is not None and last >= since:
        return
    run.emailed[(org.id, step.key)] = run.day
    key = f"email:{org.id}:{step.key}:{run.day.isoformat()}"
    case = _case(org, state, unpaid)
    days_left = (upcoming[1] - run.day).days if upcoming else None
    template = step.plan.email_template
    to_email = run.contacts.get(org.id) or org.email
    details = {"template": template, "slot": slot.isoformat()}
    if not to_email:  # recorded, tried again on the next e-mail day
        _event(run, org.id, "email", step.key, f"{step.name} e-mail not sent: {org.name} has no primary contact",
               details | {"error": "no primary contact"}, key=key)
        return
    provider = db.session.get(Organisation, org.provider_id)
    subject, context = phase_email(org, provider, case, template, phase_name=step.name, days_left=days_left,
                                   next_phase=upcoming[0] if upcoming else "",
                                   termination_on=state.next_on if upcoming and upcoming[0] == TERMINATED_NAME
                                   else None)
    row = dict(provider_id=provider.id, org_id=org.id, template=template, to_email=to_email, subject=subject[:300],
               body_text=_render(f"email/{template}.txt", context),
               body_html=_render(f"email/{template}.html", context), invoice_id=None, status="queued",
               attempts=0, last_error="", created_at=run.now)
    event = _event(run, org.id, "email", step.key, f"{step.name} e-mail ({template}) to {to_email}", details,
                   key=key)
    run.outbox.append((row, event))
    run.count("emails")


def _terminate(run: _Run, org: Organisation, state: DunningState, unpaid: list[Unpaid]) -> None:
    """The terminating phase ran out unpaid: cancel every subscription (the
    subscription service fires kassa_resource_terminate and kassa_subscription_terminated)."""
    from . import subscriptions

    subs = db.session.scalars(select(Subscription).where(Subscription.org_id == org.id,
                                                         Subscription.status != "cancelled")
                              .order_by(Subscription.id)).all()
    for sub in subs:
        subscriptions.set_status(run.actor, sub, "cancel")
    case = _case(org, state, unpaid)
    owed = _money(run, state.overdue_amount, state.currency)
    summary = f"Terminated: {len(subs)} subscription(s) cancelled, {owed} unpaid since {state.anchor_date}"
    _event(run, org.id, "terminate", state.phase, summary, {"subscriptions": [s.id for s in subs]})
    _audit(run, org, "dunning.terminate", summary=summary)
    state.status, state.phase, state.phase_name = TERMINATED, TERMINATED, TERMINATED_NAME
    state.entered_on, state.banner, state.restricted = run.day, True, False
    state.suspended_subscription_ids, state.next_step, state.next_on = [], "", None
    state.updated_at = run.now
    run.count("terminated")
    after_commit(lambda p=run.provider_id, c=case: _fire_resolved(p, c, "terminated"))


def _close(run: _Run, org: Organisation, state: DunningState, *, paid: bool) -> None:
    """Nothing is overdue any more (or no phase is enabled): lift everything."""
    if state.suspended_subscription_ids:
        _restore(run, org, state)
    case = _case(org, state, [])
    if state.status == TERMINATED:
        kind, summary = "cleared", "Overdue invoices settled after termination"
    elif paid:
        kind, summary = "resolved", f"Paid: left {state.phase_name}; banner, suspension and e-mails stopped"
        run.count("resolved")
        after_commit(lambda p=run.provider_id, c=case: _fire_resolved(p, c, "paid"))
    else:
        kind, summary = "cleared", f"Left {state.phase_name}: no dunning phase is enabled"
    _event(run, org.id, kind, state.phase, summary, {"amount": str(state.overdue_amount)})
    _audit(run, org, f"dunning.{kind}", summary=summary)
    db.session.delete(state)


# ------------------------------------------------------------------ running


def _new_run(provider_id: int, day: date) -> _Run:
    provider = db.session.get(Organisation, provider_id)
    config = settings.config(provider_id)
    return _Run(provider_id=provider_id, day=day, plans=phase_plans(provider_id), currency=config.currency,
                actor=_Engine(provider), precision=config.precision)


def _lock_orgs(org_ids: Sequence[int], *, skip_locked: bool) -> list[Organisation]:
    """Lock the organisations' rows (FOR NO KEY UPDATE: payments inserting rows that
    reference them are not blocked). The sweep skips rows another worker holds."""
    return list(db.session.scalars(select(Organisation).where(Organisation.id.in_(list(org_ids)))
                                   .order_by(Organisation.id)
                                   .with_for_update(key_share=True, skip_locked=skip_locked)
                                   .execution_options(populate_existing=True)))


def _process(run: _Run, org_ids: Sequence[int], *, skip_locked: bool) -> int:
    """Lock, read the ledger, decide and commit, for a chunk of organisations."""
    with atomic():
        orgs = _lock_orgs(org_ids, skip_locked=skip_locked)
        if not orgs:
            return 0
        ids = [o.id for o in orgs]
        unpaid = unpaid_invoices(ids, before=run.day)
        states = {s.org_id: s for s in db.session.scalars(select(DunningState).where(DunningState.org_id.in_(ids))
                                                          .execution_options(populate_existing=True))}
        _preload(run, [i for i in ids if i in unpaid or i in states])
        with db.session.no_autoflush:  # every row is written once, in bulk, when the chunk commits
            for org in orgs:
                _decide(run, org, unpaid.get(org.id, []), states.get(org.id))
        _write_rows(run)
    return len(orgs)


def _preload(run: _Run, ids: list[int]) -> None:
    """What deciding the chunk needs, in three queries instead of three per organisation."""
    run.active_subs, run.emailed, run.contacts = {}, {}, {}
    if not ids:
        return
    for sub in db.session.scalars(select(Subscription).where(Subscription.org_id.in_(ids),
                                                             Subscription.status == "active")
                                  .order_by(Subscription.id).execution_options(populate_existing=True)):
        run.active_subs.setdefault(sub.org_id, []).append(sub)
    run.emailed = {(org_id, phase): day for org_id, phase, day in db.session.execute(
        select(DunningEvent.org_id, DunningEvent.phase, func.max(DunningEvent.day))
        .where(DunningEvent.org_id.in_(ids), DunningEvent.kind == "email")
        .group_by(DunningEvent.org_id, DunningEvent.phase))}
    for org_id, email in db.session.execute(  # seed 000: the primary contact (notifications.primary_contact)
            select(User.org_id, User.email).where(User.org_id.in_(ids), User.is_primary_contact.is_(True),
                                                  User.active.is_(True)).order_by(User.id.desc())):
        run.contacts[org_id] = email


def _render(name: str, context: dict) -> str:
    """An e-mail template, rendered as notifications.queue renders it, without the
    request-only context processors of the console (thousands per first sweep)."""
    return current_app.jinja_env.get_template(name).render(context)


def _write_rows(run: _Run) -> None:
    """Write what the chunk decided in bulk, in its transaction: the e-mails (one
    delivery job takes them after commit), the history and the audit rows."""
    outbox, events, audits = run.outbox, run.events, run.audits
    run.outbox, run.events, run.audits = [], [], []
    if outbox:
        from ..jobs import enqueue

        ids = db.session.scalars(insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True),
                                 [row for row, _ in outbox]).all()
        for message_id, (_, event) in zip(ids, outbox):
            event["details"] = dict(event["details"], outbox_id=message_id)
        after_commit(lambda ids=list(ids): enqueue("kassa.jobs.tasks.deliver_emails", ids))
    _bulk_insert(DunningEvent, events)
    _bulk_insert(AuditEvent, audits)


def _bulk_insert(model, rows: list[dict]) -> None:
    """Insert rows in the current transaction: COPY on PostgreSQL (a first sweep over
    thousands of organisations writes tens of thousands of history and audit rows),
    an executemany elsewhere."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        db.session.execute(insert(model), rows)
        return
    from psycopg.types.json import Json

    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f'COPY "{model.__tablename__}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(tuple(Json(v) if isinstance(v, (dict, list)) else v for v in (row[c] for c in columns)))


def _process_chunk(run: _Run, org_ids: Sequence[int], totals: dict) -> None:
    counts_before = dict(run.counts)
    try:
        totals["organisations"] = totals.get("organisations", 0) + _process(run, org_ids, skip_locked=True)
        return
    except Exception:
        run.counts = counts_before
        totals["chunks_retried"] = totals.get("chunks_retried", 0) + 1
        log.exception("dunning: a chunk of %d organisations failed; deciding them one by one", len(org_ids))
    for org_id in org_ids:
        before = dict(run.counts)
        try:
            totals["organisations"] = totals.get("organisations", 0) + _process(run, [org_id], skip_locked=True)
        except Exception:
            run.counts = before
            totals["failed"] = totals.get("failed", 0) + 1
            log.exception("dunning: organisation %s could not be evaluated", org_id)


def evaluate(org_id: int, day: date | None = None) -> DunningState | None:
    """Re-evaluate one organisation now (after a payment, say), waiting for a sweep
    that holds its lock; returns its state (``None``: not in dunning)."""
    org = db.session.get(Organisation, org_id)
    if org is None or org.kind == "provider":
        return None
    run = _new_run(org.provider_id, day or clock_today())
    _process(run, [org_id], skip_locked=False)
    return db.session.get(DunningState, org_id, populate_existing=True)


def payment_recorded(org_id: int) -> None:
    """After a payment committed: an organisation in dunning is re-evaluated at once
    from the remaining oldest unpaid invoice (fully paid: suspension lifted,
    subscriptions restored, banner and e-mails stopped)."""
    if db.session.scalar(select(DunningState.org_id).where(DunningState.org_id == org_id)) is None:
        return
    evaluate(org_id)


def retry_cards(run: _Run) -> dict:
    """Charge the card on file again, every RETRY_EVERY_DAYS while in dunning. The day
    is claimed under the lock first (so two sweeps charge once), the gateway is
    called without holding it; a blocked card (the decline limit) is not retried."""
    from . import charges

    done = {"retries": 0, "retry_succeeded": 0}
    candidates = list(db.session.scalars(
        select(DunningState.org_id).join(PaymentMethod, PaymentMethod.org_id == DunningState.org_id)
        .where(DunningState.provider_id == run.provider_id, DunningState.status == ACTIVE,
               PaymentMethod.status == "active",
               (DunningState.last_retry_on.is_(None)) | (DunningState.last_retry_on < run.day))
        .distinct().order_by(DunningState.org_id)))
    for org_id in candidates:
        with atomic():
            orgs = _lock_orgs([org_id], skip_locked=True)
            state = db.session.get(DunningState, org_id, populate_existing=True) if orgs else None
            unpaid = unpaid_invoices([org_id], before=run.day).get(org_id, [])
            if state is None or state.status != ACTIVE or not unpaid:
                continue
            tl = timeline(unpaid[0].due_date, run.plans, current=(state.phase, state.entered_on))
            slot = tl.retry_slot(run.day)
            if slot is None or (state.last_retry_on is not None and state.last_retry_on >= slot):
                continue
            state.last_retry_on = run.day
            invoice_ids = [u.invoice_id for u in unpaid]
        for invoice_id in invoice_ids:
            invoice = db.session.get(Invoice, invoice_id)
            card = db.session.scalar(select(PaymentMethod).where(PaymentMethod.org_id == org_id,
                                                                 PaymentMethod.status.in_(("active", "blocked")))
                                     .order_by(PaymentMethod.id.desc()))
            try:
                payment = charges.capture(None, invoice)
                status, reason = payment.status, payment.decline_reason
            except ServiceError as exc:
                status, reason = "refused", exc.message
            done["retries"] += 1
            done["retry_succeeded"] += status == "succeeded"
            with atomic():
                text = f"Card {card.brand} •••• {card.last4} retried for {invoice.number}: {status}" if card else \
                    f"Card retried for {invoice.number}: {status}"
                _event(run, org_id, "retry", "", text + (f" ({reason})" if reason else ""),
                       {"invoice": invoice.number, "status": status, "reason": reason},
                       key=f"retry:{org_id}:{invoice_id}:{run.day.isoformat()}")
                _write_rows(run)
            if status != "succeeded":
                break
    return done


def sweep(day: date | None = None, provider_ids: Iterable[int] | None = None) -> dict:
    """The daily job: every provider, every organisation that is overdue or in dunning.
    Set-based: one query finds the overdue organisations; they are then locked and
    decided in chunks. Safe to run twice, or on two workers at once."""
    day = day or clock_today()
    if provider_ids is None:
        provider_ids = db.session.scalars(select(Organisation.id).where(Organisation.kind == "provider")
                                          .order_by(Organisation.id)).all()
    totals: dict = {"providers": 0, "organisations": 0}
    for provider_id in provider_ids:
        run = _new_run(provider_id, day)
        in_dunning = set(db.session.scalars(select(DunningState.org_id).where(DunningState.provider_id == provider_id)))
        if not run.plans and not in_dunning:
            continue
        totals["providers"] += 1
        if run.plans:
            for what, n in retry_cards(run).items():
                totals[what] = totals.get(what, 0) + n
        candidates = sorted(in_dunning | set(overdue_org_ids(provider_id, day) if run.plans else ()))
        for start in range(0, len(candidates), CHUNK):
            _process_chunk(run, candidates[start:start + CHUNK], totals)
        for what, n in run.counts.items():
            totals[what] = totals.get(what, 0) + n
    log.info("dunning sweep %s: %s", day, totals)
    return totals


# ------------------------------------------------------------------ e-mails


SUBJECTS = {
    "dunning_warning": "Overdue invoices with {provider}",  # as notifications.dunning_warning_message
    "dunning_suspended": "Your account with {provider} is suspended for non-payment",
    "dunning_delete_notice": "Final notice: your subscriptions with {provider} will be terminated",
}


def phase_email(org: Organisation, provider: Organisation, case: DunningCase, template: str, *, phase_name: str,
                days_left: int | None = None, next_phase: str = "",
                termination_on: date | None = None) -> tuple[str, dict]:
    """Subject and template context of the e-mail a phase declares. The warning has
    the subject and context of notifications.dunning_warning_message; the
    suspension and delete notice add ``termination_on``."""
    subject = SUBJECTS.get(template, "Overdue invoices with {provider}").format(provider=provider.name)
    return subject, {"org": org, "provider": provider, "case": case, "overdue_amount": case.overdue_amount,
                     "currency": case.currency, "oldest_due_date": case.oldest_due_date,
                     "invoice_numbers": list(case.invoice_numbers), "phase_name": phase_name,
                     "days_left": days_left, "next_phase": next_phase, "termination_on": termination_on}


# ------------------------------------------------------------------ reading, for the console and the API


def state_of(org_id: int) -> DunningState | None:
    """The organisation's dunning state, read once per request."""
    return memo(("dunning-state", org_id), lambda: db.session.get(DunningState, org_id))


def history(org_id: int, limit: int = 200) -> list[DunningEvent]:
    return list(db.session.scalars(select(DunningEvent).where(DunningEvent.org_id == org_id)
                                   .order_by(DunningEvent.id.desc()).limit(limit)))


@dataclass(frozen=True)
class Preview:
    org: Organisation
    day: date
    state: DunningState | None
    unpaid: list[Unpaid]
    overdue: list[Unpaid]
    plans: list[PhasePlan]
    timeline: Timeline | None
    history: list[DunningEvent]

    @property
    def overdue_amount(self) -> Decimal:
        return total(self.overdue)[0]

    @property
    def unpaid_amount(self) -> Decimal:
        return total(self.unpaid)[0]

    @property
    def currency(self) -> str:
        return total(self.unpaid)[1] or settings.config(self.org.provider_id).currency


def preview(org: Organisation, day: date | None = None) -> Preview:
    """What will happen on which date if nothing is paid, from the oldest unpaid
    invoice (overdue or not yet), with where the organisation is and its history."""
    day = day or clock_today()
    state = db.session.get(DunningState, org.id)
    unpaid = unpaid_invoices([org.id]).get(org.id, [])
    plans = phase_plans(org.provider_id) if org.kind != "provider" else []
    tl = None
    if unpaid and plans:
        current = (state.phase, state.entered_on) if state is not None and state.status == ACTIVE else None
        tl = timeline(unpaid[0].due_date, plans, current=current)
    return Preview(org=org, day=day, state=state, unpaid=unpaid, overdue=[u for u in unpaid if u.due_date < day],
                   plans=plans, timeline=tl, history=history(org.id))


def states_in_scope(user) -> list[tuple[DunningState, Organisation]]:
    from . import scope

    return list(db.session.execute(
        select(DunningState, Organisation).join(Organisation, Organisation.id == DunningState.org_id)
        .where(scope.visible_orgs_clause(user)).order_by(DunningState.anchor_date, Organisation.name)).all())
