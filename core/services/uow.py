"""One database transaction per command.

``atomic()`` commits when the outermost block ends and rolls everything back on
any exception, so a failed request leaves the database as it was. Nested blocks
(a service calling another) join the outer one.
"""
from __future__ import annotations

from contextlib import contextmanager

from ..extensions import db

_DEPTH = "kassa_atomic_depth"


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
        raise
    finally:
        session.info[_DEPTH] = depth


def in_atomic() -> bool:
    return db.session().info.get(_DEPTH, 0) > 0
