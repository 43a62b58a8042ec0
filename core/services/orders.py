"""Orders: seed 004 "Create Invoice" and "Pay Invoice".

A reseller admin (or the provider) orders services for a *new* customer
organisation. :func:`place` writes, in one transaction, the customer, its primary
contact (a customer admin with a random password), the order and its invoice —
the ordered services at their prices in the buyer's currency
(:func:`settings.currency_for`), tax from the tax-engine hook — and queues one
e-mail with the invoice, a signed link to it and the sign-in details; it is
delivered after commit.

The link is a signed, expiring token (:func:`invoice_link`), never a guessable
URL. Paying the invoice activates the order: :func:`activate_for_invoice` is
called after every recorded payment (``payments.record_payment``), whichever way
it arrives (the gateway's return page, a webhook, reconciliation, an offline
payment), and creates the order's subscription exactly once.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from decimal import Decimal

import phonenumbers
from flask import current_app, has_request_context, render_template, url_for
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from ..clock import now, today, utcnow_naive
from ..extensions import db
from ..models import CUSTOMER, Invoice, LedgerTransaction, Order, OrderLine, Organisation, OutboxMessage, User
from ..models.orders import ACTIVE, PENDING
from ..money import plain, round_money
from ..permissions import CUSTOMER_ADMIN, RESELLER_SUBADMIN, STAFF, can, effective_privileges
from . import audit, catalog, invoicing, notifications, orgs, scope, settings, subscriptions, users
from .errors import Forbidden, NotFound, ServiceError, ValidationError
from .issuing import DraftLine
from .periods import period_end
from .uow import atomic
from .validate import Errors, text_field

log = logging.getLogger(__name__)

#: the order form's fields, in the seed's order (the API takes the same names)
FIELDS = ("organization_name", "contact_name", "address_line1", "address_line2", "city", "state", "country",
          "postal_code", "mobile", "contact_email", "kyc_id", "technical_admin")
REQUIRED = ("organization_name", "contact_name", "address_line1", "address_line2", "city", "state", "country",
            "postal_code", "mobile", "contact_email")
MAX_LENGTH = {"organization_name": 200, "contact_name": 200, "address_line1": 200, "address_line2": 200,
              "city": 100, "state": 100, "postal_code": 20, "kyc_id": 40, "technical_admin": 254}
#: the organisation's fields, as the order form names them
ORG_FIELD_NAMES = {"name": "organization_name", "email": "contact_email", "phone": "mobile", "tax_id": "kyc_id",
                   "address_line1": "address_line1", "address_line2": "address_line2", "city": "city",
                   "state": "state", "postal_code": "postal_code", "country": "country"}
#: who may be the technical administrator: a sub-admin of the ordering organisation
SUBADMIN_ROLES = {"reseller": RESELLER_SUBADMIN, "provider": STAFF}
#: what the technical administrator needs to implement the order
DELEGATED = frozenset({"orgs.view", "subscriptions.manage"})
MAX_UNITS = Decimal(1_000_000)
MOBILE_RE = re.compile(r"^\+(\d{1,3})-(\d{4,14})$")
LINK_SALT = "kassa.orders.invoice-link"
DEFAULT_LINK_DAYS = 30


class BadLink(ServiceError):
    status = 400


class ExpiredLink(ServiceError):
    status = 410


# ------------------------------------------------------------------ reading


def can_order(user) -> bool:
    """Placing an order creates an organisation and issues an invoice."""
    return user.org.kind in SUBADMIN_ROLES and can(user, "orgs.manage") and can(user, "invoices.manage")


def orders_query(user):
    """Orders for the organisations ``user`` may see, newest first."""
    return (select(Order).where(Order.provider_id == user.org.provider_id,
                                Order.org_id.in_(scope.visible_org_ids(user)))
            .order_by(Order.id.desc()))


def get_order(user, order_id) -> Order:
    try:
        order_id = int(order_id)
    except (TypeError, ValueError):
        raise NotFound("Order not found") from None
    order = db.session.scalar(orders_query(user).where(Order.id == order_id))
    if order is None:
        raise NotFound("Order not found")
    return order


def services_for(provider_id: int, currency: str) -> list[tuple]:
    """(service, price) of every active service priced in ``currency``: the order form's choices."""
    rows = db.session.scalars(catalog.services_query(provider_id, active_only=True)).all()
    return [(s, s.price(currency)) for s in rows if s.price(currency) is not None]


def invoice_summary(order: Order) -> dict:
    """The order's invoice: number, total, status, what is due and whether it can be paid online."""
    invoice = db.session.get(Invoice, order.invoice_id)
    due = invoicing.amount_due(invoice)
    return {"invoice": invoice, "status": invoicing.status(invoice), "due": due,
            "online": settings.online_payment_allowed(invoice.provider_id, invoice.currency, due),
            "minimum": settings.online_minimum(invoice.provider_id, invoice.currency)}


# ------------------------------------------------------------------ checking the form


def clean_mobile(value: str) -> str:
    """``+<CountryCode>-<Number>`` (seed 004: +91-9382126757): a real calling code and a
    number valid for it."""
    text = (value or "").strip()
    match = MOBILE_RE.match(text)
    if match is None:
        raise ValidationError("Invalid mobile.", {"mobile": "Write the mobile as +<CountryCode>-<Number>, "
                                                            "e.g. +91-9382126757."})
    code, number = int(match.group(1)), match.group(2)
    region = phonenumbers.region_code_for_country_code(code)
    if region == phonenumbers.UNKNOWN_REGION:
        raise ValidationError("Invalid mobile.", {"mobile": f"+{code} is not a country calling code."})
    try:
        parsed = phonenumbers.parse(f"+{code}{number}")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValidationError("Invalid mobile.", {"mobile": f"{number} is not a valid number for +{code} ({region})."})
    return f"+{code}-{number}"


def clean_postal_code(value: str, country: str) -> str:
    text = (value or "").strip()
    if country == "IN":
        if not re.fullmatch(r"\d{6}", text):
            raise ValidationError("Invalid PIN code.", {"postal_code": "An Indian PIN code is exactly 6 digits, "
                                                                      "e.g. 600001."})
    elif country == "US":
        if not re.fullmatch(r"\d{5}(-\d{4})?", text):
            raise ValidationError("Invalid ZIP code.", {"postal_code": "A US ZIP code is 5 digits (or ZIP+4: "
                                                                       "12345-6789)."})
    elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{1,11}", text):
        raise ValidationError("Invalid postal code.", {"postal_code": "Letters, digits, spaces or '-', "
                                                                      "up to 12 characters."})
    return text.upper()


def _technical_admin(actor, email: str, errors: Errors) -> User | None:
    """An active sub-admin of the ordering organisation, who can be given what the order needs."""
    if not email:
        return None
    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower(),
                                                User.org_id == actor.org_id))
    role = SUBADMIN_ROLES.get(actor.org.kind)
    if user is None or user.role != role or not user.active:
        errors["technical_admin"] = (f"Not an active sub-admin of {actor.org.name}: create the sub-admin "
                                     f"first, or leave the field empty.")
        return None
    beyond = (DELEGATED - effective_privileges(user)) - effective_privileges(actor)
    if beyond:
        errors["technical_admin"] = ("You cannot delegate privileges you do not hold: " +
                                     ", ".join(sorted(beyond)) + ".")
        return None
    return user


def clean_customer(actor, data: dict) -> tuple[dict, Errors]:
    """Step one of the form: the customer's details, checked without writing anything.
    Returns the cleaned values and the field errors (empty when all is well)."""
    errors = Errors()
    out = {}
    for name in FIELDS:
        out[name] = text_field(errors, name, data.get(name), required=name in REQUIRED,
                               max_length=MAX_LENGTH.get(name, 254))
    if out["country"]:
        try:
            out["country"] = orgs.clean_country(out["country"])
        except ValidationError as exc:
            errors["country"] = exc.field_errors.get("country", exc.message)
    country_ok = bool(out["country"]) and "country" not in errors
    if out["postal_code"] and country_ok and "postal_code" not in errors:
        try:
            out["postal_code"] = clean_postal_code(out["postal_code"], out["country"])
        except ValidationError as exc:
            errors.update(exc.field_errors)
    if out["mobile"] and "mobile" not in errors:
        try:
            out["mobile"] = clean_mobile(out["mobile"])
        except ValidationError as exc:
            errors.update(exc.field_errors)
    if out["contact_email"] and "contact_email" not in errors:
        try:
            out["contact_email"] = orgs.clean_email(out["contact_email"], field="contact_email")
        except ValidationError as exc:
            errors.update(exc.field_errors)
        else:
            if db.session.scalar(select(User.id).where(func.lower(User.email) == out["contact_email"])):
                errors["contact_email"] = ("A user with this e-mail already exists: the contact of a new "
                                           "organisation needs an e-mail of its own.")
    if out["kyc_id"] and country_ok:
        # the organisation's own check: the tax engine of the country (GSTIN in India), state must match
        checked = {"country": out["country"], "state": out["state"], "tax_id": out["kyc_id"]}
        for name, message in orgs._check_tax_id(actor.org.provider_id, checked).items():
            errors.setdefault(ORG_FIELD_NAMES.get(name, name), message)
        out["kyc_id"] = checked["tax_id"]
    out["technical_admin_user"] = _technical_admin(actor, out["technical_admin"], errors)
    return out, errors


def clean_items(errors: Errors, provider_id: int, currency: str | None, items) -> list[tuple]:
    """Step two: (service, units, price per unit per month in ``currency``) per filled row.
    Errors are keyed ``items.<row>.service_id`` / ``items.<row>.units`` by the row as sent."""
    cleaned, seen = [], set()
    for i, item in enumerate(items or ()):
        if not isinstance(item, dict):
            errors[f"items.{i}.service_id"] = "Each item is an object with service_id and units."
            continue
        service_ref = item.get("service_id")
        units_raw = item.get("units")
        if str(service_ref if service_ref is not None else "").strip() == "" and \
                str(units_raw if units_raw is not None else "").strip() == "":
            continue  # an empty row of the form
        service = None
        try:
            service = catalog.get_service(provider_id, service_ref)
        except NotFound:
            errors[f"items.{i}.service_id"] = "Unknown service: choose one from the catalogue."
        if service is not None and not service.active:
            errors[f"items.{i}.service_id"] = f"{service.name} is no longer sold."
            service = None
        if service is not None and service.id in seen:
            errors[f"items.{i}.service_id"] = f"{service.name} is already on the order: change its units instead."
            service = None
        price = None
        if service is not None:
            seen.add(service.id)
        if service is not None and currency is not None:
            price = service.price(currency)
            if price is None:
                errors[f"items.{i}.service_id"] = f"{service.name} has no {currency} price."
        units = _units(errors, f"items.{i}.units", units_raw)
        if service is not None and price is not None and units is not None:
            cleaned.append((service, units, price))
    if not cleaned and not any(k.startswith("items") for k in errors):
        errors["items"] = "Add at least one service and its units."
    return cleaned


def _units(errors: Errors, field: str, value) -> Decimal | None:
    text = str(value if value is not None else "").strip()
    if not text:
        errors[field] = "Required: the number of units."
        return None
    try:
        units = Decimal(text)
    except ArithmeticError:
        errors[field] = "Enter a whole number of units."
        return None
    if not units.is_finite() or units != units.to_integral_value():
        errors[field] = "Enter a whole number of units."
    elif units <= 0:
        errors[field] = "Units must be more than zero."
    elif units > MAX_UNITS:
        errors[field] = f"At most {plain(MAX_UNITS, 0)} units."
    else:
        return units.quantize(Decimal(1))
    return None


# ------------------------------------------------------------------ placing an order


def place(actor, data: dict) -> Order:
    """Seed 004 "Add": the customer, its primary contact, the order and its invoice in
    one transaction (nothing is written when any field is wrong); the e-mail with the
    invoice, its link and the sign-in details goes out after commit."""
    if not can_order(actor):
        raise Forbidden("Placing orders needs the privileges to create organisations and invoices.")
    provider_id = actor.org.provider_id
    customer, errors = clean_customer(actor, data)
    currency = settings.currency_for(provider_id, customer["country"]) if customer["country"] and \
        "country" not in errors else None
    items = clean_items(errors, provider_id, currency, data.get("items"))
    errors.raise_if_any()
    provider = db.session.get(Organisation, provider_id)
    precision = settings.config(provider_id).precision
    password = secrets.token_urlsafe(12)
    technical_admin = customer["technical_admin_user"]
    try:
        with atomic():
            org = orgs.create_org(actor, kind=CUSTOMER, parent=actor.org, name=customer["organization_name"],
                                  email=customer["contact_email"], phone=customer["mobile"],
                                  address_line1=customer["address_line1"], address_line2=customer["address_line2"],
                                  city=customer["city"], state=customer["state"],
                                  postal_code=customer["postal_code"], country=customer["country"],
                                  tax_id=customer["kyc_id"])
            contact = users.create_user(actor, org, email=customer["contact_email"], name=customer["contact_name"],
                                        password=password, role=CUSTOMER_ADMIN, primary=True)
            order = Order(provider_id=provider_id, ordering_org_id=actor.org_id, org_id=org.id,
                          contact_user_id=contact.id, technical_admin_id=getattr(technical_admin, "id", None),
                          currency=currency, contact_name=customer["contact_name"],
                          contact_email=customer["contact_email"], mobile=customer["mobile"], status=PENDING,
                          activation_error="", created_by_id=actor.id, created_at=utcnow_naive())
            db.session.add(order)
            db.session.flush()
            for position, (service, units, price) in enumerate(items, start=1):
                db.session.add(OrderLine(order_id=order.id, position=position, service_id=service.id, units=units,
                                         unit_price=price))
            invoice = invoicing.issue(
                provider=provider, buyer=org, issue_date=today(), kind="order", notes=f"Order {order.number}",
                actor=actor, lines=[DraftLine(description=f"{service.name} (first month)", quantity=units,
                                              unit_price=price, amount=round_money(units * price, precision),
                                              taxable=service.taxable, tax_code=service.tax_code,
                                              service_id=service.id) for service, units, price in items])
            if invoice.currency != currency:
                raise ServiceError(f"The invoice came out in {invoice.currency}, not the order's {currency}.")
            order.invoice_id = invoice.id
            if technical_admin is not None:
                _delegate(actor, order, technical_admin)
            _queue_email(order, invoice, provider, org, contact, password)
            audit.record(actor, "order.create", order, org_id=org.id,
                         summary=f"{order.number} for {org.name}: {len(items)} service(s), invoice {invoice.number} "
                                 f"{invoice.total} {invoice.currency}")
    except ValidationError as exc:  # the organisation's or user's own checks, named as the form names them
        raise ValidationError(exc.message, {ORG_FIELD_NAMES.get(k, k): v for k, v in exc.field_errors.items()}) \
            from None
    return order


def _delegate(actor, order: Order, technical_admin: User) -> None:
    """The technical administrator implements the order: give it what that needs (audited)."""
    missing = DELEGATED - effective_privileges(technical_admin)
    if missing:
        users.set_privileges(actor, technical_admin, sorted(set(technical_admin.privileges or ()) | missing))
    audit.record(actor, "order.delegate", order, org_id=order.org_id,
                 summary=f"{order.number}: implementation delegated to {technical_admin.email}",
                 details={"technical_admin": technical_admin.email, "granted": sorted(missing)})


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT, signer=_ClockSigner)


class _ClockSigner(TimestampSigner):
    """Timestamps from Kassa's clock, so a link's age follows the clock every service uses."""

    def get_timestamp(self) -> int:
        return int(now().timestamp())


def link_max_age() -> int:
    return int(current_app.config.get("KASSA_INVOICE_LINK_DAYS", DEFAULT_LINK_DAYS)) * 86400


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for an e-mail: under ``KASSA_BASE_URL`` (the console's public
    address, e.g. https://cp.example.com) when set, else the request's own host."""
    base = current_app.config.get("KASSA_BASE_URL") or os.environ.get("KASSA_BASE_URL")
    if not base and (has_request_context() or current_app.config.get("SERVER_NAME")):
        return url_for(endpoint, _external=True, **values)
    if not base:
        raise ServiceError("Links in e-mails need the console's address: set KASSA_BASE_URL "
                           "(e.g. https://cp.example.com).")
    with current_app.test_request_context(base_url=base.rstrip("/") + "/"):
        return url_for(endpoint, _external=True, **values)


def invoice_link(order: Order) -> str:
    """The e-mailed link to the order's invoice: a signed token that expires."""
    token = _serializer().dumps({"order": order.id, "invoice": order.invoice_id})
    return external_url("orders.invoice_link", token=token)


def open_link(token: str) -> tuple[int, int]:
    """(order id, invoice id) of a link's token; a tampered or expired token is refused."""
    try:
        data = _serializer().loads(token, max_age=link_max_age())
    except SignatureExpired:
        raise ExpiredLink("This invoice link has expired. Sign in and open Invoices to see and pay the "
                          "invoice.") from None
    except BadSignature:
        raise BadLink("This invoice link is not valid: it may be incomplete or altered. Use the link in "
                      "the e-mail as it is, or sign in and open Invoices.") from None
    if not isinstance(data, dict) or not isinstance(data.get("order"), int) or \
            not isinstance(data.get("invoice"), int):
        raise BadLink("This invoice link is not valid.")
    return data["order"], data["invoice"]


def _queue_email(order: Order, invoice: Invoice, provider: Organisation, org: Organisation, contact: User,
                 password: str) -> None:
    """One e-mail: the invoice (its PDF attached at delivery), the link and the sign-in
    details. It replaces the plain invoice e-mail queued by the issuer in this
    transaction, so the contact gets one message, sent once the order is committed."""
    minimum = settings.online_minimum(provider.id, invoice.currency)
    context = {"order": order, "invoice": invoice, "org": org, "provider": provider, "contact": contact,
               "username": contact.email, "password": password, "link": invoice_link(order),
               "login_url": external_url("auth.login"), "minimum": minimum,
               "online": settings.online_payment_allowed(provider.id, invoice.currency, invoice.total)}
    subject = f"Invoice {invoice.number} for your order {order.number} from {provider.name}"
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.invoice_id == invoice.id,
                                                            OutboxMessage.template == "invoice_issued"))
    if message is None:
        notifications.queue(provider_id=provider.id, org=org, to_email=order.contact_email, template="order_invoice",
                            subject=subject, context=context, invoice_id=invoice.id)
        return
    message.template = "order_invoice"
    message.to_email = order.contact_email
    message.subject = subject[:300]
    message.body_text = render_template("email/order_invoice.txt", **context)
    message.body_html = render_template("email/order_invoice.html", **context)


# ------------------------------------------------------------------ activation on payment


def activate_for_invoice(invoice_id: int) -> Order | None:
    """Once the order's invoice is paid: its subscription (active, the ordered services
    and units at the ordered prices, anchored at the payment date; the first month
    is the order's invoice, so recurring billing starts with the second). Called
    after every recorded payment; idempotent under a lock on the order."""
    order_id = db.session.scalar(select(Order.id).where(Order.invoice_id == invoice_id))
    if order_id is None:
        return None
    try:
        with atomic():
            order = db.session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                                      .execution_options(populate_existing=True))
            if order.status == ACTIVE:
                return order
            invoice = db.session.get(Invoice, invoice_id)
            if invoicing.status(invoice) != invoicing.PAID:
                return order
            paid_on = db.session.scalar(select(func.max(LedgerTransaction.occurred_at)).where(
                LedgerTransaction.invoice_id == invoice_id,
                LedgerTransaction.kind.in_(("payment", "wallet_applied"))))
            start = paid_on.date() if paid_on is not None else today()
            actor = order.created_by  # on behalf of whoever placed the order
            sub = subscriptions.create(actor, order.org, {
                "name": f"Order {order.number}", "cycle": "monthly", "start_date": start,
                "items": [{"service_id": line.service_id, "units": line.units, "unit_price": line.unit_price}
                          for line in order.lines]})
            sub.next_period_start = period_end(sub.anchor_date, sub.cycle, sub.anchor_date)
            order.subscription_id = sub.id
            order.status = ACTIVE
            order.activated_at = utcnow_naive()
            order.activation_error = ""
            audit.record(actor, "order.activate", order, org_id=order.org_id, provider_id=order.provider_id,
                         summary=f"{order.number} active from {start} (invoice {invoice.number} paid): "
                                 f"subscription #{sub.id}")
        return order
    except ServiceError as exc:
        db.session.rollback()
        reason = "; ".join([exc.message] + [f"{k}: {v}" for k, v in exc.field_errors.items()])
        log.warning("order %s paid but not activated: %s", order_id, reason)
        with atomic():
            order = db.session.get(Order, order_id, populate_existing=True)
            if order.status != ACTIVE:
                order.activation_error = reason[:500]
        return order


def retry_activation(actor, order: Order) -> Order:
    """The console's "Activate" after an activation failed (a service withdrawn meanwhile, say)."""
    if order.status == ACTIVE:
        return order
    summary = invoice_summary(order)
    if summary["status"] != invoicing.PAID:
        raise ServiceError(f"Invoice {summary['invoice'].number} is not paid yet: the order activates on payment.")
    activated = activate_for_invoice(order.invoice_id)
    if activated.status != ACTIVE:
        raise ServiceError(f"{order.number} could not be activated: {activated.activation_error}")
    with atomic():
        audit.record(actor, "order.activate_retry", activated, org_id=activated.org_id, summary=activated.number)
    return activated


__all__ = ["FIELDS", "REQUIRED", "place", "clean_customer", "clean_items", "activate_for_invoice", "retry_activation",
           "orders_query", "get_order", "services_for", "invoice_summary", "invoice_link", "open_link",
           "can_order", "BadLink", "ExpiredLink"]
