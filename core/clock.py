"""An injectable clock. Every service asks :func:`now` or :func:`today` instead of
``datetime.now()`` so tests (and the admin-only test clock) can move time."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

from flask import current_app, has_app_context


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FrozenClock:
    """A clock that stands still until told to move; thread-safe. Without ``start`` it
    stands at the real current time (the test clock of a demo starts from today)."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(timezone.utc).replace(microsecond=0)
        if self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    def advance(self, **delta) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


_fallback = SystemClock()


def get_clock():
    if has_app_context():
        return current_app.extensions.get("kassa_clock", _fallback)
    return _fallback


def now() -> datetime:
    """Aware UTC now from the app's clock."""
    return get_clock().now()


def utcnow_naive() -> datetime:
    """The clock's now as naive UTC, the form stored in DateTime columns."""
    return now().astimezone(timezone.utc).replace(tzinfo=None)


def today() -> date:
    return now().date()
