"""Permission checks shared by console and API views."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from ..permissions import can


def require(privilege: str | None = None, kinds: tuple[str, ...] | None = None):
    """Signed in, holding ``privilege``, in an organisation of one of ``kinds``.
    Failing the kind check is 404 (the page does not exist for you), failing the
    privilege 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                from ..extensions import login_manager

                return login_manager.unauthorized()
            if kinds and current_user.org.kind not in kinds:
                abort(404)
            if privilege and not can(current_user, privilege):
                abort(403)
            return view(*args, **kwargs)

        wrapped.kassa_privilege = privilege
        wrapped.kassa_kinds = kinds
        return wrapped

    return decorator
