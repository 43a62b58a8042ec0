"""Users, passwords, sign-in throttling and API tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import utcnow_naive
from ..extensions import db
from ..models import ApiToken, LoginAttempt, Organisation, User
from ..permissions import FULL_ROLES, ROLE_MAX, ROLE_ORG_KIND, effective_privileges
from . import audit
from .errors import Forbidden, NotFound, ServiceError, ValidationError
from .orgs import clean_email
from .uow import atomic

MIN_PASSWORD = 10
TOKEN_PREFIX = "kassa_"


class TooManyAttempts(ServiceError):
    status = 429


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config.get("KASSA_PASSWORD_METHOD", "scrypt"))


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError("Password too short.", {"password": f"At least {MIN_PASSWORD} characters."})


def _check_delegation(actor, role: str, privileges) -> list[str]:
    """Staff and sub-admins hold a subset; nobody delegates more than they hold."""
    privileges = sorted(set(privileges or ()))
    if role in FULL_ROLES:
        return []
    unknown = set(privileges) - ROLE_MAX.get(role, frozenset())
    if unknown:
        raise ValidationError("Privileges not available to this role.", {"privileges": ", ".join(sorted(unknown))})
    if actor is not None:
        beyond = set(privileges) - effective_privileges(actor)
        if beyond:
            raise Forbidden("You cannot delegate privileges you do not hold: " + ", ".join(sorted(beyond)))
    return privileges


def create_user(actor, org: Organisation, *, email: str, name: str, password: str, role: str,
                privileges=(), primary: bool = False) -> User:
    """Create a user in ``org``. ``actor`` None is the CLI/demo (system)."""
    errors = {}
    if ROLE_ORG_KIND.get(role) != org.kind:
        errors["role"] = f"A {org.kind} organisation cannot have a user with role {role!r}."
    if not (name or "").strip():
        errors["name"] = "Required."
    try:
        email = clean_email(email)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    else:
        if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
            errors["email"] = "A user with this e-mail already exists."
    try:
        _check_password(password)
    except ValidationError as exc:
        errors.update(exc.field_errors)
    if errors:
        raise ValidationError("Please correct the highlighted fields.", errors)
    privileges = _check_delegation(actor, role, privileges)
    with atomic():
        user = User(org=org, email=email, name=name.strip(), password_hash=hash_password(password), role=role,
                    privileges=privileges, active=True, is_primary_contact=primary, created_at=utcnow_naive())
        db.session.add(user)
        db.session.flush()
        if actor is not None:
            audit.record(actor, "user.create", user, org_id=org.id, summary=f"{email} as {role}",
                         details={"privileges": privileges})
    return user


def set_privileges(actor, user: User, privileges) -> User:
    privileges = _check_delegation(actor, user.role, privileges)
    with atomic():
        before = list(user.privileges or [])
        user.privileges = privileges
        audit.record(actor, "user.privileges", user, org_id=user.org_id, summary=user.email,
                     details={"before": before, "after": privileges})
    return user


def set_active(actor, user: User, active: bool) -> User:
    if user.id == actor.id:
        raise Forbidden("You cannot disable yourself.")
    with atomic():
        user.active = bool(active)
        audit.record(actor, "user.enable" if active else "user.disable", user, org_id=user.org_id, summary=user.email)
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationError("Current password is wrong.", {"current": "Wrong password."})
    _check_password(new)
    with atomic():
        user.password_hash = hash_password(new)
        audit.record(user, "user.password", user, summary=user.email)


def _recent_failures(column, value, since) -> int:
    return db.session.scalar(select(func.count(LoginAttempt.id)).where(
        column == value, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)) or 0


def authenticate(email: str, password: str, ip: str) -> User:
    """Check a sign-in. After too many failures for the account or the address
    within the window, refuse further tries until the window has passed."""
    email = (email or "").strip().lower()
    cfg = current_app.config
    limit = cfg.get("KASSA_LOGIN_MAX_FAILURES", 5)
    window = timedelta(minutes=cfg.get("KASSA_LOGIN_WINDOW_MINUTES", 15))
    at = utcnow_naive()
    since = at - window
    if (_recent_failures(LoginAttempt.email, email, since) >= limit
            or _recent_failures(LoginAttempt.ip, ip, since) >= limit * 4):
        raise TooManyAttempts(f"Too many failed sign-ins. Try again in {window.seconds // 60} minutes.")
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    ok = user is not None and check_password_hash(user.password_hash, password or "") and user.is_active
    with atomic():
        db.session.add(LoginAttempt(email=email[:254], ip=ip[:64], succeeded=ok, at=at))
        if ok:
            user.last_login_at = at
    if not ok:
        raise ValidationError("Wrong e-mail or password.", {"password": "Wrong e-mail or password."})
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str) -> tuple[str, ApiToken]:
    """Return the token once (it is never stored in plain) and its record."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the token a name.", {"name": "Required."})
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with atomic():
        token = ApiToken(user_id=user.id, name=name[:100], prefix=plain[:12], token_hash=_hash_token(plain),
                         created_at=utcnow_naive())
        db.session.add(token)
        audit.record(user, "token.create", token, summary=name)
    return plain, token


def revoke_api_token(user: User, token_id: int) -> None:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("Token not found")
    with atomic():
        token.revoked_at = utcnow_naive()
        audit.record(user, "token.revoke", token, summary=token.name)


def user_for_token(plain: str) -> User | None:
    if not plain or not plain.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).filter_by(token_hash=_hash_token(plain)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    token.last_used_at = utcnow_naive()
    db.session.commit()
    return token.user
