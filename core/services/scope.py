"""Tenant scope: which organisations a user may see. Every query of tenant data
goes through here; anything outside scope is reported as not found."""
from __future__ import annotations

from sqlalchemy import or_, select

from ..extensions import db
from ..models import Organisation
from .errors import NotFound


def visible_orgs_clause(user):
    """A WHERE clause on Organisation limiting it to what ``user`` may see."""
    org = user.org
    if org.kind == "provider":
        return Organisation.provider_id == org.id
    if org.kind == "reseller":
        return or_(Organisation.id == org.id, Organisation.parent_id == org.id)
    return Organisation.id == org.id


def visible_org_ids(user):
    """A scalar subquery of visible organisation ids, for filtering other tables."""
    return select(Organisation.id).where(visible_orgs_clause(user)).scalar_subquery()


def orgs_query(user):
    return select(Organisation).where(visible_orgs_clause(user))


def get_org(user, org_id) -> Organisation:
    try:
        org_id = int(org_id)
    except (TypeError, ValueError):
        raise NotFound("Organisation not found") from None
    org = db.session.scalar(orgs_query(user).where(Organisation.id == org_id))
    if org is None:
        raise NotFound("Organisation not found")
    return org


def can_see_org(user, org: Organisation) -> bool:
    me = user.org
    if me.kind == "provider":
        return org.provider_id == me.id
    if me.kind == "reseller":
        return org.id == me.id or org.parent_id == me.id
    return org.id == me.id
