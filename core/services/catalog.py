"""The service catalogue."""
from __future__ import annotations

from sqlalchemy import select

from ..clock import utcnow_naive
from ..extensions import db
from ..models import CATEGORIES, Service, ServicePrice
from ..money import MoneyError, check_currency
from . import audit
from .errors import NotFound
from .uow import atomic
from .validate import Errors, decimal_field, text_field


def services_query(provider_id: int, active_only: bool = False):
    query = select(Service).where(Service.provider_id == provider_id)
    if active_only:
        query = query.where(Service.active.is_(True))
    return query.order_by(Service.category, Service.name)


def get_service(provider_id: int, service_id) -> Service:
    try:
        service = db.session.get(Service, int(service_id))
    except (TypeError, ValueError):
        service = None
    if service is None or service.provider_id != provider_id:
        raise NotFound("Service not found")
    return service


def _clean(provider_id: int, data: dict, service: Service | None) -> tuple[dict, dict]:
    errors = Errors()
    out = {
        "code": text_field(errors, "code", data.get("code", service.code if service else ""), max_length=60),
        "name": text_field(errors, "name", data.get("name", service.name if service else "")),
        "category": text_field(errors, "category", data.get("category", service.category if service else ""),
                               max_length=40),
        "unit": text_field(errors, "unit", data.get("unit", service.unit if service else ""), max_length=40),
        "description": text_field(errors, "description", data.get("description", service.description if service
                                                                 else ""), required=False, max_length=500),
        "tax_code": text_field(errors, "tax_code", data.get("tax_code", service.tax_code if service else ""),
                               required=False, max_length=20),
        "taxable": bool(data.get("taxable", service.taxable if service else True)),
        "active": bool(data.get("active", service.active if service else True)),
    }
    if out["category"] and out["category"] not in CATEGORIES:
        errors["category"] = "Choose one of: " + ", ".join(CATEGORIES) + "."
    if out["code"] and not all(ch.isalnum() or ch in "-_." for ch in out["code"]):
        errors["code"] = "Letters, digits, '-', '_' and '.' only."
    existing = db.session.scalar(select(Service.id).filter_by(provider_id=provider_id, code=out["code"]))
    if existing and (service is None or existing != service.id):
        errors["code"] = "Another service has this code."
    prices = {}
    for currency, value in (data.get("prices") or {}).items():
        try:
            code = check_currency(currency)
        except MoneyError as exc:
            errors[f"prices.{currency}"] = str(exc)
            continue
        if value in (None, ""):
            continue
        amount = decimal_field(errors, f"prices.{code}", value, places=6)
        if amount is not None:
            prices[code] = amount
    errors.raise_if_any()
    return out, prices


def save_service(actor, data: dict, service: Service | None = None) -> Service:
    provider_id = actor.org.provider_id
    fields, prices = _clean(provider_id, data, service)
    with atomic():
        if service is None:
            service = Service(provider_id=provider_id, created_at=utcnow_naive(), **fields)
            db.session.add(service)
        else:
            for key, value in fields.items():
                setattr(service, key, value)
        current = {p.currency: p for p in service.prices}
        for currency, amount in prices.items():
            if currency in current:
                current[currency].unit_price = amount
            else:
                service.prices.append(ServicePrice(currency=currency, unit_price=amount))
        db.session.flush()
        audit.record(actor, "catalog.save", service, summary=f"{service.code} {service.name}",
                     details={"prices": {k: str(v) for k, v in prices.items()}})
    return service
