"""One database transaction per command.

``atomic()`` commits when the outermost block ends and rolls everything back on
any exception, so a failed request leaves the database as it was. Nested blocks
(a service calling another) join the outer one. When the outermost block ends,
either way, the plugin failures noted meanwhile are written (they must survive
the rollback; see :mod:`kassa.services.plugin_health`).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar

from ..extensions import db

log = logging.getLogger(__name__)
_DEPTH = "kassa_atomic_depth"


_AFTER = "kassa_after_commit"
_write_lock: ContextVar[bool] = ContextVar("kassa_write_lock", default=False)


def wants_write_lock() -> bool:
    return _write_lock.get()


@contextmanager
def write_lock():
    """Connections begun inside this block start with BEGIN IMMEDIATE on SQLite."""
    token = _write_lock.set(True)
    try:
        yield
    finally:
        _write_lock.reset(token)


@contextmanager
def atomic():
    session = db.session()
    depth = session.info.get(_DEPTH, 0)
    token = None
    if depth == 0 and session.get_bind().dialect.name == "sqlite":
        if session.in_transaction() and not (session.new or session.dirty or session.deleted):
            session.commit()  # end a read transaction so the write one can begin IMMEDIATE
        token = _write_lock.set(True)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
            session.info.pop(_AFTER, None)
        raise
    finally:
        session.info[_DEPTH] = depth
        if token is not None:
            _write_lock.reset(token)
        if depth == 0:
            _flush_plugin_failures()
    if depth == 0:
        for callback in session.info.pop(_AFTER, []):
            _run_after_commit(callback)


def _flush_plugin_failures() -> None:
    from . import plugin_health

    plugin_health.flush()  # never raises


def _run_after_commit(callback) -> None:
    """The change is committed; a failing follow-up (a plugin's event hook, an
    e-mail) is logged and must not turn the committed command into an error."""
    try:
        callback()
    except Exception:
        db.session.rollback()
        log.exception("after-commit step %s failed", getattr(callback, "__qualname__", callback))


def after_commit(callback) -> None:
    """Run ``callback`` once the outermost atomic block has committed (events,
    e-mails, jobs: nothing that must not happen if the change is rolled back)."""
    session = db.session()
    if session.info.get(_DEPTH, 0) == 0:
        _run_after_commit(callback)
    else:
        session.info.setdefault(_AFTER, []).append(callback)


def in_atomic() -> bool:
    return db.session().info.get(_DEPTH, 0) > 0
