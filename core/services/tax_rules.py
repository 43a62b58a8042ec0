"""Tax rules of the built-in tax engine (seed 000 "Tax Engine & Rules")."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from ..clock import utcnow_naive
from ..extensions import db
from ..models import TaxRule
from . import audit
from .cache import invalidate, memo
from .errors import NotFound, ValidationError
from .orgs import clean_country
from .uow import atomic
from .validate import Errors, decimal_field, text_field

STATUSES = ("active", "suspended")


def rules_query(provider_id: int):
    return select(TaxRule).where(TaxRule.provider_id == provider_id).order_by(TaxRule.country, TaxRule.name)


def get_rule(provider_id: int, rule_id) -> TaxRule:
    rule = db.session.get(TaxRule, int(rule_id)) if str(rule_id).isdigit() else None
    if rule is None or rule.provider_id != provider_id:
        raise NotFound("Tax rule not found")
    return rule


@dataclass(frozen=True)
class ActiveRule:
    name: str
    rate: Decimal


def active_rules(provider_id: int, country: str) -> tuple[ActiveRule, ...]:
    """The rules that apply to buyers in ``country``, read once per request or job."""
    return memo(("tax_rules", provider_id, country), lambda: tuple(
        ActiveRule(r.name, r.rate) for r in db.session.scalars(select(TaxRule).where(
            TaxRule.provider_id == provider_id, TaxRule.country == country, TaxRule.status == "active"
        ).order_by(TaxRule.id))))


def _clean(data: dict) -> dict:
    errors = Errors()
    name = text_field(errors, "name", data.get("name"), max_length=100)
    try:
        country = clean_country(data.get("country"))
    except ValidationError as exc:
        errors.update(exc.field_errors)
        country = ""
    rate = decimal_field(errors, "rate", data.get("rate"), minimum=Decimal(0), maximum=Decimal(100), places=4)
    status = (data.get("status") or "active").strip().lower()
    if status == "suspend":
        status = "suspended"
    if status not in STATUSES:
        errors["status"] = "Active or Suspend."
    errors.raise_if_any()
    return {"name": name, "country": country, "rate": rate, "status": status}


def save_rule(actor, data: dict, rule: TaxRule | None = None) -> TaxRule:
    fields = _clean(data)
    now = utcnow_naive()
    with atomic():
        if rule is None:
            rule = TaxRule(provider_id=actor.org.provider_id, created_at=now, updated_at=now, **fields)
            db.session.add(rule)
            action = "tax_rule.create"
        else:
            for key, value in fields.items():
                setattr(rule, key, value)
            rule.updated_at = now
            action = "tax_rule.update"
        db.session.flush()
        invalidate("tax_rules")
        audit.record(actor, action, rule, summary=f"{rule.name} {rule.country} {rule.rate}% {rule.status}")
    return rule


def delete_rule(actor, rule: TaxRule) -> None:
    """Issued invoices keep their own copy of the rates, so deleting a rule changes no invoice."""
    with atomic():
        audit.record(actor, "tax_rule.delete", rule, summary=f"{rule.name} {rule.country} {rule.rate}%")
        db.session.delete(rule)
        invalidate("tax_rules")
