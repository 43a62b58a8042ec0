"""Housekeeping that the schedule runs."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from ..clock import utcnow_naive
from ..extensions import db
from ..models import LoginAttempt
from .uow import atomic

LOGIN_ATTEMPT_RETENTION = timedelta(days=30)


def prune_login_attempts() -> int:
    """Forget sign-in attempts older than the retention period; return how many."""
    with atomic():
        result = db.session.execute(delete(LoginAttempt).where(LoginAttempt.at < utcnow_naive() - LOGIN_ATTEMPT_RETENTION))
    return result.rowcount or 0
