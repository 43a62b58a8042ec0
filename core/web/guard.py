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


def refuse_own(org_id) -> None:
    """An organisation's own bills (its invoices, wallet and subscriptions) are managed by
    its parent, never by itself: a reseller's users manage their customers' bills, not
    their own (they may see and pay them). 403 (the object is visible, the act is not allowed)."""
    try:
        own = int(org_id) == current_user.org_id
    except (TypeError, ValueError):
        return
    if own and current_user.org.kind != "provider":
        abort(403, description="Your organisation's own invoices, wallet and subscriptions are managed by "
                               "its provider.")
