"""Billing set-up helpers for tests of the core and of plugins: services, subscriptions, tax rules."""
from datetime import date
from decimal import Decimal

from kassa.services import catalog, subscriptions, tax_rules


def service(admin, code="vm.small", price="100", taxable=True, tax_code="998315", category="Compute"):
    return catalog.save_service(admin, {"code": code, "name": f"Service {code}", "category": category,
                                        "unit": "unit / month", "taxable": taxable, "tax_code": tax_code,
                                        "prices": {"INR": price}})


def subscribe(admin, org, items, *, start=date(2026, 1, 5), cycle="monthly", trial_days=0, name="Contract"):
    return subscriptions.create(admin, org, {"name": name, "cycle": cycle, "start_date": start.isoformat(),
                                             "trial_days": trial_days,
                                             "items": [{"service_id": s.id, "units": str(u)} for s, u in items]})


def rule(admin, country="IN", rate="18", name="GST", status="active"):
    return tax_rules.save_rule(admin, {"name": name, "country": country, "rate": rate, "status": status})


D = Decimal
