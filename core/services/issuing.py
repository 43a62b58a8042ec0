"""Issuing invoices in bulk: the write path shared by a single manual invoice and
a billing run of a hundred thousand.

``prepare`` turns a draft into a priced invoice (lines rounded once, tax from the
tax-engine hook, totals) without touching the database; ``write`` takes the next
numbers of the provider's gapless sequence for the whole batch under one row
lock, inserts invoices, lines, tax breakups and their ledger transactions with a
handful of multi-row INSERTs, applies wallet balances, queues the e-mails, and
after commit tells the plugins. It runs inside the caller's transaction: a
batch is written entirely or not at all, so no number is ever lost.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import JSON, insert, select, text
from sqlalchemy.exc import DBAPIError

from ..clock import utcnow_naive
from ..contracts import Party, TaxComponent, TaxDraft, TaxDraftLine
from ..extensions import db
from ..jobs import enqueue
from ..models import Invoice, InvoiceLine, InvoiceSequence, InvoiceTax, OutboxMessage, Subscription
from ..money import MoneyError, check_currency, is_rounded
from ..plugins import host
from . import ledger, settings
from .contacts import primary_contacts
from .context import provider_context
from .errors import ServiceError, ValidationError
from .uow import after_commit


@dataclass(frozen=True)
class DraftLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # already rounded to the billing precision
    taxable: bool = True
    tax_code: str = ""
    service_id: int | None = None
    period_start: date | None = None
    period_end: date | None = None
    unit_change_id: int | None = None


@dataclass
class Draft:
    seller: Party
    buyer: Party
    lines: list[DraftLine]
    issue_date: date
    due_date: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    subscription_id: int | None = None
    kind: str = "recurring"
    billing_key: str | None = None
    notes: str = ""
    actor_id: int | None = None
    # None: the subscription's currency for a subscription's draft, else the buyer's
    # (settings.currency_for: the billing currency, or the foreign one for buyers abroad)
    currency: str | None = None


def draft_currency(draft: Draft) -> str:
    """The currency a draft is invoiced in (see :attr:`Draft.currency`). A billing run
    has its subscriptions loaded, so the lookup is the session's, not a query."""
    if draft.currency:
        return draft.currency
    if draft.subscription_id is not None:
        sub = db.session.get(Subscription, draft.subscription_id)
        if sub is not None:
            return sub.currency
    return settings.currency_for(draft.seller.org_id, draft.buyer.country)


@dataclass
class Priced:
    draft: Draft
    line_tax: list[Decimal]
    breakup: dict[tuple[str, Decimal], list[Decimal]]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    engine: str = ""
    note: str = ""
    details: dict = field(default_factory=dict)
    invoice_id: int | None = None
    number: str = ""
    paid: Decimal = Decimal(0)


def prepare(draft: Draft) -> Priced:
    """Validate and price a draft; no database writes."""
    config = settings.config(draft.seller.org_id)
    precision = config.precision
    if not draft.lines:
        raise ValidationError("An invoice needs at least one line.", {"lines": "Add at least one item."})
    for line in draft.lines:
        if not isinstance(line.amount, Decimal) or not is_rounded(line.amount, precision):
            raise ServiceError(f"Line amount {line.amount!r} is not rounded to {precision} places.")
    if draft.due_date is None:
        draft.due_date = date.fromordinal(draft.issue_date.toordinal() + config.payment_terms_days)
    if draft.due_date < draft.issue_date:
        raise ValidationError("The due date is before the issue date.", {"due_date": "On or after the issue date."})
    try:
        draft.currency = check_currency(draft_currency(draft))
    except MoneyError as exc:
        raise ValidationError(str(exc), {"currency": str(exc)}) from None
    try:
        quote = host().hooks(draft.seller.org_id).kassa_tax_quote(
            draft=TaxDraft(currency=draft.currency, precision=precision, issue_date=draft.issue_date, lines=tuple(
                TaxDraftLine(key=str(i), description=l.description, amount=l.amount, taxable=l.taxable,
                             tax_code=l.tax_code) for i, l in enumerate(draft.lines))),
            seller=draft.seller, buyer=draft.buyer, ctx=provider_context(draft.seller.org_id))
    except ValueError as exc:  # an engine refusing the data (an unknown state, say) says what to fix
        raise ValidationError(f"Tax cannot be computed: {exc}", {"tax": str(exc)}) from None
    by_line: dict[str, tuple[TaxComponent, ...]] = {}
    if quote is not None:
        keys = {str(i) for i in range(len(draft.lines))}
        for line_quote in quote.lines:
            if line_quote.key not in keys:
                raise ServiceError(f"Tax engine {quote.engine} quoted an unknown line {line_quote.key!r}.")
            for c in line_quote.components:
                if not isinstance(c.amount, Decimal) or not is_rounded(c.amount, precision):
                    raise ServiceError(f"Tax engine {quote.engine} returned {c.amount!r}, "
                                       f"not rounded to {precision} places.")
            by_line[line_quote.key] = line_quote.components
    breakup: dict[tuple[str, Decimal], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    line_tax = []
    for i, line in enumerate(draft.lines):
        components = by_line.get(str(i), ())
        line_tax.append(sum((c.amount for c in components), Decimal(0)))
        for c in components:
            breakup[(c.name, c.rate)][0] += line.amount
            breakup[(c.name, c.rate)][1] += c.amount
    subtotal = sum((l.amount for l in draft.lines), Decimal(0))
    tax_total = sum(line_tax, Decimal(0))
    return Priced(draft=draft, line_tax=line_tax, breakup=dict(breakup), subtotal=subtotal, tax_total=tax_total,
                  total=subtotal + tax_total, engine=quote.engine if quote else "",
                  note=(quote.note if quote else "")[:500],
                  details={str(k): str(v) for k, v in ((quote.details if quote else None) or {}).items()})


def bulk_insert(model, rows: list[dict]) -> list[int]:
    """Insert many rows and return their ids in order, the fastest way per database:
    PostgreSQL takes the ids from the table's sequence first and then runs one
    prepared INSERT for all rows (psycopg pipelines it); SQLite runs multi-row
    INSERT ... RETURNING statements."""
    if not rows:
        return []
    if db.session.get_bind().dialect.name == "postgresql":
        table = model.__table__.name
        ids = list(db.session.execute(text(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"),
            {"n": len(rows)}).scalars())
        for row, ident in zip(rows, ids):
            row["id"] = ident
        _copy_rows(model.__table__, rows)
        return ids
    return list(db.session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def _json_text(value):
    return None if value is None else json.dumps(value)


def _copy_rows(table, rows: list[dict]) -> None:
    """PostgreSQL ``COPY`` of rows that all have the same keys: the columns' own
    bind processing (exact amounts, JSON) and Python-side defaults, as an ORM
    insert would apply them, at a fraction of the cost of one INSERT per row."""
    dialect = db.session.get_bind().dialect
    given = list(rows[0])
    defaults = {c.key: c.default for c in table.columns
                if c.key not in rows[0] and c.default is not None and not c.default.is_sequence}
    columns = given + list(defaults)
    processors = [_json_text if isinstance(table.columns[k].type, JSON) else table.columns[k].type.bind_processor(dialect)
                  for k in columns]
    fixed = [d.arg(None) if d.is_callable else d.arg for d in defaults.values()]
    names = ", ".join(f'"{k}"' for k in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    cursor = db.session.connection().connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                values = [row[k] for k in given] + fixed
                copy.write_row([proc(v) if proc else v for proc, v in zip(processors, values)])
    except dialect.loaded_dbapi.Error as exc:  # the same IntegrityError and friends an INSERT would raise
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc


def _take_numbers(provider_id: int, count: int) -> int:
    """Reserve ``count`` consecutive numbers; return the first. The row lock is held
    until the caller's transaction ends, and a rollback gives the numbers back."""
    seq = db.session.scalar(select(InvoiceSequence).filter_by(provider_id=provider_id).with_for_update())
    if seq is None:
        seq = InvoiceSequence(provider_id=provider_id, last_number=0)
        db.session.add(seq)
    first = seq.last_number + 1
    seq.last_number += count
    db.session.flush()
    return first


def _snapshot(p: Party) -> dict:
    return {k: getattr(p, k) for k in p.__dataclass_fields__}


def write(priced: list[Priced]) -> list[Priced]:
    """Insert a batch of priced invoices of one provider in the current transaction."""
    if not priced:
        return priced
    provider_id = priced[0].draft.seller.org_id
    config = settings.config(provider_id)
    precision = config.precision
    now = utcnow_naive()
    first = _take_numbers(provider_id, len(priced))
    rows = []
    for offset, p in enumerate(priced):
        d = p.draft
        p.number = f"{config.invoice_prefix}{first + offset:06d}"
        d.currency = d.currency or draft_currency(d)  # prepared drafts have theirs already
        rows.append(dict(
            provider_id=provider_id, org_id=d.buyer.org_id, subscription_id=d.subscription_id,
            sequence=first + offset, number=p.number, kind=d.kind, billing_key=d.billing_key, currency=d.currency,
            issue_date=d.issue_date, due_date=d.due_date, period_start=d.period_start, period_end=d.period_end,
            subtotal=p.subtotal, tax_total=p.tax_total, total=p.total, tax_engine=p.engine, tax_note=p.note,
            tax_details=p.details, notes=d.notes[:1000], seller_snapshot=_snapshot(d.seller),
            buyer_snapshot=_snapshot(d.buyer), created_by_id=d.actor_id, created_at=now, cancel_reason=""))
    ids = bulk_insert(Invoice, rows)
    lines, taxes = [], []
    for p, invoice_id in zip(priced, ids):
        p.invoice_id = invoice_id
        for position, (line, tax) in enumerate(zip(p.draft.lines, p.line_tax), start=1):
            lines.append(dict(invoice_id=invoice_id, position=position, service_id=line.service_id,
                              description=line.description[:300], quantity=line.quantity,
                              unit_price=line.unit_price, amount=line.amount, tax_amount=tax,
                              tax_code=line.tax_code, taxable=line.taxable, period_start=line.period_start,
                              period_end=line.period_end, unit_change_id=line.unit_change_id))
        for (name, rate), (taxable, amount) in p.breakup.items():
            taxes.append(dict(invoice_id=invoice_id, name=name, rate=rate, taxable_amount=taxable, amount=amount))
    bulk_insert(InvoiceLine, lines)
    bulk_insert(InvoiceTax, taxes)
    by_currency: dict[str, list[Priced]] = defaultdict(list)  # a ledger transaction is in one currency
    for p in priced:
        by_currency[p.draft.currency].append(p)
    for currency, batch in by_currency.items():
        _post_ledger(batch, provider_id, currency, precision)
        if config.apply_wallet:
            _apply_wallets(batch, provider_id, currency, precision)
    _queue_emails(priced, provider_id)
    after_commit(lambda: _announce(priced))
    return priced


def _queue_emails(priced: list[Priced], provider_id: int) -> None:
    """One outbox row per invoice, in the same transaction (the e-mail exists if and
    only if the invoice does); the delivery job renders and sends it after commit."""
    contacts = primary_contacts({p.draft.buyer.org_id for p in priced})
    now = utcnow_naive()
    rows = [dict(provider_id=provider_id, org_id=p.draft.buyer.org_id, template="invoice_issued",
                 to_email=contacts[p.draft.buyer.org_id],
                 subject=f"Invoice {p.number} from {p.draft.seller.name}"[:300], body_text="", body_html="",
                 invoice_id=p.invoice_id, status="queued", attempts=0, last_error="", created_at=now)
            for p in priced if contacts.get(p.draft.buyer.org_id)]
    if not rows:
        return
    ids = bulk_insert(OutboxMessage, rows)
    after_commit(lambda: enqueue("kassa.jobs.tasks.deliver_emails", list(ids)))


def _announce(priced: list[Priced]) -> None:
    """After commit: the invoice-issued hook, once per invoice."""
    from .invoicing import view_of_priced

    provider_id = priced[0].draft.seller.org_id
    hooks = host().hooks(provider_id)
    if not hooks.kassa_invoice_issued.get_hookimpls():
        return  # nobody listens: building a hundred thousand views would be wasted
    ctx = provider_context(provider_id)
    for p in priced:
        view = view_of_priced(p)
        if p.draft.currency and view.currency != p.draft.currency:
            view = replace(view, currency=p.draft.currency)
        hooks.kassa_invoice_issued(invoice=view, ctx=ctx)


def _post_ledger(priced: list[Priced], provider_id: int, currency: str, precision: int) -> None:
    revenue = ledger.account(provider_id, provider_id, "revenue", currency)
    tax = ledger.account(provider_id, provider_id, "tax_payable", currency)
    receivables = ledger.ensure_accounts(provider_id, {p.draft.buyer.org_id for p in priced}, "receivable", currency)
    specs = []
    for p in priced:
        if p.total == 0 and p.tax_total == 0:
            continue
        receivable = receivables[p.draft.buyer.org_id]
        specs.append(ledger.TransactionSpec(
            kind="invoice", org_id=p.draft.buyer.org_id, amount=abs(p.total), direction="internal",
            reference=p.number, description=f"Invoice {p.number}", invoice_id=p.invoice_id, actor_id=p.draft.actor_id,
            entries=((receivable, p.total), (revenue, -p.subtotal), (tax, -p.tax_total))))
    ledger.post_many(provider_id=provider_id, currency=currency, precision=precision, specs=specs)


def _apply_wallets(priced: list[Priced], provider_id: int, currency: str, precision: int) -> None:
    """Pay new invoices from wallet balances, oldest first, never beyond the balance."""
    orgs = {p.draft.buyer.org_id for p in priced if p.total > 0}
    holders = [o for o in orgs if ledger.has_wallet(provider_id, o, currency)]
    if not holders:
        return
    balance = {o: ledger.wallet_balance(o, currency) for o in holders}
    specs = []
    for p in priced:
        org = p.draft.buyer.org_id
        amount = min(balance.get(org, Decimal(0)), p.total)
        if amount <= 0:
            continue
        balance[org] -= amount
        p.paid = amount
        specs.append(ledger.TransactionSpec(
            kind="wallet_applied", org_id=org, amount=amount, direction="internal", reference=p.number,
            description=f"Wallet balance applied to {p.number}", invoice_id=p.invoice_id, actor_id=p.draft.actor_id,
            entries=((ledger.account(provider_id, org, "wallet", currency), amount),
                     (ledger.ensure_accounts(provider_id, [org], "receivable", currency)[org], -amount))))
    ledger.post_many(provider_id=provider_id, currency=currency, precision=precision, specs=specs)
