"""The GST block of an invoice document (``kassa_invoice_context``).

``gst`` holds the data (Decimals for amounts) for a renderer that knows GST; the
generic ``seller_lines``, ``buyer_lines``, ``notes`` and ``sections`` say the same
in printable strings so any renderer can show it.
"""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from kassa.contracts import InvoiceView
from kassa.money import format_money

from .engine import LUT_NOTE
from .settings import normalize_rate
from .views import ZERO, GstInvoice, read
from .words import amount_in_words

SUPPLY_LABELS = {
    "B2B": "B2B (registered buyer)",
    "B2C": "B2C (unregistered buyer)",
    "EXPWOP": "Export of services without payment of IGST (under LUT)",
}


def _pct(rate: Decimal) -> str:
    return f"{normalize_rate(rate):f}%"


def gst_block(gst: GstInvoice) -> dict:
    invoice = gst.invoice
    breakup = [{"name": c.name, "rate": c.rate, "amount": c.amount} for c in gst.breakup]
    block = {
        "seller_gstin": gst.seller_gstin,
        "place_of_supply": gst.place_of_supply,
        "place_of_supply_code": gst.place_code,
        "supply_type": gst.supply_type,
        "supply_type_label": SUPPLY_LABELS.get(gst.supply_type, gst.supply_type),
        "reverse_charge": gst.reverse_charge,
        "interstate": gst.interstate,
        "lines": [{
            "position": l.position, "description": l.line.description, "sac": l.sac, "exempt": l.exempt,
            "rate": l.rate, "taxable_value": l.taxable_value, "cgst": l.cgst, "sgst": l.sgst, "igst": l.igst,
            "tax": l.tax, "total": l.total,
        } for l in gst.lines],
        "breakup": breakup,
        "taxable_total": gst.subtotal,
        "cgst_total": gst.breakup_total("CGST"),
        "sgst_total": gst.breakup_total("SGST"),
        "igst_total": gst.breakup_total("IGST"),
        "tax_total": gst.tax_total,
        "total": gst.total,
        "amount_in_words": amount_in_words(gst.total, invoice.currency),
    }
    if gst.is_b2b:
        block["buyer_gstin"] = gst.buyer_gstin
    if gst.is_export:
        block["lut_number"] = gst.lut_number
        block["lut_note"] = invoice.tax_note or LUT_NOTE
    return block


def invoice_context(invoice: InvoiceView, precision: int = 2) -> dict:
    gst = read(invoice, precision)
    block = gst_block(gst)

    def money(amount: Decimal) -> str:
        return format_money(amount, invoice.currency, locale="en_IN", places=max(precision, 0))

    seller_lines = [f"GSTIN: {gst.seller_gstin}"] if gst.seller_gstin else []
    buyer_lines = [f"GSTIN: {gst.buyer_gstin}"] if gst.is_b2b else []
    buyer_lines.append(f"Place of supply: {gst.place_of_supply}")
    notes = [f"Amount in words: {block['amount_in_words']}"]
    if gst.is_export:
        notes.append(block["lut_note"])

    rows = [["Supply type", block["supply_type_label"]], ["Place of supply", gst.place_of_supply],
            ["Tax payable on reverse charge", "Yes" if gst.reverse_charge == "Y" else "No"]]
    by_sac: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for line in gst.lines:
        kind = "exempt" if line.exempt else ("nil-rated" if line.nil_rated and not gst.is_export
                                             else _pct(line.rate))
        by_sac[(line.sac or "-", kind)] += line.taxable_value
    for (sac, kind), value in by_sac.items():
        rows.append([f"SAC {sac} ({kind}): taxable value", money(value)])
    for component in gst.breakup:
        rows.append([f"{component.name} @ {_pct(component.rate)}", money(component.amount)])
    rows.append(["Total tax", money(gst.tax_total)])
    rows.append(["Invoice total", money(gst.total)])
    return {
        "gst": block,
        "seller_lines": seller_lines,
        "buyer_lines": buyer_lines,
        "notes": notes,
        "sections": [{"title": "GST summary", "rows": rows}],
    }
