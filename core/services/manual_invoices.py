"""Seed 000 "Create Manual Invoice": for a customer or reseller, optionally tied to
a contract, items from the contract or entered by hand, issued Paid or Unpaid."""
from __future__ import annotations

from datetime import timedelta

from ..clock import today
from ..extensions import db
from ..models import Organisation
from ..money import round_money
from . import invoicing, payments, scope, settings, subscriptions
from .errors import NotFound
from .invoicing import DraftLine
from .periods import months
from .uow import atomic
from .validate import Errors, date_field, decimal_field, text_field


def create(actor, data: dict):
    errors = Errors()
    for_kind = (data.get("for") or "customer").lower()
    if for_kind not in ("customer", "reseller"):
        errors["for"] = "Customer or Reseller."
    org = None
    try:
        org = scope.get_org(actor, data.get("org_id"))
        if org.kind != for_kind:
            errors["org_id"] = f"Select a {for_kind}."
    except NotFound:
        errors["org_id"] = "Select an organisation you manage."
    bs = settings.billing_settings(actor.org.provider_id)
    status = (data.get("status") or "unpaid").lower()
    if status not in ("paid", "unpaid"):
        errors["status"] = "Paid or Unpaid."
    issue_date = date_field(errors, "issue_date", data.get("issue_date") or today())
    due_date = date_field(errors, "due_date", data.get("due_date"))
    period_from = date_field(errors, "period_from", data.get("period_from"))
    period_to = date_field(errors, "period_to", data.get("period_to"))
    if issue_date and due_date and due_date < issue_date:
        errors["due_date"] = "The due date is before the issue date."
    if period_from and period_to and period_to < period_from:
        errors["period_to"] = "The invoicing period ends before it starts."
    contract = None
    if data.get("subscription_id") and org is not None:
        try:
            contract = subscriptions.get_subscription(actor, data["subscription_id"])
            if contract.org_id != org.id:
                errors["subscription_id"] = "This contract belongs to another organisation."
        except NotFound:
            errors["subscription_id"] = "Unknown contract."
    # the invoice's currency: the contract's, else the buyer's (issuing.Draft resolves it the same way)
    billed_in = contract.currency if contract is not None else (
        settings.currency_for(actor.org.provider_id, org.country) if org is not None else bs.currency)
    currency = (data.get("currency") or billed_in).upper()
    if currency != billed_in:
        errors["currency"] = (f"This provider bills in {billed_in} only."
                              if settings.currencies(actor.org.provider_id) == [billed_in]
                              else f"This invoice is billed in {billed_in}.")
    notes = text_field(errors, "notes", data.get("notes"), required=False, max_length=1000)
    lines = _lines(errors, data, contract, bs.precision)
    errors.raise_if_any()
    provider = db.session.get(Organisation, actor.org.provider_id)
    with atomic():
        invoice = invoicing.issue(provider=provider, buyer=org, lines=lines, issue_date=issue_date, due_date=due_date,
                                  period_start=period_from,
                                  period_end=period_to + timedelta(days=1),  # stored exclusive, like every period
                                  subscription_id=contract.id if contract else None, kind="manual", notes=notes,
                                  actor=actor)
        if status == "paid" and invoicing.amount_due(invoice) > 0:
            payments.adjust_offline(actor, invoice, mark_as_paid=True,
                                    reference=text_field(errors, "reference", data.get("reference") or "manual"),
                                    description="Issued as paid")
    return invoice


def _lines(errors: Errors, data: dict, contract, precision: int) -> list[DraftLine]:
    lines = []
    if data.get("items_from_contract") and contract is not None:
        factor = months(contract.cycle)
        for item in contract.items:
            if item.units <= 0:
                continue
            price = item.unit_price * factor
            lines.append(DraftLine(description=item.service.name, quantity=item.units, unit_price=price,
                                   amount=round_money(item.units * price, precision), taxable=item.service.taxable,
                                   tax_code=item.service.tax_code, service_id=item.service_id))
    elif data.get("items_from_contract"):
        errors["subscription_id"] = "Select the contract to take the items from."
    for i, item in enumerate(data.get("items") or ()):
        if not any(str(item.get(k) or "").strip() for k in ("description", "quantity", "unit_price")):
            continue
        description = text_field(errors, f"items.{i}.description", item.get("description"), max_length=300)
        quantity = decimal_field(errors, f"items.{i}.quantity", item.get("quantity"), positive=True, places=4)
        price = decimal_field(errors, f"items.{i}.unit_price", item.get("unit_price"), places=6)
        if quantity is not None and price is not None and description:
            lines.append(DraftLine(description=description, quantity=quantity, unit_price=price,
                                   amount=round_money(quantity * price, precision),
                                   taxable=bool(item.get("taxable", True)),
                                   tax_code=text_field(errors, f"items.{i}.tax_code", item.get("tax_code"),
                                                       required=False, max_length=20)))
    if not lines and not any(k.startswith("items") for k in errors):
        errors["items"] = "Add at least one item, from the contract or by hand."
    return lines


__all__ = ["create"]
