"""Helpers and data shared by the India GST plugin's tests (conftest puts this folder on sys.path)."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from decimal import Decimal

from kassa.contracts import Party, ProviderContext, TaxDraft, TaxDraftLine

D = Decimal
PLUGIN = "tax_india_gst"

SELLER_GSTIN = "33AABCC1234D1ZI"  # Tamil Nadu
TN_GSTIN = "33AAFCT4321K1ZG"  # another company in Tamil Nadu
KA_GSTIN = "29AABCD5678E1ZG"  # Karnataka
MH_GSTIN = "27AAPFU0939F1ZV"  # Maharashtra (python-stdnum's example)
DL_GSTIN = "07AAGCM1111N1ZL"  # Delhi

#: Lines used across the tests: two rates, an exempt line and an amount whose halves round up.
MIXED = (
    ("Cloud VM", "998315", "1234.57", True),  # 18 %
    ("Backup storage", "998314", "999.99", True),  # 12 % (set in the plugin settings)
    ("Support (exempt)", "999293", "500.00", False),
    ("Tiny add-on", "998315", "0.50", True),  # 9 % of 0.50 = 0.045 -> 0.05 (half-up)
)
SETTINGS = {"default_rate": "18", "sac_rates": "998314=12\n998599=0", "lut_number": "AD3301260001234"}


def draft_lines(spec=MIXED):
    from kassa.services.invoicing import DraftLine

    return [DraftLine(description=desc, quantity=D(1), unit_price=D(amount), amount=D(amount), taxable=taxable,
                      tax_code=sac) for desc, sac, amount, taxable in spec]


def issue(provider, org, spec=MIXED, day=date(2026, 1, 10)):
    from kassa.services import invoicing

    return invoicing.issue(provider=provider, buyer=org, lines=draft_lines(spec), issue_date=day,
                           period_start=date(2026, 1, 1), period_end=date(2026, 2, 1))


def view(invoice):
    from kassa.services import invoicing

    return invoicing.view(invoice)


def ctx_for(provider, settings=None):
    """A ProviderContext as the core builds it, with this plugin's stored settings."""
    from kassa.services import plugin_settings

    values = plugin_settings.settings_for(provider.id, PLUGIN) if settings is None else settings
    return ProviderContext(provider_id=provider.id, currency="INR", precision=2,
                           now=datetime(2026, 1, 10, tzinfo=timezone.utc), settings={PLUGIN: values})


def party(name="Buyer", *, country="IN", state="", tax_id="", kind="customer", org_id=2) -> Party:
    return Party(org_id=org_id, kind=kind, name=name, country=country, state=state, tax_id=tax_id)


SELLER = Party(org_id=1, kind="provider", name="Cloud7", country="IN", state="Tamil Nadu", tax_id=SELLER_GSTIN)


def tax_draft(spec=MIXED, precision=2) -> TaxDraft:
    return TaxDraft(currency="INR", precision=precision, issue_date=date(2026, 1, 10), lines=tuple(
        TaxDraftLine(key=str(i), description=desc, amount=D(amount), taxable=taxable, tax_code=sac)
        for i, (desc, sac, amount, taxable) in enumerate(spec)))


def components(quote):
    """{line key: [(name, rate, amount), ...]} with rates and amounts as strings."""
    return {line.key: [(c.name, f"{c.rate.normalize():f}", f"{c.amount:f}") for c in line.components]
            for line in quote.lines}


def breakup(invoice):
    """{(name, rate): amount} of an issued invoice's taxes, rates normalised."""
    return {(t.name, t.rate.normalize()): t.amount for t in invoice.taxes}


def csv_sections(text: str) -> dict[str, dict]:
    """A GSTR-1 CSV as {section: {"columns": [...], "rows": [...], "total": [...]}} plus "HEADER": rows."""
    rows = list(csv.reader(io.StringIO(text)))
    out: dict = {"HEADER": []}
    current = None
    for row in rows:
        if not row:
            current = None
            continue
        if row[0] == "Section":
            current = {"columns": None, "rows": [], "total": None}
            out[row[1]] = current
            continue
        if current is None:
            out["HEADER"].append(row)
        elif current["columns"] is None:
            current["columns"] = row
        elif row[0] == "Total":
            current["total"] = dict(zip(current["columns"], row))
        else:
            current["rows"].append(dict(zip(current["columns"], row)))
    return out
