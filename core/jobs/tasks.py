"""Job entry points: thin wrappers over services."""
from __future__ import annotations

from ..services import maintenance


def prune_login_attempts() -> int:
    return maintenance.prune_login_attempts()


def deliver_email(message_id: int) -> str:
    from ..services import notifications

    return notifications.deliver(message_id)


def run_billing(run_id: int) -> dict:
    from ..services import billing_run

    return billing_run.execute(run_id)


def scheduled_billing() -> list[int]:
    """Start a billing run for every provider that has no run in progress, and
    resume any run left stalled (its jobs lost with Redis' data, its worker dead)."""
    from sqlalchemy import select

    from ..extensions import db
    from ..models import Organisation
    from ..services import billing_run
    from ..services.errors import Conflict

    billing_run.resume_stalled()
    started = []
    for provider_id in db.session.scalars(select(Organisation.id).where(Organisation.kind == "provider")):
        try:
            started.append(billing_run.start(None, provider_id).id)
        except Conflict:
            continue
    return started


def deliver_emails(message_ids: list[int]) -> dict:
    """Deliver a batch of queued messages; one failure does not stop the others
    (a failed message keeps its attempt count and error, and stays queued)."""
    from ..services import notifications

    sent = failed = 0
    for message_id in message_ids:
        try:
            notifications.deliver(message_id)
            sent += 1
        except Exception:
            failed += 1
    return {"sent": sent, "failed": failed}


def run_billing_chunk(run_id: int, subscription_ids: list[int]) -> dict:
    from ..services import billing_run

    return billing_run.run_chunk(run_id, subscription_ids)


def auto_deduct(invoice_ids: list[int]) -> dict:
    from ..services import charges

    return charges.auto_deduct(invoice_ids)


def reconcile_payments() -> int:
    from ..services import charges

    return charges.reconcile()


def dunning_sweep() -> dict:
    """The daily dunning sweep over every provider (declared by the dunning plugin)."""
    from ..services import dunning

    return dunning.sweep()
