"""Who receives an organisation's mail: seed 000 says invoices always go to the
primary contact (primary user) of the customer or reseller organisation."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Organisation, User


def primary_contacts(org_ids) -> dict[int, str]:
    """org id -> e-mail of its first active primary user, else the organisation's e-mail."""
    ids = set(org_ids)
    if not ids:
        return {}
    found: dict[int, str] = {}
    for org_id, email in db.session.execute(
            select(User.org_id, User.email).where(User.org_id.in_(ids), User.is_primary_contact.is_(True),
                                                  User.active.is_(True)).order_by(User.id)):
        found.setdefault(org_id, email)
    missing = ids - set(found)
    if missing:
        for org_id, email in db.session.execute(select(Organisation.id, Organisation.email).where(
                Organisation.id.in_(missing), Organisation.email != "")):
            found[org_id] = email
    return found
