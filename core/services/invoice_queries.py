"""Listing invoices: scope, filters and keyset pagination (constant cost per page
however deep, which offset pagination on a million rows is not)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import Invoice, Organisation
from . import invoicing, scope
from .errors import NotFound, ValidationError
from .validate import Errors, date_field


@dataclass(frozen=True)
class InvoiceFilter:
    org_id: int | None = None
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    number: str = ""
    subscription_id: int | None = None

    def as_args(self) -> dict:
        out = {"org_id": self.org_id, "status": self.status, "date_from": self.date_from, "date_to": self.date_to,
               "number": self.number, "subscription_id": self.subscription_id}
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in out.items() if v not in (None, "")}


def parse_filter(args) -> InvoiceFilter:
    errors = Errors()
    org_id = args.get("org_id") or None
    if org_id is not None and not str(org_id).isdigit():
        errors["org_id"] = "An organisation id."
    subscription_id = args.get("subscription_id") or None
    if subscription_id is not None and not str(subscription_id).isdigit():
        errors["subscription_id"] = "A subscription id."
    status = (args.get("status") or "").strip()
    if status and status not in invoicing.STATUSES:
        errors["status"] = "One of " + ", ".join(invoicing.STATUSES) + "."
    date_from = date_field(errors, "date_from", args.get("date_from"), required=False)
    date_to = date_field(errors, "date_to", args.get("date_to"), required=False)
    if date_from and date_to and date_to < date_from:
        errors["date_to"] = "The end of the range is before its start."
    errors.raise_if_any()
    return InvoiceFilter(org_id=int(org_id) if org_id else None, status=status, date_from=date_from, date_to=date_to,
                         number=(args.get("number") or "").strip()[:40],
                         subscription_id=int(subscription_id) if subscription_id else None)


def scoped(user):
    me = user.org
    if me.kind == "provider":
        return select(Invoice).where(Invoice.provider_id == me.id)
    return select(Invoice).where(Invoice.org_id.in_(scope.visible_org_ids(user)))


def filtered(user, f: InvoiceFilter):
    query = scoped(user)
    if f.org_id:
        query = query.where(Invoice.org_id == f.org_id)
    if f.subscription_id:
        query = query.where(Invoice.subscription_id == f.subscription_id)
    if f.date_from:
        query = query.where(Invoice.issue_date >= f.date_from)
    if f.date_to:
        query = query.where(Invoice.issue_date <= f.date_to)
    if f.number:
        query = query.where(Invoice.number == f.number)
    if f.status:
        query = query.where(invoicing.status_clause(f.status))
    return query


def encode_cursor(invoice: Invoice) -> str:
    return f"{invoice.issue_date.isoformat()}_{invoice.id}"


def page(user, f: InvoiceFilter, after: str | None = None, limit: int = 50):
    """Newest first. Returns (invoices, cursor of the next page or None)."""
    query = filtered(user, f)
    if after:
        try:
            day, _, ident = after.partition("_")
            day, ident = date.fromisoformat(day), int(ident)
        except ValueError:
            raise ValidationError("Bad page cursor.", {"after": "Use the cursor from the previous page."}) from None
        query = query.where(or_(Invoice.issue_date < day, and_(Invoice.issue_date == day, Invoice.id < ident)))
    rows = list(db.session.scalars(query.order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def get(user, invoice_id) -> Invoice:
    try:
        invoice_id = int(invoice_id)
    except (TypeError, ValueError):
        raise NotFound("Invoice not found") from None
    invoice = db.session.scalar(scoped(user).where(Invoice.id == invoice_id))
    if invoice is None:
        raise NotFound("Invoice not found")
    return invoice


def with_status(invoices) -> list[tuple[Invoice, str, object]]:
    """Attach the derived status and amount due with one query for the whole page."""
    dues = invoicing.due_amounts(i.id for i in invoices)
    return [(i, invoicing.status_of(i, dues[i.id]), dues[i.id] if i.cancelled_at is None else Decimal(0)) for i in invoices]


def org_names(invoices) -> dict[int, str]:
    ids = {i.org_id for i in invoices}
    if not ids:
        return {}
    return dict(db.session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))).all())
