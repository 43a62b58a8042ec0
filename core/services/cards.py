"""Cards on file and the Credit Card Settings of seed 000: enforcement (with the
trial exception and the exemption list), one card for several organisations,
the validity deduction credited to the wallet, and blocking after declines."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from ..clock import utcnow_naive
from ..contracts import GatewayDeclined, GatewayUnavailable, SaveMethodRequest
from ..extensions import db
from ..models import CardExemption, CardSettings, Organisation, PaymentMethod, Subscription
from . import audit, gateways, scope, settings
from .cache import invalidate, memo
from .context import party
from .errors import Conflict, NotFound, ServiceError, ValidationError
from .uow import atomic
from .validate import Errors, decimal_field


def card_settings(provider_id: int) -> CardSettings:
    found = db.session.get(CardSettings, provider_id)
    return found or CardSettings(provider_id=provider_id, enforce_card=False, except_trial=True,
                                 link_multiple_accounts=False, validity_deduction=False,
                                 validity_amount=Decimal("1"), max_declines=3, updated_at=utcnow_naive())


def update_card_settings(actor, data: dict) -> CardSettings:
    provider_id = actor.org.provider_id
    precision = settings.config(provider_id).precision
    errors = Errors()
    amount = decimal_field(errors, "validity_amount", data.get("validity_amount", "1"), positive=True,
                           places=precision)
    try:
        declines = int(data.get("max_declines", 3))
        if not 1 <= declines <= 20:
            raise ValueError
    except (TypeError, ValueError):
        errors["max_declines"] = "A whole number from 1 to 20."
        declines = 3
    exemptions = []
    for org_id in data.get("exemptions") or ():
        try:
            org = scope.get_org(actor, org_id)
        except NotFound:
            errors["exemptions"] = "Choose organisations you manage."
            continue
        if org.kind == "provider":
            errors["exemptions"] = "The provider itself needs no exemption."
        exemptions.append(org.id)
    errors.raise_if_any()
    with atomic():
        cs = card_settings(provider_id)
        for key in ("enforce_card", "except_trial", "link_multiple_accounts", "validity_deduction"):
            setattr(cs, key, bool(data.get(key)))
        cs.validity_amount, cs.max_declines, cs.updated_at = amount, declines, utcnow_naive()
        db.session.add(cs)
        current = {e.org_id: e for e in db.session.scalars(select(CardExemption).filter_by(provider_id=provider_id))}
        for org_id in set(current) - set(exemptions):
            db.session.delete(current[org_id])
        for org_id in set(exemptions) - set(current):
            db.session.add(CardExemption(provider_id=provider_id, org_id=org_id))
        invalidate("cards")
        audit.record(actor, "settings.cards", cs, summary=f"enforce {cs.enforce_card}, declines {declines}",
                     details={k: str(v) for k, v in data.items() if k != "csrf_token"})
    return cs


def exemption_ids(provider_id: int) -> set[int]:
    return set(db.session.scalars(select(CardExemption.org_id).filter_by(provider_id=provider_id)))


def active_card(org_id: int) -> PaymentMethod | None:
    return db.session.scalar(select(PaymentMethod).where(PaymentMethod.org_id == org_id,
                                                         PaymentMethod.status.in_(("active", "blocked")))
                             .order_by(PaymentMethod.id.desc()))


def enforcement_applies(org: Organisation) -> bool:
    """Must this organisation have a card? Seed 000: every customer and reseller when
    enforced, except exempted ones and — with "Except Trial Customer" — one whose only
    subscription is a single trial."""
    if org.kind == "provider":
        return False
    cs = memo(("cards", org.provider_id), lambda: card_settings(org.provider_id))
    if not cs.enforce_card or org.id in exemption_ids(org.provider_id):
        return False
    if cs.except_trial:
        statuses = list(db.session.scalars(select(Subscription.status).where(
            Subscription.org_id == org.id, Subscription.status != "cancelled")))
        if statuses == ["trial"]:
            return False
    return True


def card_required(org: Organisation) -> bool:
    """Enforcement applies and no usable card is configured."""
    if not enforcement_applies(org):
        return False
    card = active_card(org.id)
    return card is None or card.status != "active"


@dataclass(frozen=True)
class CardStatus:
    org: Organisation
    configured: bool
    status: str  # Active | Blocked | —
    brand: str = ""
    last4: str = ""
    gateway: str = ""


def status_of(org: Organisation) -> CardStatus:
    card = active_card(org.id)
    if card is None:
        return CardStatus(org=org, configured=False, status="—")
    return CardStatus(org=org, configured=True, status="Blocked" if card.status == "blocked" else "Active",
                      brand=card.brand, last4=card.last4, gateway=card.gateway)


def add_card(actor, org: Organisation, token: str, gateway_id: str | None = None) -> PaymentMethod:
    """Save a card (the gateway's token, never a number) as the organisation's card.
    With the validity deduction on, the card is charged that amount first and, on
    success, the amount is credited to the organisation's wallet."""
    from . import charges

    token = (token or "").strip()
    if not token:
        raise ValidationError("Add the card with the gateway's form first.", {"token": "Required."})
    currency = settings.config(org.provider_id).currency
    info = gateways.enabled(org.provider_id).get(gateway_id) if gateway_id else \
        gateways.card_gateway(org.provider_id, currency)
    if info is None or not info.saves_cards:
        raise ServiceError("No payment gateway that keeps cards is enabled for this provider.")
    previous = active_card(org.id)
    try:
        saved = gateways.call(org.provider_id, "kassa_gateway_save_method", info.id, request=SaveMethodRequest(
            idempotency_key=f"method:{org.id}:{token}", org=party(org), token=token,
            customer_reference=previous.customer_reference if previous else ""))
    except (GatewayDeclined, ValueError) as exc:
        raise ValidationError(f"{info.name} refused the card: {exc}", {"token": str(exc)}) from None
    except GatewayUnavailable as exc:
        raise ServiceError(f"{info.name} could not be reached; try again in a moment. ({exc})") from None
    cs = card_settings(org.provider_id)
    if saved.fingerprint and not cs.link_multiple_accounts:
        other = db.session.scalar(select(PaymentMethod.org_id).where(
            PaymentMethod.provider_id == org.provider_id, PaymentMethod.fingerprint == saved.fingerprint,
            PaymentMethod.org_id != org.id, PaymentMethod.status != "removed"))
        if other:
            raise Conflict("This card is already configured for another organisation, and one card may not be "
                           "linked to several accounts.", {"token": "Use a different card."})
    with atomic():
        method = PaymentMethod(provider_id=org.provider_id, org_id=org.id, gateway=info.id,
                               reference=saved.reference, customer_reference=saved.customer_reference,
                               brand=saved.brand, last4=saved.last4[-4:], exp_month=saved.exp_month,
                               exp_year=saved.exp_year, fingerprint=saved.fingerprint,
                               status="pending" if cs.validity_deduction else "active", created_at=utcnow_naive())
        db.session.add(method)
        db.session.flush()
        audit.record(actor, "card.add", method, org_id=org.id, provider_id=org.provider_id,
                     summary=f"{saved.brand} •••• {saved.last4} at {info.id}")
    if cs.validity_deduction:
        payment = charges.validate_card(actor, method, cs.validity_amount)
        if payment.status != "succeeded":
            with atomic():
                method.status = "removed"
            raise Conflict(f"The card could not be validated: {payment.decline_reason or payment.status}.",
                           {"token": payment.decline_reason or "Validation charge failed."})
        with atomic():
            method.status = "active"
    if previous is not None:
        with atomic():
            previous.status = "removed"
    return method


def remove_card(actor, org: Organisation) -> None:
    card = active_card(org.id)
    if card is None:
        raise NotFound("No card configured")
    with atomic():
        card.status = "removed"
        audit.record(actor, "card.remove", card, org_id=org.id, provider_id=org.provider_id,
                     summary=f"{card.brand} •••• {card.last4}")


def record_decline(method: PaymentMethod) -> bool:
    """Count a failed charge; block the card at the provider's limit. True when blocked now."""
    cs = card_settings(method.provider_id)
    method.declines += 1
    if method.status == "active" and method.declines >= cs.max_declines:
        method.status = "blocked"
        method.blocked_at = utcnow_naive()
        return True
    return False


def statuses(user) -> list[CardStatus]:
    orgs = db.session.scalars(scope.orgs_query(user).where(Organisation.kind != "provider")
                              .order_by(Organisation.name)).all()
    return [status_of(o) for o in orgs]


def count_blocked(provider_id: int) -> int:
    return db.session.scalar(select(func.count(PaymentMethod.id)).where(
        PaymentMethod.provider_id == provider_id, PaymentMethod.status == "blocked")) or 0
