"""One database transaction per command.

``atomic()`` commits when the outermost block ends and rolls everything back on
any exception, so a failed request leaves the database as it was. Nested blocks
(a service calling another) join the outer one.
"""
from __future__ import annotations

from contextlib import contextmanager

from ..extensions import db

_DEPTH = "kassa_atomic_depth"


_AFTER = "kassa_after_commit"


@contextmanager
def atomic():
    session = db.session()
    depth = session.info.get(_DEPTH, 0)
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
    if depth == 0:
        for callback in session.info.pop(_AFTER, []):
            callback()


def after_commit(callback) -> None:
    """Run ``callback`` once the outermost atomic block has committed (events,
    e-mails, jobs: nothing that must not happen if the change is rolled back)."""
    session = db.session()
    if session.info.get(_DEPTH, 0) == 0:
        callback()
    else:
        session.info.setdefault(_AFTER, []).append(callback)


def in_atomic() -> bool:
    return db.session().info.get(_DEPTH, 0) > 0
