"""Plugin failures, recorded so every process's failures show on the Plugins page.

A plugin usually fails inside a service's transaction, which is then rolled back
(and on SQLite holds the only write lock). :func:`note` therefore keeps the
failure in memory (``flask.g``) and :func:`flush` writes it on a side connection
once the outermost ``atomic()`` block has ended, or at once when no block is
open. Failures are counted per provider, plugin and hour (see
:class:`~kassa.models.PluginFailureLog`); writing them never raises into the caller.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import g, has_app_context
from sqlalchemy import and_, delete, insert, or_, select, true, update

from ..clock import utcnow_naive
from ..extensions import db
from ..models import PluginFailureLog
from . import audit
from .errors import NotFound

log = logging.getLogger(__name__)
_PENDING = "_kassa_plugin_failures"
KEEP = timedelta(days=7)
WINDOW = timedelta(hours=24)
_T = PluginFailureLog.__table__


@dataclass(frozen=True)
class Health:
    """A failing plugin as the Plugins page shows it."""

    plugin: str
    hook: str
    error: str
    last_at: datetime
    count_24h: int


def note(failure, provider_id: int | None) -> None:
    """Keep ``failure`` (a :class:`~kassa.plugins.PluginFailure`) for writing; write now if no transaction is open."""
    if not has_app_context():  # start-up: the host marks the plugin broken instead
        return
    g.setdefault(_PENDING, []).append((provider_id, failure.plugin, failure.hook, failure.error[:1000],
                                      utcnow_naive()))
    from .uow import in_atomic

    if not in_atomic():
        flush()


def flush() -> None:
    """Write the failures noted in this app context (called when the outermost atomic block ends)."""
    if not has_app_context():
        return
    pending = g.pop(_PENDING, None)
    if not pending:
        return
    try:
        _write(pending)
    except Exception:  # the plugin's error is already logged; losing the count must not break the caller
        log.exception("could not record %d plugin failure(s)", len(pending))


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _provider_is(provider_id: int | None):
    return _T.c.provider_id.is_(None) if provider_id is None else _T.c.provider_id == provider_id


@contextmanager
def _side_connection():
    """A transaction of its own: the caller's session may have just rolled back,
    or (outside atomic) still be reading. SQLite: BEGIN IMMEDIATE, so the read and
    the update of a bucket are one step; PostgreSQL: never wait long on a lock."""
    from .uow import write_lock

    with write_lock(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        yield conn


def _write(pending: list[tuple]) -> None:
    buckets: dict[tuple, dict] = {}
    for provider_id, plugin, hook, error, at in pending:
        bucket = buckets.setdefault((provider_id, plugin, _hour(at)), {"count": 0, "at": at})
        bucket["count"] += 1
        if at >= bucket["at"]:
            bucket.update(at=at, hook=hook, error=error)
    with _side_connection() as conn:
        for (provider_id, plugin, hour), b in buckets.items():
            row_id = conn.scalar(select(_T.c.id).where(_provider_is(provider_id), _T.c.plugin == plugin,
                                                       _T.c.hour == hour).order_by(_T.c.id).limit(1))
            if row_id is None:
                conn.execute(insert(_T).values(provider_id=provider_id, plugin=plugin, hour=hour, hook=b["hook"],
                                               error=b["error"], count=b["count"], last_at=b["at"]))
            else:
                conn.execute(update(_T).where(_T.c.id == row_id).values(
                    count=_T.c.count + b["count"], hook=b["hook"], error=b["error"], last_at=b["at"],
                    resolved_at=None))
        conn.execute(delete(_T).where(_T.c.last_at < utcnow_naive() - KEEP))


def _visible(provider_id: int | None):
    """A provider sees its own failures and those outside any provider (start-up, global
    listings); ``None`` (the command line) sees every provider's."""
    if provider_id is None:
        return true()
    return or_(_T.c.provider_id == provider_id, _T.c.provider_id.is_(None))


def failing(provider_id: int | None = None) -> dict[str, Health]:
    """The plugins with an unresolved failure for this provider (``None``: any): name -> :class:`Health`."""
    since = _hour(utcnow_naive()) - WINDOW + timedelta(hours=1)  # the 24 hourly buckets up to now
    rows = db.session.execute(select(PluginFailureLog).where(_visible(provider_id))
                              .order_by(PluginFailureLog.last_at, PluginFailureLog.id)).scalars().all()
    unresolved = {r.plugin for r in rows if r.resolved_at is None}
    out: dict[str, Health] = {}
    for plugin in unresolved:
        mine = [r for r in rows if r.plugin == plugin]
        last = mine[-1]
        out[plugin] = Health(plugin=plugin, hook=last.hook, error=last.error, last_at=last.last_at,
                             count_24h=sum(r.count for r in mine if r.hour >= since))
    return out


def resolve(actor, plugin: str) -> int:
    """Mark ``plugin``'s failures as resolved for the actor's provider (the badge goes
    until the next failure); audited. Returns how many hourly rows it cleared."""
    from ..plugins import host
    from .uow import atomic

    if plugin not in host().records:
        raise NotFound("No such plugin")
    provider_id = actor.org.provider_id
    with atomic():
        cleared = db.session.execute(update(PluginFailureLog).where(and_(
            _visible(provider_id), PluginFailureLog.plugin == plugin, PluginFailureLog.resolved_at.is_(None)))
            .values(resolved_at=utcnow_naive())).rowcount
        audit.record(actor, "plugin.resolve", None, provider_id=provider_id,
                     summary=f"{plugin}: failure marked as resolved", details={"plugin": plugin})
    return cleared
