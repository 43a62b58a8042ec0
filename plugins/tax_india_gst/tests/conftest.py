"""Fixtures for the India GST plugin: the plugin enabled for the test provider (a
company in Tamil Nadu with a GSTIN) and buyers in and outside India."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from gst_helpers import PLUGIN, SELLER_GSTIN, SETTINGS  # noqa: E402


@pytest.fixture
def gst(app, db, provider, admin):
    """The plugin enabled and configured for ``provider``, which gets a GSTIN and an address."""
    from kassa.extensions import db as _db
    from kassa.services import plugin_settings

    provider.tax_id = SELLER_GSTIN
    provider.city, provider.postal_code, provider.address_line1 = "Chennai", "600002", "12 Anna Salai"
    _db.session.commit()
    plugin_settings.set_enabled(admin, PLUGIN, True)
    plugin_settings.save_settings(admin, PLUGIN, SETTINGS)
    return provider


@pytest.fixture
def hooks(gst):
    from kassa.plugins import host

    host().forget_cache()
    return host().hooks(gst.id)


@pytest.fixture
def buyer(make_org, provider):
    """``buyer(name, state=..., tax_id=..., country=...)``: a customer of the provider."""
    def make(name, *, state="", tax_id="", country="IN", **fields):
        fields.setdefault("city", "Somewhere")
        fields.setdefault("postal_code", "560001" if country == "IN" else "94105")
        fields.setdefault("address_line1", f"1 {name} Road")
        fields.setdefault("email", "billing@" + ("".join(c for c in name.lower() if c.isalnum()) or "buyer") + ".example")
        return make_org("customer", parent=provider, name=name, country=country, state=state, tax_id=tax_id,
                        **fields)

    return make
