"""Fast seeding for benchmarks: raw Core inserts of organisations, services and subscriptions."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import insert, select

from kassa.extensions import db
from kassa.models import Organisation, Service, ServicePrice, Subscription, SubscriptionItem
from kassa.services import orgs, settings, tax_rules


class Actor:
    id = None
    role = "cloud_admin"
    privileges = ()
    is_authenticated = True

    def __init__(self, org):
        self.org, self.org_id = org, org.id


def provider_with_catalogue(name="Bench Provider"):
    provider = orgs.create_provider(name, "IN", state="Tamil Nadu")
    actor = Actor(provider)
    settings.update_billing_settings(actor, currency="INR", precision=2, invoice_prefix="B-")
    return provider, actor, catalogue(provider)


def catalogue(provider) -> list[int]:
    """An 18 % GST rule and two INR services (a VM at 1450, disk at 6.5 a unit); their ids."""
    tax_rules.save_rule(Actor(provider), {"name": "GST", "country": "IN", "rate": "18"})
    now = datetime(2026, 1, 1)
    ids = []
    for code, price in (("vm", "1450"), ("disk", "6.5")):
        service = Service(provider_id=provider.id, code=code, name=f"Bench {code}", category="Compute",
                          unit="unit / month", taxable=True, tax_code="998315", created_at=now)
        db.session.add(service)
        db.session.flush()
        db.session.add(ServicePrice(service_id=service.id, currency="INR", unit_price=Decimal(price)))
        ids.append(service.id)
    db.session.commit()
    return ids


def subscriptions(provider, service_ids, count: int, anchor: date, per_org: int = 10, batch: int = 5000):
    """``count`` monthly subscriptions with two items each, ``per_org`` per customer."""
    now = datetime(2026, 1, 1)
    org_count = (count + per_org - 1) // per_org
    for start in range(0, org_count, batch):
        rows = [{"provider_id": provider.id, "parent_id": provider.id, "kind": "customer", "name": f"Customer {i}",
                 "email": "", "phone": "", "address_line1": "", "address_line2": "", "city": "", "state": "Karnataka",
                 "postal_code": "", "country": "IN", "tax_id": "", "timezone": "UTC", "locale": "en",
                 "status": "active", "created_at": now} for i in range(start, min(org_count, start + batch))]
        db.session.execute(insert(Organisation), rows)
    db.session.commit()
    org_ids = list(db.session.scalars(select(Organisation.id).where(Organisation.kind == "customer",
                                                                     Organisation.provider_id == provider.id)
                                      .order_by(Organisation.id)))
    for start in range(0, count, batch):
        subs = [{"provider_id": provider.id, "org_id": org_ids[i // per_org], "name": f"Contract {i}",
                 "currency": "INR", "cycle": "monthly", "anchor_date": anchor, "next_period_start": anchor,
                 "status": "active", "auto_deduction": False, "created_at": now}
                for i in range(start, min(count, start + batch))]
        db.session.execute(insert(Subscription), subs)
    db.session.commit()
    sub_ids = list(db.session.scalars(select(Subscription.id).where(Subscription.provider_id == provider.id)
                                      .order_by(Subscription.id)))
    for start in range(0, len(sub_ids), batch):
        items = []
        for sid in sub_ids[start:start + batch]:
            items.append({"subscription_id": sid, "service_id": service_ids[0], "units": Decimal(2),
                          "unit_price": Decimal("1450"), "created_at": now})
            items.append({"subscription_id": sid, "service_id": service_ids[1], "units": Decimal(100),
                          "unit_price": Decimal("6.5"), "created_at": now})
        db.session.execute(insert(SubscriptionItem), items)
    db.session.commit()
    return sub_ids
