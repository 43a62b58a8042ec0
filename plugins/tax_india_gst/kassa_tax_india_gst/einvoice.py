"""The invoice as GST e-invoice JSON, schema INV-01 version 1.1 (the IRP upload).

Field names are the notified schema's. Every line is a service (``IsServc``
"Y", ``HsnCd`` the SAC); exempt and nil-rated lines are listed at ``GstRt`` 0
so the item values add up to the invoice. ``UnitPrice`` is the line's value
divided by its quantity (a prorated line's effective price), so ``Qty`` x
``UnitPrice`` = ``TotAmt`` as the IRP checks. Amounts are the invoice's own,
line by line, so ``ValDtls`` equals the invoice's subtotal, taxes and total.

The IRP takes e-invoices for registered buyers (B2B) and exports only; a B2C
invoice gets none (the renderer returns ``None``), nor does a seller without a
GSTIN.

Numbers are written straight from Decimal by :func:`dumps` (never through
float); ``Pin`` is an integer, codes and dates are strings.
"""
from __future__ import annotations

import json
from decimal import Decimal

from kassa.contracts import InvoiceView, Party
from kassa.money import round_money

from .gstin import valid_gstin
from .settings import normalize_rate
from .states import EXPORT_CODE, state_code
from .views import ZERO, GstInvoice, fixed, read

VERSION = "1.1"
SERVICE_UNIT = "OTH"  # UQC "OTHERS": services have no unit of measure of their own
QTY_PLACES = 3
PRICE_PLACES = 3
EXPORT_PIN = 999999


def _number(value: Decimal) -> str:
    return f"{abs(value) if value == 0 else value:f}"  # never "-0.00"


def dumps(obj, indent: int = 2, _level: int = 0) -> str:
    """JSON with Decimals written exactly as JSON numbers (``Decimal("0.10")`` -> ``0.10``)."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"{obj} is not a JSON number.")
        return _number(obj)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {dumps(v, indent, _level + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(inner + dumps(v, indent, _level + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        raise TypeError("floats are not written: use Decimal.")
    return json.dumps(obj, ensure_ascii=False)


def _pin(postal_code: str) -> int | None:
    digits = "".join(ch for ch in (postal_code or "") if ch.isdigit())
    return int(digits) if len(digits) == 6 and digits[0] != "0" else None


def _clip(text: str, length: int) -> str:
    return " ".join((text or "").split())[:length]


def _party(party: Party, gstin: str, stcd: str, *, pin: int | None) -> dict:
    details = {"Gstin": gstin, "LglNm": _clip(party.name, 100)}
    address1 = _clip(party.address_line1, 100) or _clip(party.name, 100)
    details["Addr1"] = address1
    if party.address_line2:
        details["Addr2"] = _clip(party.address_line2, 100)
    details["Loc"] = _clip(party.city, 50) or _clip(party.state, 50) or address1[:50]
    if pin is not None:
        details["Pin"] = pin
    details["Stcd"] = stcd
    if party.email:
        details["Em"] = _clip(party.email, 100)
    return details


def _unit_price(amount: Decimal, quantity: Decimal) -> Decimal:
    if quantity == 0:
        return fixed(amount, PRICE_PLACES)
    return round_money(abs(amount / quantity), PRICE_PLACES)


def build(gst: GstInvoice) -> dict:
    invoice: InvoiceView = gst.invoice
    places = gst.precision
    zero = fixed(ZERO, places)
    seller_gstin = gst.seller_gstin or valid_gstin(invoice.seller.tax_id)
    seller_code = seller_gstin[:2] if seller_gstin else (state_code(invoice.seller.state) or "")
    if gst.is_export:
        buyer = _party(invoice.buyer, "URP", EXPORT_CODE, pin=EXPORT_PIN)
        pos = EXPORT_CODE
    else:
        buyer_code = gst.buyer_gstin[:2]
        buyer = _party(invoice.buyer, gst.buyer_gstin, buyer_code, pin=_pin(invoice.buyer.postal_code))
        pos = gst.place_code
    buyer = {"Gstin": buyer.pop("Gstin"), "LglNm": buyer.pop("LglNm"), "Pos": pos, **buyer}
    items = []
    for line in gst.lines:
        quantity = fixed(line.line.quantity, QTY_PLACES)
        items.append({
            "SlNo": str(line.position),
            "PrdDesc": _clip(line.line.description, 300),
            "IsServc": "Y",
            "HsnCd": line.sac,
            "Qty": quantity,
            "Unit": SERVICE_UNIT,
            "UnitPrice": _unit_price(line.taxable_value, line.line.quantity),
            "TotAmt": line.taxable_value,
            "Discount": zero,
            "AssAmt": line.taxable_value,
            "GstRt": normalize_rate(line.rate),
            "IgstAmt": line.igst,
            "CgstAmt": line.cgst,
            "SgstAmt": line.sgst,
            "CesRt": Decimal(0),
            "CesAmt": zero,
            "TotItemVal": fixed(line.total, places),
        })
    document = {
        "Version": VERSION,
        "TranDtls": {"TaxSch": "GST", "SupTyp": gst.supply_type, "RegRev": gst.reverse_charge, "EcmGstin": None,
                     "IgstOnIntra": "N"},
        "DocDtls": {"Typ": "INV", "No": invoice.number, "Dt": invoice.issue_date.strftime("%d/%m/%Y")},
        "SellerDtls": _party(invoice.seller, seller_gstin, seller_code, pin=_pin(invoice.seller.postal_code)),
        "BuyerDtls": buyer,
        "ItemList": items,
        "ValDtls": {
            "AssVal": gst.subtotal,
            "CgstVal": gst.total_of("cgst"),
            "SgstVal": gst.total_of("sgst"),
            "IgstVal": gst.total_of("igst"),
            "CesVal": zero,
            "StCesVal": zero,
            "Discount": zero,
            "OthChrg": zero,
            "RndOffAmt": zero,
            "TotInvVal": gst.total,
        },
    }
    if gst.is_export:
        export = {"CntCode": (invoice.buyer.country or "").upper()}
        if invoice.currency.upper() != "INR":
            export["ForCur"] = invoice.currency.upper()
        document["ExpDtls"] = export
    return document


def render(invoice: InvoiceView, precision: int) -> bytes | None:
    gst = read(invoice, precision)
    if not (gst.is_b2b or gst.is_export) or not (gst.seller_gstin or valid_gstin(invoice.seller.tax_id)):
        return None
    return (dumps(build(gst)) + "\n").encode("utf-8")
