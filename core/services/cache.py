"""Memoisation for one app context (a request or a job), so a billing run of
thousands of invoices reads settings, tax rules and ledger accounts once.

Writers call :func:`forget` for what they change; a new request or job starts
with an empty memo.
"""
from __future__ import annotations

from flask import g, has_app_context

_KEY = "_kassa_memo"


def _store() -> dict | None:
    if not has_app_context():
        return None
    store = g.get(_KEY)
    if store is None:
        store = {}
        setattr(g, _KEY, store)
    return store


def memo(key: tuple, factory):
    store = _store()
    if store is None:
        return factory()
    if key not in store:
        store[key] = factory()
    return store[key]


def put(key: tuple, value) -> None:
    store = _store()
    if store is not None:
        store[key] = value


def peek(key: tuple, default=None):
    store = _store()
    return default if store is None else store.get(key, default)


def forget(*prefixes: str) -> None:
    """Drop every memo whose key starts with one of ``prefixes`` (all when none given)."""
    store = _store()
    if store is None:
        return
    for key in [k for k in store if not prefixes or k[0] in prefixes]:
        del store[key]


def invalidate(*prefixes: str) -> None:
    """Forget now, and again once the writer's transaction commits (a read in
    between may have memoised the uncommitted state)."""
    from .uow import after_commit

    forget(*prefixes)
    after_commit(lambda: forget(*prefixes))
