"""Signed gateway webhooks: verified by the gateway's plugin, each event applied
once (a replay hits the unique (gateway, event id) and changes nothing)."""
from __future__ import annotations

import logging

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..clock import utcnow_naive
from ..contracts import GatewayResult, WebhookSignatureError
from ..extensions import db
from ..models import Organisation, Payment, WebhookEvent
from . import charges, gateways
from .errors import NotFound, ServiceError
from .uow import atomic

log = logging.getLogger(__name__)
STATUS_BY_TYPE = {"charge.succeeded": "succeeded", "charge.failed": "declined", "charge.pending": "pending"}


class BadSignature(ServiceError):
    status = 400


def receive(provider_id: int, gateway_id: str, headers: dict, body: bytes) -> dict:
    provider = db.session.get(Organisation, provider_id)
    if provider is None or provider.kind != "provider" or gateway_id not in gateways.enabled(provider_id):
        raise NotFound("No such webhook endpoint")
    try:
        events = gateways.call(provider_id, "kassa_gateway_webhook", gateway_id, headers=headers, body=body)
    except WebhookSignatureError as exc:
        log.warning("webhook %s/%s refused: %s", provider_id, gateway_id, exc)
        raise BadSignature("The webhook signature does not verify.") from None
    applied = replayed = 0
    for event in events:
        try:
            with atomic():
                db.session.add(WebhookEvent(provider_id=provider_id, gateway=gateway_id, event_id=event.event_id,
                                            type=event.type, reference=event.reference, received_at=utcnow_naive()))
                db.session.flush()
                _apply(provider_id, gateway_id, event)
        except IntegrityError:
            db.session.rollback()
            replayed += 1
            continue
        applied += 1
    return {"applied": applied, "replayed": replayed}


def _apply(provider_id: int, gateway_id: str, event) -> None:
    status = STATUS_BY_TYPE.get(event.type)
    if status is None:
        return  # recorded, nothing to do
    clauses = [Payment.reference == event.reference] if event.reference else []
    if event.idempotency_key:
        clauses.append(Payment.idempotency_key == event.idempotency_key)
    if not clauses:
        return
    payment = db.session.scalar(select(Payment).where(Payment.provider_id == provider_id, Payment.gateway == gateway_id,
                                                      or_(*clauses)))
    if payment is None:
        log.info("webhook event %s for an unknown payment %s", event.event_id, event.reference)
        return
    charges.settle(payment.id, GatewayResult(status=status, reference=event.reference or payment.reference,
                                             decline_reason=event.decline_reason or (
                                                 "Declined (reported by webhook)" if status == "declined" else "")))
