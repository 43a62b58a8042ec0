"""Every route, as every role: the answer must be the one the permission table says.

The table below is written by hand, one row per route (method and path as
registered in ``app.url_map``) and one column per role. A route added without a
row fails ``test_the_table_covers_every_route``; a row whose route is gone fails
it too. ``test_every_route_as_every_role`` then walks the table over a small
world (two providers, a reseller with a customer, direct customers, invoices,
subscriptions, services, tax rules, payments, an order, a billing run):

* with the role's own ids (what it should reach),
* with the ids of another provider's tenant (always 404 where the role may use
  the route, else the same refusal: a missing privilege must not reveal whether
  an object exists),
* resellers and customers also with ids of the same provider that are outside
  their scope (a direct customer's for the reseller, the reseller's customer's
  for a customer): 404.

Requests that change something are sent with a body the view refuses (a field
missing, an invoice already paid, a rule made for the occasion), so the walk
checks the guard without doing harm: a role that may not gets the guard's
403/404, a role that may gets the view's own answer (a redirect with a message,
400, 409, 422, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import count

import pytest

from kassa.contracts import ExportInfo, RenderedDocument
from kassa.hookspecs import hookimpl
from kassa.testing.billing import rule, service, subscribe
from kassa.testing.helpers import Api, isolated

ROLES = ("cloud_admin", "staff", "reseller_admin", "reseller_subadmin", "customer_admin", "customer_user",
         "anonymous")
SIGNED_IN = ROLES[:-1]
PROVIDER_ROLES = ("cloud_admin", "staff")
RESELLER_ROLES = ("reseller_admin", "reseller_subadmin")
CUSTOMER_ROLES = ("customer_admin", "customer_user")

#: the delegated subsets (the other roles hold their role's full set)
STAFF_PRIVILEGES = ["billing.view", "invoices.manage", "orgs.view", "payments.capture"]
SUBADMIN_PRIVILEGES = ["billing.view", "orgs.view"]
CUSTOMER_USER_PRIVILEGES = ["billing.view"]

# Codes:  Y  allowed: a GET answers 200; any other method reaches the view, which answers
#            anything but 401/403/404/405/5xx or the sign-in redirect
#         R  allowed, and a GET answers with a redirect (not to the sign-in page)
#         P  403: the role lacks the privilege
#         N  404: the route does not exist for the role's organisation kind, or the
#            object is outside its tenant
#         L  302 to /login?next=... (anonymous, console)
#         U  401 with a JSON error (anonymous, API)
#         a number: exactly that status
#
# Staff holds billing.view, invoices.manage, orgs.view, payments.capture; the reseller
# sub-admin billing.view, orgs.view; the customer user billing.view.
TABLE = {
    #                                                                   admin staff r.adm r.sub c.adm c.usr anon
    # ---- sign in, profile, static, dashboard
    "GET /login":                                                      "R     R     R     R     R     R     Y",
    "POST /login":                                                     "Y     Y     Y     Y     Y     Y     400",
    "POST /logout":                                                    "Y     Y     Y     Y     Y     Y     L",
    "GET /profile":                                                    "Y     Y     Y     Y     Y     Y     L",
    "POST /profile":                                                   "Y     Y     Y     Y     Y     Y     L",
    "POST /profile/tokens/<int:token_id>/revoke":                      "Y     Y     Y     Y     Y     Y     L",
    "GET /static/<path:filename>":                                     "Y     Y     Y     Y     Y     Y     Y",
    "GET /":                                                           "Y     Y     Y     Y     Y     Y     L",
    # ---- Billing Configurations (Currency, Credit Card Settings, Payment Gateways)
    "GET /billing/configurations":                                     "Y     P     N     N     N     N     L",
    "POST /billing/configurations":                                    "Y     P     N     N     N     N     L",
    "POST /billing/card-settings":                                     "Y     P     N     N     N     N     L",
    "POST /billing/gateways/<gateway_id>/verify":                      "Y     P     N     N     N     N     L",
    "GET /billing/credit-card-status":                                 "Y     Y     Y     Y     N     N     L",
    # ---- invoices
    "GET /billing/invoices":                                           "Y     Y     Y     Y     Y     Y     L",
    "GET /billing/invoices/export.csv":                                "Y     Y     Y     Y     Y     Y     L",
    "GET /billing/invoices/new":                                       "Y     Y     Y     P     P     P     L",
    "POST /billing/invoices/new":                                      "Y     Y     Y     P     P     P     L",
    "GET /billing/invoices/<int:invoice_id>":                          "Y     Y     Y     Y     Y     Y     L",
    "GET /billing/invoices/<int:invoice_id>/export":                   "Y     Y     Y     Y     Y     Y     L",
    "POST /billing/invoices/<int:invoice_id>/adjust-offline":          "Y     Y     Y     P     P     P     L",
    "POST /billing/invoices/<int:invoice_id>/cancel":                  "Y     Y     Y     P     P     P     L",
    "POST /billing/invoices/<int:invoice_id>/resend":                  "Y     Y     Y     P     P     P     L",
    "POST /billing/invoices/<int:invoice_id>/capture":                 "Y     Y     Y     P     Y     P     L",
    # an organisation pays its own invoices only: the ids here are customers' invoices
    "POST /billing/invoices/<int:invoice_id>/pay":                     "N     N     N     N     Y     Y     L",
    "GET /billing/profile":                                            "N     N     Y     Y     Y     Y     L",
    "POST /billing/profile/card":                                      "N     N     Y     P     Y     P     L",
    "GET /pay/return/<int:payment_id>/":                               "R     R     R     R     R     R     L",
    "GET /payments/<int:payment_id>":                                  "Y     Y     Y     Y     Y     Y     L",
    # ---- billing runs, exports, invoice template
    "POST /billing/runs":                                              "Y     Y     N     N     N     N     L",
    "GET /billing/runs/<int:run_id>":                                  "Y     Y     N     N     N     N     L",
    "POST /billing/runs/<int:run_id>/resume":                          "Y     Y     N     N     N     N     L",
    "GET /billing/exports":                                            "Y     Y     N     N     N     N     L",
    "GET /billing/exports/<export_id>":                                "Y     Y     N     N     N     N     L",
    "GET /billing/invoice-template":                                   "Y     P     N     N     N     N     L",
    "POST /billing/invoice-template":                                  "Y     P     N     N     N     N     L",
    "POST /billing/invoice-template/reset":                            "Y     P     N     N     N     N     L",
    "GET /billing/invoice-template/default.html":                      "Y     P     N     N     N     N     L",
    "GET /billing/invoice-template/current.html":                      "Y     P     N     N     N     N     L",
    "GET /billing/invoice-template/preview.pdf":                       "Y     P     N     N     N     N     L",
    # ---- tax rules, transaction logs, wallets
    "GET /billing/tax-rules":                                          "Y     P     N     N     N     N     L",
    "GET /billing/tax-rules/new":                                      "Y     P     N     N     N     N     L",
    "POST /billing/tax-rules/new":                                     "Y     P     N     N     N     N     L",
    "GET /billing/tax-rules/<int:rule_id>/edit":                       "Y     P     N     N     N     N     L",
    "POST /billing/tax-rules/<int:rule_id>/edit":                      "Y     P     N     N     N     N     L",
    "POST /billing/tax-rules/<int:rule_id>/delete":                    "Y     P     N     N     N     N     L",
    "GET /billing/transactions":                                       "Y     Y     Y     Y     Y     Y     L",
    # wallets are moved by the provider and resellers (a reseller: its customers' only), never by customers
    "POST /billing/wallet/<int:org_id>":                               "Y     Y     Y     P     N     N     L",
    # ---- catalogue and subscriptions
    "GET /catalogue":                                                  "Y     P     N     N     N     N     L",
    "GET /catalogue/new":                                              "Y     P     N     N     N     N     L",
    "POST /catalogue/new":                                             "Y     P     N     N     N     N     L",
    "GET /catalogue/<int:service_id>/edit":                            "Y     P     N     N     N     N     L",
    "POST /catalogue/<int:service_id>/edit":                           "Y     P     N     N     N     N     L",
    "GET /subscriptions":                                              "Y     P     Y     P     N     N     L",
    "GET /subscriptions/new":                                          "Y     P     Y     P     N     N     L",
    "POST /subscriptions/new":                                         "Y     P     Y     P     N     N     L",
    "GET /subscriptions/<int:subscription_id>":                        "Y     P     Y     P     N     N     L",
    "POST /subscriptions/<int:subscription_id>/items":                 "Y     P     Y     P     N     N     L",
    "POST /subscriptions/<int:subscription_id>/items/<int:item_id>":   "Y     P     Y     P     N     N     L",
    "POST /subscriptions/<int:subscription_id>/status":                "Y     P     Y     P     N     N     L",
    "POST /subscriptions/<int:subscription_id>/auto-deduction":        "Y     P     Y     P     N     N     L",
    # ---- organisations, users, plugins, audit
    "GET /organisations":                                              "Y     Y     Y     Y     N     N     L",
    "GET /organisations/new":                                          "Y     P     Y     P     N     N     L",
    "POST /organisations/new":                                         "Y     P     Y     P     N     N     L",
    "GET /organisations/<int:org_id>":                                 "Y     Y     Y     Y     N     N     L",
    "GET /organisations/<int:org_id>/edit":                            "Y     P     Y     P     N     N     L",
    "POST /organisations/<int:org_id>/edit":                           "Y     P     Y     P     N     N     L",
    "POST /organisations/<int:org_id>/status":                         "Y     P     Y     P     N     N     L",
    "GET /organisations/<int:org_id>/users/new":                       "Y     P     Y     P     Y     P     L",
    "POST /organisations/<int:org_id>/users/new":                      "Y     P     Y     P     Y     P     L",
    "GET /users":                                                      "Y     P     Y     P     Y     P     L",
    "GET /users/<int:user_id>/privileges":                             "Y     P     Y     P     Y     P     L",
    "POST /users/<int:user_id>/privileges":                            "Y     P     Y     P     Y     P     L",
    "POST /users/<int:user_id>/active":                                "Y     P     Y     P     Y     P     L",
    "GET /plugins":                                                    "Y     P     N     N     N     N     L",
    "POST /plugins/<name>/toggle":                                     "Y     P     N     N     N     N     L",
    "GET /plugins/<name>/settings":                                    "Y     P     N     N     N     N     L",
    "POST /plugins/<name>/settings":                                   "Y     P     N     N     N     N     L",
    "POST /plugins/<name>/resolve":                                    "Y     P     N     N     N     N     L",
    "GET /audit":                                                      "Y     P     Y     P     N     N     L",
    # ---- dunning
    "GET /dunning":                                                    "Y     Y     Y     Y     N     N     L",
    "GET /dunning/open":                                               "R     R     R     R     N     N     L",
    "GET /dunning/organisations/<int:org_id>":                         "Y     Y     Y     Y     Y     Y     L",
    "POST /dunning/organisations/<int:org_id>/evaluate":               "Y     P     N     N     N     N     L",
    "POST /dunning/sweep":                                             "Y     P     N     N     N     N     L",
    "GET /dunning/pay":                                                "N     N     Y     Y     Y     Y     L",
    # the test clock exists for the provider's cloud admins only (and only with KASSA_TEST_CLOCK)
    "GET /dunning/test-clock":                                         "Y     N     N     N     N     N     L",
    "POST /dunning/test-clock":                                        "Y     N     N     N     N     N     L",
    # ---- orders (the order here is a reseller customer's: out of a direct customer's scope)
    "GET /orders":                                                     "Y     Y     Y     Y     N     N     L",
    "GET /orders/new":                                                 "Y     P     Y     P     N     N     L",
    "POST /orders/new":                                                "Y     P     Y     P     N     N     L",
    "GET /orders/<int:order_id>":                                      "Y     Y     Y     Y     N     N     L",
    "POST /orders/<int:order_id>/activate":                            "Y     P     Y     P     N     N     L",
    "GET /orders/invoice/<token>":                                     "Y     Y     Y     Y     N     N     L",
    "POST /orders/invoice/<token>/pay":                                "Y     Y     Y     Y     N     N     L",
    # ---- gateways call back without a session: the signature decides (none here: 400)
    "POST /webhooks/<int:provider_id>/<gateway>":                      "400   400   400   400   400   400   400",

    # ==== API (bearer tokens; the console session is ignored)
    "GET /api/v1/openapi.json":                                        "Y     Y     Y     Y     Y     Y     Y",
    "GET /health/live":                                                "Y     Y     Y     Y     Y     Y     Y",
    # the walk's schema comes from create_all, not the migrations: not ready (tests/test_ops.py has the 200)
    "GET /health/ready":                                               "503   503   503   503   503   503   503",
    "GET /api/v1/me":                                                  "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/audit":                                               "Y     P     Y     P     N     N     U",
    "GET /api/v1/organisations":                                       "Y     Y     Y     Y     N     N     U",
    "POST /api/v1/organisations":                                      "Y     P     Y     P     N     N     U",
    "GET /api/v1/organisations/<int:org_id>":                          "Y     Y     Y     Y     N     N     U",
    "PATCH /api/v1/organisations/<int:org_id>":                        "Y     P     Y     P     N     N     U",
    "GET /api/v1/organisations/<int:org_id>/wallet":                   "Y     Y     Y     Y     Y     Y     U",
    "POST /api/v1/organisations/<int:org_id>/wallet":                  "Y     Y     Y     P     N     N     U",
    "GET /api/v1/organisations/<int:org_id>/card":                     "Y     Y     Y     Y     Y     Y     U",
    "PUT /api/v1/organisations/<int:org_id>/card":                     "Y     Y     Y     P     Y     P     U",
    "DELETE /api/v1/organisations/<int:org_id>/card":                  "Y     Y     Y     P     Y     P     U",
    "GET /api/v1/organisations/<int:org_id>/dunning":                  "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/billing/settings":                                    "Y     Y     N     N     N     N     U",
    "PUT /api/v1/billing/settings":                                    "Y     P     N     N     N     N     U",
    "GET /api/v1/billing/card-settings":                               "Y     Y     N     N     N     N     U",
    "PUT /api/v1/billing/card-settings":                               "Y     P     N     N     N     N     U",
    "POST /api/v1/billing/runs":                                       "Y     Y     N     N     N     N     U",
    "GET /api/v1/billing/runs/<int:run_id>":                           "Y     Y     N     N     N     N     U",
    "GET /api/v1/cards":                                               "Y     Y     Y     Y     N     N     U",
    "GET /api/v1/exports":                                             "Y     Y     N     N     N     N     U",
    "GET /api/v1/exports/<export_id>":                                 "Y     Y     N     N     N     N     U",
    "GET /api/v1/gateways":                                            "Y     P     N     N     N     N     U",
    "POST /api/v1/gateways/<gateway_id>/verify":                       "Y     P     N     N     N     N     U",
    "GET /api/v1/plugins":                                             "Y     P     N     N     N     N     U",
    "POST /api/v1/plugins/<name>/enable":                              "Y     P     N     N     N     N     U",
    "POST /api/v1/plugins/<name>/disable":                             "Y     P     N     N     N     N     U",
    "GET /api/v1/plugins/<name>/settings":                             "Y     P     N     N     N     N     U",
    "PUT /api/v1/plugins/<name>/settings":                             "Y     P     N     N     N     N     U",
    "GET /api/v1/invoices":                                            "Y     Y     Y     Y     Y     Y     U",
    "POST /api/v1/invoices":                                           "Y     Y     Y     P     P     P     U",
    "GET /api/v1/invoices/export.csv":                                 "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/invoices/<int:invoice_id>":                           "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/invoices/<int:invoice_id>/document":                  "Y     Y     Y     Y     Y     Y     U",
    "POST /api/v1/invoices/<int:invoice_id>/adjust-offline":           "Y     Y     Y     P     P     P     U",
    "POST /api/v1/invoices/<int:invoice_id>/cancel":                   "Y     Y     Y     P     P     P     U",
    "POST /api/v1/invoices/<int:invoice_id>/resend":                   "Y     Y     Y     P     P     P     U",
    "POST /api/v1/invoices/<int:invoice_id>/capture":                  "Y     Y     Y     P     Y     P     U",
    "POST /api/v1/invoices/<int:invoice_id>/pay":                      "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/payments/<int:payment_id>":                           "Y     Y     Y     Y     Y     Y     U",
    "POST /api/v1/payments/<int:payment_id>/complete":                 "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/transactions":                                        "Y     Y     Y     Y     Y     Y     U",
    "GET /api/v1/tax-rules":                                           "Y     P     N     N     N     N     U",
    "POST /api/v1/tax-rules":                                          "Y     P     N     N     N     N     U",
    "PUT /api/v1/tax-rules/<int:rule_id>":                             "Y     P     N     N     N     N     U",
    "DELETE /api/v1/tax-rules/<int:rule_id>":                          "Y     P     N     N     N     N     U",
    "GET /api/v1/services":                                            "Y     Y     Y     Y     Y     Y     U",
    "POST /api/v1/services":                                           "Y     P     N     N     N     N     U",
    "PATCH /api/v1/services/<int:service_id>":                         "Y     P     N     N     N     N     U",
    "GET /api/v1/subscriptions":                                       "Y     P     Y     P     N     N     U",
    "POST /api/v1/subscriptions":                                      "Y     P     Y     P     N     N     U",
    "GET /api/v1/subscriptions/<int:subscription_id>":                 "Y     P     Y     P     N     N     U",
    "POST /api/v1/subscriptions/<int:subscription_id>/items":          "Y     P     Y     P     N     N     U",
    "PATCH /api/v1/subscriptions/<int:subscription_id>/items/<int:item_id>": "Y P Y     P     N     N     U",
    "POST /api/v1/subscriptions/<int:subscription_id>/status":         "Y     P     Y     P     N     N     U",
    "PUT /api/v1/subscriptions/<int:subscription_id>/auto-deduction":  "Y     P     Y     P     N     N     U",
    "GET /api/v1/orders":                                              "Y     Y     Y     Y     N     N     U",
    "POST /api/v1/orders":                                             "Y     P     Y     P     N     N     U",
    "GET /api/v1/orders/<int:order_id>":                               "Y     Y     Y     Y     N     N     U",
}

#: query strings the GET routes need to do their work
QUERY = {
    "GET /billing/exports/<export_id>": "month=2026-01",
    "GET /api/v1/exports/<export_id>": "month=2026-01",
    "GET /billing/invoices/<int:invoice_id>/export": "format=csv",
    "GET /api/v1/invoices/<int:invoice_id>/document": "format=csv",
    "GET /dunning/open": "org_id={org_id}",
}

#: bodies the views refuse (or that change nothing); {name} is filled from the role's ids
BODY = {
    "POST /billing/configurations": {"currency": "", "precision": "2"},
    "POST /billing/card-settings": {"max_declines": "0"},
    "POST /billing/invoices/new": {"org_id": "{org_id}", "due_date": "not a date"},
    "POST /billing/invoices/<int:invoice_id>/adjust-offline": {"mark_as_paid": "1", "reference": ""},
    "POST /billing/invoices/<int:invoice_id>/cancel": {"reason": "the invoice is paid: refused"},
    "POST /billing/wallet/<int:org_id>": {"kind": "no-such-kind", "amount": "1"},
    "POST /billing/tax-rules/new": {"name": "", "country": "IN", "rate": "18"},
    "POST /billing/tax-rules/<int:rule_id>/edit": {"name": "", "country": "IN", "rate": "18"},
    "POST /catalogue/new": {"code": "", "name": ""},
    "POST /catalogue/<int:service_id>/edit": {"code": "", "name": ""},
    "POST /subscriptions/new": {"org_id": "{org_id}", "name": ""},
    "POST /subscriptions/<int:subscription_id>/items": {"service_id": "", "units": "1"},
    "POST /subscriptions/<int:subscription_id>/items/<int:item_id>": {"units": "many"},
    "POST /subscriptions/<int:subscription_id>/status": {"action": "explode"},
    "POST /subscriptions/<int:subscription_id>/auto-deduction": {},  # off, as it already is
    "POST /organisations/new": {"kind": "customer", "name": ""},
    "POST /organisations/<int:org_id>/edit": {"name": ""},
    "POST /organisations/<int:org_id>/status": {"status": "archived"},
    "POST /organisations/<int:org_id>/users/new": {"email": "not-an-address"},
    "POST /users/<int:user_id>/privileges": {"privileges": "no.such.privilege"},
    "POST /users/<int:user_id>/active": {"active": "1"},  # active, as they are
    "POST /plugins/<name>/settings": {"label": "Fake gateway"},  # empty secrets keep the stored ones
    "POST /dunning/test-clock": {"action": "advance", "days": "0"},
    "POST /orders/new": {"action": "next"},
    "POST /profile": {},
    "POST /login": {},
    # API
    "POST /api/v1/organisations": {"kind": "customer"},
    "PATCH /api/v1/organisations/<int:org_id>": {"country": "XX"},
    "POST /api/v1/organisations/<int:org_id>/wallet": {"kind": "no-such-kind", "amount": "1"},
    "PUT /api/v1/organisations/<int:org_id>/card": {"token": "tok_junk"},
    "PUT /api/v1/billing/settings": {"precision": 9},
    "PUT /api/v1/billing/card-settings": {"max_declines": 0},
    "PUT /api/v1/plugins/<name>/settings": {"label": "Fake gateway"},
    "POST /api/v1/invoices": {"org_id": "{org_id}", "due_date": "not a date"},
    "POST /api/v1/invoices/<int:invoice_id>/adjust-offline": {"mark_as_paid": True},
    "POST /api/v1/invoices/<int:invoice_id>/pay": {"return_url": "http://127.0.0.1/back"},  # paid: 409
    "POST /api/v1/payments/<int:payment_id>/complete": {"status": "paid", "signature": "forged"},
    "POST /api/v1/tax-rules": {"name": "", "country": "IN", "rate": "18"},
    "PUT /api/v1/tax-rules/<int:rule_id>": {"name": "", "country": "IN", "rate": "18"},
    "POST /api/v1/services": {"code": ""},
    "PATCH /api/v1/services/<int:service_id>": {"category": "no-such-category"},
    "POST /api/v1/subscriptions": {"org_id": "{org_id}", "name": ""},
    "POST /api/v1/subscriptions/<int:subscription_id>/items": {"service_id": 0, "units": "1"},
    "PATCH /api/v1/subscriptions/<int:subscription_id>/items/<int:item_id>": {"units": "many"},
    "POST /api/v1/subscriptions/<int:subscription_id>/status": {"action": "explode"},
    "PUT /api/v1/subscriptions/<int:subscription_id>/auto-deduction": {"enabled": "yes"},
    "POST /api/v1/orders": {"organization_name": ""},
}

#: path parameters that name things every provider shares (no tenant, nothing to cross)
SHARED_PARAMS = {"export_id", "gateway_id", "name", "filename", "gateway", "provider_id"}
#: routes no one signs in for: the same answer whatever the ids
PUBLIC = {"GET /static/<path:filename>", "GET /api/v1/openapi.json", "GET /health/live", "GET /health/ready", "POST /webhooks/<int:provider_id>/<gateway>",
          "GET /login", "POST /login"}
CODE = re.compile(r"^(Y|R|P|N|L|U|\d{3})$")


def route_keys(app) -> set[str]:
    keys = set()
    for rule_ in app.url_map.iter_rules():
        for method in sorted(rule_.methods - {"HEAD", "OPTIONS"}):
            keys.add(f"{method} {rule_.rule}")
    return keys


def expectations(key: str) -> dict[str, str]:
    codes = TABLE[key].split()
    assert len(codes) == len(ROLES), f"{key}: {len(codes)} columns, not {len(ROLES)}"
    for c in codes:
        assert CODE.match(c), f"{key}: unknown code {c!r}"
    return dict(zip(ROLES, codes))


def test_the_table_covers_every_route(app):
    keys = route_keys(app)
    missing = sorted(keys - set(TABLE))
    stale = sorted(set(TABLE) - keys)
    assert not missing, ("routes without a row in the permission table (add them to TABLE in "
                         "tests/test_route_permissions.py):\n  " + "\n  ".join(missing))
    assert not stale, "rows for routes that no longer exist:\n  " + "\n  ".join(stale)
    for key in TABLE:
        expectations(key)
    for extra in (QUERY, BODY):
        assert not set(extra) - set(TABLE), set(extra) - set(TABLE)


# ---------------------------------------------------------------------------- the world


class FakeExport:
    """An invoice export (like the GST plugin's GSTR-1), so the export routes have one to serve."""

    INFO = ExportInfo(id="fakeexport", name="Fake export", media_type="text/csv", extension="csv")

    @hookimpl
    def kassa_invoice_exports(self):
        return [self.INFO]

    @hookimpl
    def kassa_export_invoices(self, export, invoices, period_start, period_end, ctx):
        if export != self.INFO.id:
            return None
        return RenderedDocument(content=f"invoices,{len(invoices)}\n".encode(), media_type="text/csv",
                                filename="fake.csv")


class IdlePlugin:
    """Installed and never enabled: the toggle and disable routes switch it off again, changing nothing."""

    @hookimpl
    def kassa_invoice_exports(self):
        return []


@dataclass
class World:
    users: dict  # role -> User
    own: dict  # role -> {param: value}
    cross: dict  # role -> {param: value} outside its scope, same provider
    foreign: dict  # {param: value} in another provider's tenant
    app: object
    admin: object = None
    countries: object = field(default_factory=lambda: iter(
        ["FR", "ES", "IT", "NL", "BE", "AT", "PT", "SE", "DK", "FI", "NO", "PL", "CZ", "IE", "GR", "HU"]))
    tokens: object = field(default_factory=count)


ORDER = {"organization_name": "Ordered Pvt Ltd", "contact_name": "Priya N", "address_line1": "1 Anna Salai",
         "address_line2": "Teynampet", "city": "Chennai", "state": "Tamil Nadu", "country": "IN",
         "postal_code": "600018", "mobile": "+91-9382126757"}


def _invoice(actor, org, amount="118"):
    from kassa.services import manual_invoices

    return manual_invoices.create(actor, {"org_id": org.id, "for": org.kind, "issue_date": "2026-01-05",
                                          "due_date": "2026-01-20", "period_from": "2026-01-01",
                                          "period_to": "2026-01-31",
                                          "items": [{"description": "Hosting", "quantity": "1",
                                                     "unit_price": amount}]})


def _paid_invoice(actor, org):
    from kassa.services import payments

    inv = _invoice(actor, org)
    payments.adjust_offline(actor, inv, mark_as_paid=True, reference="CHQ-1")
    return inv


def _payment(actor, org):
    """A hosted payment waiting for the buyer (status requires_action) on a new unpaid invoice."""
    from kassa.services import charges

    payment = charges.pay_hosted(actor, _invoice(actor, org), "http://127.0.0.1/pay/return/PAYMENT_ID/")
    assert payment.status == "requires_action", payment.status
    return payment


def _order(app, actor, email, svc):
    from kassa.services import orders, payments

    with app.test_request_context("/"):
        order = orders.place(actor, dict(ORDER, contact_email=email, organization_name=f"Ordered by {email}",
                                         items=[{"service_id": svc.id, "units": 1}]))
        token = orders.invoice_link(order).rsplit("/", 1)[1]
    from kassa.extensions import db
    from kassa.models import Invoice

    payments.adjust_offline(actor, db.session.get(Invoice, order.invoice_id), mark_as_paid=True, reference="NEFT-1")
    return order, token


def _tenant_ids(*, org, invoice, sub, payment, user, order, token, rule_, svc, run, provider, token_id=0) -> dict:
    return {"org_id": org.id, "invoice_id": invoice.id, "subscription_id": sub.id, "item_id": sub.items[0].id,
            "payment_id": payment.id, "user_id": user.id, "order_id": order.id, "token": token,
            "rule_id": rule_.id, "service_id": svc.id, "run_id": run.id, "token_id": token_id,
            "provider_id": provider.id, "export_id": FakeExport.INFO.id, "gateway_id": "fakepay",
            "gateway": "fakepay", "name": "fakegateway", "filename": "kassa.css"}


@pytest.fixture
def world(app, db, provider, admin, reseller, reseller_admin, customer, customer_admin, make_org, make_user,
          fake_gateway, register_plugin):
    from kassa.extensions import db as _db
    from kassa.services import billing_run, cards, plugin_settings, settings, users

    register_plugin(FakeExport(), "fakeexport", enable_for=provider.id)
    register_plugin(IdlePlugin(), "idle")
    people = {
        "cloud_admin": admin,
        "staff": make_user(provider, "staff", privileges=STAFF_PRIVILEGES, actor=admin),
        "reseller_admin": reseller_admin,
        "reseller_subadmin": make_user(reseller, "reseller_subadmin", privileges=SUBADMIN_PRIVILEGES,
                                       actor=reseller_admin),
        "customer_admin": customer_admin,
        "customer_user": make_user(customer, "customer_user", privileges=CUSTOMER_USER_PRIVILEGES,
                                   actor=customer_admin),
    }
    rc = make_org("customer", parent=reseller, name="Reseller Customer", actor=reseller_admin,
                  email="billing@rc.example")
    rc_user = make_user(rc, "customer_user", privileges=CUSTOMER_USER_PRIVILEGES, actor=reseller_admin)
    svc = service(admin)
    tax = rule(admin)
    sub_c = subscribe(admin, customer, [(svc, 2)], name="Direct contract")
    sub_rc = subscribe(reseller_admin, rc, [(svc, 3)], name="Reseller customer contract")
    cards.add_card(admin, customer, "tok_visa_4242")
    run = billing_run.start(admin, provider.id, background=False)
    order, token = _order(app, reseller_admin, "buyer@ordered.example", svc)
    order_p, token_p = _order(app, admin, "buyer@direct-order.example", svc)
    paid_c, paid_rc = _paid_invoice(admin, customer), _paid_invoice(admin, rc)
    pay_c, pay_rc = _payment(customer_admin, customer), _payment(reseller_admin, rc)

    # another provider's tenant, with one of everything
    other = make_org("provider", name="Other Provider", country="IN", state="Kerala")
    bs = settings.billing_settings(other.id)
    bs.currency, bs.precision = "INR", 2
    _db.session.add(bs)
    _db.session.commit()
    admin2 = make_user(other, "cloud_admin", email="admin@other.example", primary=True)
    plugin_settings.set_enabled(admin2, "fakegateway", True)
    plugin_settings.save_settings(admin2, "fakegateway", {"api_key": "good-key", "webhook_secret": "whsec_other"})
    app.extensions["kassa_plugins"].forget_cache()
    c2 = make_org("customer", parent=other, name="Foreign Customer", email="billing@foreign.example")
    svc2 = service(admin2)
    foreign_order, foreign_token = _order(app, admin2, "buyer@foreign-order.example", svc2)
    foreign = _tenant_ids(org=c2, invoice=_paid_invoice(admin2, c2), sub=subscribe(admin2, c2, [(svc2, 1)]),
                          payment=_payment(admin2, c2), user=make_user(other, "staff", actor=admin2),
                          order=foreign_order, token=foreign_token, rule_=rule(admin2), svc=svc2,
                          run=billing_run.start(admin2, other.id, background=False), provider=other)
    foreign["token_id"] = users.create_api_token(admin2, "foreign")[1].id

    common = dict(rule_=tax, svc=svc, run=run, provider=provider, order=order, token=token,
                  token_id=users.create_api_token(admin, "not yours")[1].id)
    provider_ids = _tenant_ids(org=customer, invoice=paid_c, sub=sub_c, payment=pay_c, user=people["staff"],
                               **common)
    reseller_ids = _tenant_ids(org=rc, invoice=paid_rc, sub=sub_rc, payment=pay_rc,
                               user=people["reseller_subadmin"], **common)
    customer_ids = _tenant_ids(org=customer, invoice=paid_c, sub=sub_c, payment=pay_c,
                               user=people["customer_user"], **common)
    own = {"cloud_admin": provider_ids, "staff": provider_ids, "reseller_admin": reseller_ids,
           "reseller_subadmin": reseller_ids, "customer_admin": customer_ids, "customer_user": customer_ids,
           "anonymous": provider_ids}
    # the same provider, outside the role's scope
    for_resellers = dict(reseller_ids, org_id=customer.id, invoice_id=paid_c.id, subscription_id=sub_c.id,
                         item_id=sub_c.items[0].id, payment_id=pay_c.id, user_id=people["customer_user"].id,
                         order_id=order_p.id, token=token_p)
    for_customers = dict(customer_ids, org_id=rc.id, invoice_id=paid_rc.id, subscription_id=sub_rc.id,
                         item_id=sub_rc.items[0].id, payment_id=pay_rc.id, user_id=rc_user.id)
    cross = {"reseller_admin": for_resellers, "reseller_subadmin": for_resellers,
             "customer_admin": for_customers, "customer_user": for_customers}
    return World(users=people, own=own, cross=cross, foreign=foreign, app=app, admin=admin)


# ---------------------------------------------------------------------------- requests


def _prepare(world: World, key: str, role: str, ids: dict) -> dict:
    """Objects a request consumes, made for it: a rule to delete, a token to revoke, a card to remove."""
    from kassa.services import cards, users

    if key in ("POST /billing/tax-rules/<int:rule_id>/delete", "DELETE /api/v1/tax-rules/<int:rule_id>") and \
            ids is world.own[role]:
        return dict(ids, rule_id=rule(world.admin, country=next(world.countries), name="Spare").id)
    if key == "POST /profile/tokens/<int:token_id>/revoke" and ids is world.own[role]:
        owner = world.users.get(role, world.admin)
        return dict(ids, token_id=users.create_api_token(owner, f"spare {next(world.tokens)}")[1].id)
    if key == "DELETE /api/v1/organisations/<int:org_id>/card" and ids is world.own[role]:
        from kassa.extensions import db
        from kassa.models import Organisation

        org = db.session.get(Organisation, ids["org_id"])
        if cards.active_card(org.id) is None:
            cards.add_card(world.admin, org, f"tok_visa_{4000 + next(world.tokens)}")
    if key in ("POST /plugins/<name>/toggle", "POST /api/v1/plugins/<name>/disable"):
        return dict(ids, name="idle")
    return ids


def _url(key: str, ids: dict) -> str:
    path = key.split(" ", 1)[1]
    url = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(ids[m.group(1)]), path)
    if key in QUERY:
        url += "?" + QUERY[key].format(**ids)
    return url


def _body(key: str, ids: dict) -> dict:
    def fill(value):
        return value.format(**ids) if isinstance(value, str) else value

    body = {k: fill(v) for k, v in BODY.get(key, {}).items()}
    if key.startswith(("POST /api/", "PUT /api/", "PATCH /api/")):
        for k in ("org_id",):
            if k in body:
                body[k] = int(body[k])
    return body


class Clients:
    """A console session and an API token per role (and both without credentials)."""

    def __init__(self, app, world: World, console, api):
        self.app = app
        self.console = {role: console(user) for role, user in world.users.items()}
        self.console["anonymous"] = console()
        self.csrf = {role: c.token() for role, c in self.console.items()}
        self.api = {role: api(user) for role, user in world.users.items()}
        self.api["anonymous"] = Api(app.test_client(), "")
        self.api["anonymous"].headers = {}
        self.users = world.users
        self.make_console = console

    def send(self, role: str, key: str, url: str, body: dict):
        method = key.split(" ", 1)[0]
        if url.startswith("/api/"):
            return getattr(self.api[role], method.lower())(url, json=body if method != "GET" else None)
        if key.startswith("POST /webhooks/"):
            return isolated(self.app.test_client().post, url, data=b"{}", content_type="application/json")
        if method == "GET":
            return self.console[role].get(url)
        if key == "POST /logout" and role != "anonymous":  # a session of its own: signing out ends it
            c = self.make_console(self.users[role])
            return c.raw_post(url, data={"csrf_token": c.token()})
        return self.console[role].raw_post(url, data=dict(body, csrf_token=self.csrf[role]))


def _sign_in_redirect(response) -> bool:
    location = response.headers.get("Location", "")
    return response.status_code == 302 and re.match(r"^(https?://[^/]+)?/login\?next=", location) is not None


def verdict(method: str, expected: str, response) -> str | None:
    """None when ``response`` is what ``expected`` says, else what is wrong."""
    status = response.status_code
    if expected == "L":
        return None if _sign_in_redirect(response) else "expected the sign-in redirect"
    if expected == "U":
        body = response.get_json(silent=True) or {}
        ok = status == 401 and body.get("error", {}).get("status") == 401
        return None if ok else "expected 401 with a JSON error"
    if expected == "P":
        return None if status == 403 else "expected 403"
    if expected == "N":
        return None if status == 404 else "expected 404"
    if expected.isdigit():
        return None if status == int(expected) else f"expected {expected}"
    if _sign_in_redirect(response):
        return "sent to sign in"
    if expected == "R":
        return None if status in (301, 302, 303) else "expected a redirect"
    # Y
    if method == "GET":
        return None if status == 200 else "expected 200"
    if status in (401, 403, 404, 405) or status >= 500:
        return f"expected the view's own answer, not {status}"
    return None


def _describe(role, key, url, response, problem) -> str:
    where = response.headers.get("Location", "")
    text = response.get_data(as_text=True) if not response.is_streamed else ""
    message = re.search(r'class="flash[^"]*"[^>]*>([^<]*)<', text) or re.search(r'"message": ?"([^"]*)"', text)
    detail = (f" → {where}" if where else "") + (f" ({message.group(1).strip()[:120]})" if message else "")
    return f"{role:18} {key}\n{'':18} {url}: {response.status_code}{detail}: {problem}"


def test_every_route_as_every_role(app, world, console, api):
    from kassa.services import cards

    max_declines = cards.card_settings(world.admin.org_id).max_declines
    clients = Clients(app, world, console, api)
    problems = []
    checked = 0

    def check(role, key, ids, expected):
        nonlocal checked
        ids = _prepare(world, key, role, ids)
        url = _url(key, ids)
        response = clients.send(role, key, url, _body(key, ids))
        problem = verdict(key.split(" ", 1)[0], expected, response)
        checked += 1
        if problem:
            problems.append(_describe(role, key, url, response, problem))

    for key in sorted(TABLE, key=lambda k: (k.split(" ", 1)[1], k)):
        expected = expectations(key)
        params = set(re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", key))
        tenant_bound = key not in PUBLIC and bool(params - SHARED_PARAMS)
        for role in ROLES:
            check(role, key, world.own[role], expected[role])
            if not tenant_bound or role == "anonymous":
                continue
            # allowed with its own ids: elsewhere it is 404; refused: refused the same way
            elsewhere = "N" if expected[role] in ("Y", "R") else expected[role]
            check(role, key, world.foreign, elsewhere)
            if role in world.cross:
                check(role, key, world.cross[role], elsewhere)

    assert checked > 3 * len(TABLE)
    assert not problems, f"{len(problems)} of {checked} answers differ from the table:\n" + "\n".join(problems)
    _assert_nothing_harmed(world, max_declines)


def _assert_nothing_harmed(world: World, max_declines: int) -> None:
    """The refusing bodies really were refused: the paid invoices are still paid and not
    cancelled, the gateway is enabled with its secrets, the card settings are unchanged,
    the idle plugin is still off."""
    from kassa.extensions import db
    from kassa.models import Invoice
    from kassa.services import cards, invoicing, plugin_settings

    db.session.expire_all()
    for role in ("cloud_admin", "reseller_admin"):
        inv = db.session.get(Invoice, world.own[role]["invoice_id"])
        assert inv.cancelled_at is None and invoicing.status(inv) == "paid", inv.number
    provider_id = world.admin.org_id
    assert plugin_settings.is_enabled(provider_id, "fakegateway")
    assert plugin_settings.settings_for(provider_id, "fakegateway").get("label") == "Fake gateway"
    assert plugin_settings.masked_secrets(provider_id, "fakegateway")
    assert not plugin_settings.is_enabled(provider_id, "idle")
    assert cards.card_settings(provider_id).max_declines == max_declines


# ---------------------------------------------------------------------------- own billing


def test_an_organisation_does_not_manage_its_own_billing(db, fake_gateway, console, api, reseller, reseller_admin,
                                                         admin):
    """Its parent does: a reseller admin (who manages its customers' invoices, wallets and
    subscriptions) may not cancel or mark paid its own invoices, move money in its own
    wallet or change its own subscription. It may see and pay them."""
    from kassa.services import invoicing, wallet

    inv = _invoice(admin, reseller)
    sub = subscribe(admin, reseller, [(service(admin, code="vm.reseller"), 1)], name="Reseller's own contract")
    item = sub.items[0].id
    c, a = console(reseller_admin), api(reseller_admin)
    refused = [
        c.post(f"/billing/invoices/{inv.id}/cancel", {"reason": "not paying"}),
        c.post(f"/billing/invoices/{inv.id}/adjust-offline", {"mark_as_paid": "1", "reference": "SELF"}),
        c.post(f"/billing/wallet/{reseller.id}", {"kind": "wallet_topup", "amount": "1000"}),
        c.post("/billing/invoices/new", {"for": "reseller", "org_id": str(reseller.id), "status": "paid",
                                         "due_date": "2026-01-20", "period_from": "2026-01-01",
                                         "period_to": "2026-01-31", "items-0-description": "Self",
                                         "items-0-quantity": "1", "items-0-unit_price": "1"}),
        c.post(f"/subscriptions/{sub.id}/status", {"action": "suspend"}),
        c.post(f"/subscriptions/{sub.id}/items/{item}", {"units": "0"}),
        c.post(f"/subscriptions/{sub.id}/items", {"service_id": str(sub.items[0].service_id), "units": "1"}),
        c.post(f"/subscriptions/{sub.id}/auto-deduction", {"enabled": "1"}),
        c.post("/subscriptions/new", {"org_id": str(reseller.id), "name": "Free", "items-0-service_id":
                                      str(sub.items[0].service_id), "items-0-units": "1"}),
        a.post(f"/api/v1/invoices/{inv.id}/cancel", json={}),
        a.post(f"/api/v1/invoices/{inv.id}/adjust-offline", json={"mark_as_paid": True, "reference": "SELF"}),
        a.post(f"/api/v1/organisations/{reseller.id}/wallet", json={"kind": "wallet_topup", "amount": "1000"}),
        a.post("/api/v1/invoices", json={"for": "reseller", "org_id": reseller.id, "status": "paid",
                                         "due_date": "2026-01-20", "period_from": "2026-01-01",
                                         "period_to": "2026-01-31",
                                         "items": [{"description": "Self", "quantity": "1", "unit_price": "1"}]}),
        a.post(f"/api/v1/subscriptions/{sub.id}/status", json={"action": "suspend"}),
        a.patch(f"/api/v1/subscriptions/{sub.id}/items/{item}", json={"units": "0"}),
        a.post(f"/api/v1/subscriptions/{sub.id}/items",
               json={"service_id": sub.items[0].service_id, "units": "1", "unit_price": "0"}),
        a.put(f"/api/v1/subscriptions/{sub.id}/auto-deduction", json={"enabled": True}),
        a.post("/api/v1/subscriptions", json={"org_id": reseller.id, "name": "Free", "items": [
            {"service_id": sub.items[0].service_id, "units": "1", "unit_price": "0"}]}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused), [
        (r.request.path, r.status_code) for r in refused]
    assert invoicing.status(inv) == "unpaid" and inv.cancelled_at is None
    assert wallet.balance(reseller) == 0
    assert sub.status == "active" and not sub.auto_deduction and len(sub.items) == 1
    # what it may do with its own bills: see them, and pay them
    assert c.get(f"/billing/invoices/{inv.id}").status_code == 200
    assert a.get(f"/api/v1/invoices/{inv.id}").status_code == 200
    paying = c.post(f"/billing/invoices/{inv.id}/pay", {"method": "hosted"})
    assert paying.status_code == 302 and paying.headers["Location"].startswith("http://127.0.0.1/fakehosted/")
    # and the provider still manages them
    assert console(admin).post(f"/billing/wallet/{reseller.id}", {"kind": "wallet_topup", "amount": "10",
                                                                   "reference": "NEFT"}).status_code == 302
    assert wallet.balance(reseller) == 10


def test_a_customer_admin_cannot_credit_its_own_wallet(db, console, api, customer, customer_admin):
    """Customers hold payments.capture to pay with their card; moving wallet money is not
    theirs to do (a top-up out of thin air): the route does not exist for them."""
    from kassa.services import wallet

    assert console(customer_admin).post(f"/billing/wallet/{customer.id}", {
        "kind": "wallet_topup", "amount": "1000000"}).status_code == 404
    assert api(customer_admin).post(f"/api/v1/organisations/{customer.id}/wallet", json={
        "kind": "wallet_topup", "amount": "1000000"}).status_code == 404
    assert wallet.balance(customer) == 0
