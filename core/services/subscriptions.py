"""Resource subscriptions: items, unit changes (prorated), status, cycles."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from ..clock import today, utcnow_naive
from ..extensions import db
from ..money import plain
from ..models import CYCLES, Organisation, Subscription, SubscriptionItem, UnitChange
from ..plugins import host
from . import audit, catalog, scope, settings
from .context import party, provider_context
from .errors import Conflict, NotFound, ValidationError
from .uow import after_commit, atomic
from .validate import Errors, date_field, decimal_field, text_field

STATUS_CHANGES = {"suspend": ("active", "suspended"), "resume": ("suspended", "active")}


def subscriptions_query(user):
    return select(Subscription).where(Subscription.org_id.in_(scope.visible_org_ids(user)))


def get_subscription(user, subscription_id) -> Subscription:
    try:
        subscription_id = int(subscription_id)
    except (TypeError, ValueError):
        raise NotFound("Subscription not found") from None
    sub = db.session.scalar(subscriptions_query(user).where(Subscription.id == subscription_id))
    if sub is None:
        raise NotFound("Subscription not found")
    return sub


def _items(errors: Errors, provider_id: int, currency: str, items) -> list[tuple]:
    cleaned = []
    for i, item in enumerate(items or ()):
        try:
            service = catalog.get_service(provider_id, item.get("service_id"))
        except NotFound:
            errors[f"items.{i}.service_id"] = "Unknown service."
            continue
        if not service.active:
            errors[f"items.{i}.service_id"] = f"{service.name} is no longer sold."
            continue
        units = decimal_field(errors, f"items.{i}.units", item.get("units"), positive=True, places=4)
        price = item.get("unit_price")
        if price in (None, ""):
            price = service.price(currency)
            if price is None:
                errors[f"items.{i}.service_id"] = f"{service.name} has no {currency} price."
                continue
        else:
            price = decimal_field(errors, f"items.{i}.unit_price", price, places=6)
        if units is not None and price is not None:
            cleaned.append((service, units, price))
    if not cleaned and not errors:
        errors["items"] = "Add at least one service."
    return cleaned


def create(actor, org: Organisation, data: dict) -> Subscription:
    """Create a subscription for a customer or reseller in the actor's scope."""
    if org.kind == "provider" or not scope.can_see_org(actor, org):
        raise NotFound("Organisation not found")
    errors = Errors()
    name = text_field(errors, "name", data.get("name"))
    cycle = data.get("cycle") or "monthly"
    if cycle not in CYCLES:
        errors["cycle"] = "Monthly, quarterly or yearly."
    billed_in = settings.currency_for(org.provider_id, org.country)  # prices are taken in the buyer's currency
    currency = (data.get("currency") or billed_in).upper()
    if currency != billed_in:
        errors["currency"] = (f"This provider bills in {billed_in} only." if settings.currencies(org.provider_id)
                              == [billed_in] else f"{org.name} is billed in {billed_in}.")
    start = date_field(errors, "start_date", data.get("start_date") or today())
    trial_days = data.get("trial_days") or 0
    try:
        trial_days = int(trial_days)
        if not 0 <= trial_days <= 365:
            raise ValueError
    except (TypeError, ValueError):
        errors["trial_days"] = "0 to 365 days."
        trial_days = 0
    items = _items(errors, org.provider_id, currency, data.get("items"))
    errors.raise_if_any()
    anchor = date.fromordinal(start.toordinal() + trial_days) if trial_days else start
    with atomic():
        sub = Subscription(provider_id=org.provider_id, org_id=org.id, name=name, currency=currency, cycle=cycle,
                           anchor_date=anchor, next_period_start=anchor, status="trial" if trial_days else "active",
                           trial_ends_on=anchor if trial_days else None,
                           auto_deduction=bool(data.get("auto_deduction")), created_at=utcnow_naive())
        db.session.add(sub)
        for service, units, price in items:
            db.session.add(SubscriptionItem(subscription=sub, service_id=service.id, units=units, unit_price=price,
                                            created_at=utcnow_naive()))
        db.session.flush()
        audit.record(actor, "subscription.create", sub, org_id=org.id,
                     summary=f"{name}: {len(items)} item(s), {cycle} from {anchor}")
    return sub


def change_units(actor, item: SubscriptionItem, units) -> UnitChange | None:
    """Change units from today; billed prorated to the day on the invoice of this period."""
    sub = item.subscription
    if sub.status == "cancelled":
        raise Conflict("A cancelled subscription cannot change.")
    errors = Errors()
    new_units = decimal_field(errors, "units", units, places=4)
    errors.raise_if_any()
    if new_units == item.units:
        return None
    effective = max(today(), sub.next_period_start)
    with atomic():
        change = UnitChange(item_id=item.id, effective_on=effective, old_units=item.units, new_units=new_units,
                            actor_id=getattr(actor, "id", None), created_at=utcnow_naive())
        item.units = new_units
        db.session.add(change)
        db.session.flush()
        audit.record(actor, "subscription.units", sub, org_id=sub.org_id,
                     summary=f"{item.service.name}: {plain(change.old_units, 0)} → {plain(new_units, 0)} "
                             f"from {effective}")
    return change


def add_item(actor, sub: Subscription, service_id, units, unit_price=None) -> SubscriptionItem:
    """A new service joins the subscription from today: it is a change from 0 units."""
    errors = Errors()
    cleaned = _items(errors, sub.provider_id, sub.currency,
                     [{"service_id": service_id, "units": units, "unit_price": unit_price}])
    errors.raise_if_any()
    service, units, price = cleaned[0]
    with atomic():
        item = SubscriptionItem(subscription=sub, service_id=service.id, units=Decimal(0), unit_price=price,
                                created_at=utcnow_naive())
        db.session.add(item)
        db.session.flush()
        change_units(actor, item, units)
    return item


def set_auto_deduction(actor, sub: Subscription, enabled: bool) -> Subscription:
    with atomic():
        sub.auto_deduction = bool(enabled)
        audit.record(actor, "subscription.auto_deduction", sub, org_id=sub.org_id, summary=f"{sub.name}: {enabled}")
    return sub


def set_status(actor, sub: Subscription, action: str) -> Subscription:
    """suspend | resume | cancel. Cancelling bills the started period up to today."""
    if action == "cancel":
        if sub.status == "cancelled":
            raise Conflict("Already cancelled.")
        with atomic():
            sub.status = "cancelled"
            sub.cancelled_on = max(today(), sub.next_period_start)  # in a trial: nothing to bill
            audit.record(actor, "subscription.cancel", sub, org_id=sub.org_id, summary=sub.name)
            sub_id = sub.id
            after_commit(lambda: _terminated(sub_id))
        return sub
    if action not in STATUS_CHANGES:
        raise ValidationError("Unknown action.", {"action": "suspend, resume or cancel"})
    before, after = STATUS_CHANGES[action]
    if sub.status != before:
        raise Conflict(f"Only a {before} subscription can be {action}d.")
    with atomic():
        sub.status = after
        audit.record(actor, f"subscription.{action}", sub, org_id=sub.org_id, summary=sub.name)
    return sub


def view(sub: Subscription):
    from ..contracts import ResourceView, SubscriptionView

    return SubscriptionView(id=sub.id, org=party(sub.org), status=sub.status, resources=tuple(
        ResourceView(subscription_id=sub.id, item_id=i.id, service_code=i.service.code, description=i.service.name,
                     units=i.units) for i in sub.items if i.units > 0))


def _terminated(sub_id: int) -> None:
    """After commit: provisioning integrations release every resource, then hear of the subscription."""
    sub = db.session.get(Subscription, sub_id)
    hooks = host().hooks(sub.provider_id)
    ctx = provider_context(sub.provider_id)
    subscription_view = view(sub)
    for resource in subscription_view.resources:
        hooks.kassa_resource_terminate(resource=resource, ctx=ctx)
    hooks.kassa_subscription_terminated(subscription=subscription_view, ctx=ctx)
