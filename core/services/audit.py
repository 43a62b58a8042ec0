from __future__ import annotations

from ..clock import utcnow_naive
from ..extensions import db
from ..models import AuditEvent


def record(actor, action: str, obj=None, *, provider_id: int | None = None, org_id: int | None = None,
           summary: str = "", details: dict | None = None) -> AuditEvent:
    """Add an audit event to the current transaction (the caller's atomic block commits it)."""
    if provider_id is None:
        provider_id = actor.org.provider_id
    event = AuditEvent(
        provider_id=provider_id,
        org_id=org_id,
        actor_id=getattr(actor, "id", None),
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "id", "") or ""),
        summary=summary[:500],
        details=details or {},
        at=utcnow_naive(),
    )
    db.session.add(event)
    return event
