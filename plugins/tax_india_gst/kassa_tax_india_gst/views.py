"""Reading the GST of an issued invoice back from its :class:`InvoiceView`.

Every amount comes from the invoice as issued, never recomputed from today's
settings: the line's tax (``InvoiceLineView.tax``), the invoice's breakup, and
what the engine recorded in ``tax_details`` when it quoted (place of supply,
supply type, the rate charged on each line). Within a state the engine makes
CGST and SGST of a line equal, so each is half the line's tax.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from kassa.contracts import InvoiceLineView, InvoiceView, TaxComponent
from kassa.money import round_money

from .engine import B2B, B2C, ENGINE_ID, EXEMPT, EXPORT
from .settings import normalize_rate
from .states import state_name

ZERO = Decimal(0)


def fixed(amount: Decimal, places: int) -> Decimal:
    """``amount`` written with ``places`` decimals (100.000000 -> 100.00) without changing its value."""
    rounded = round_money(amount, places)
    return rounded if rounded == amount else amount.normalize()


@dataclass(frozen=True)
class GstLine:
    position: int
    line: InvoiceLineView
    sac: str
    exempt: bool  # not taxable
    rate: Decimal  # the GST rate charged (0 for exports and nil-rated lines)
    taxable_value: Decimal
    cgst: Decimal
    sgst: Decimal
    igst: Decimal

    @property
    def tax(self) -> Decimal:
        return self.cgst + self.sgst + self.igst

    @property
    def total(self) -> Decimal:
        return self.taxable_value + self.tax

    @property
    def nil_rated(self) -> bool:
        return not self.exempt and self.rate == 0


@dataclass(frozen=True)
class GstInvoice:
    invoice: InvoiceView
    supply_type: str
    place_code: str
    place_of_supply: str
    interstate: bool
    seller_gstin: str
    buyer_gstin: str
    reverse_charge: str
    lut_number: str
    lines: tuple[GstLine, ...]
    precision: int
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    breakup: tuple[TaxComponent, ...]

    @property
    def is_export(self) -> bool:
        return self.supply_type == EXPORT

    @property
    def is_b2b(self) -> bool:
        return self.supply_type == B2B

    @property
    def is_b2c(self) -> bool:
        return self.supply_type == B2C

    def total_of(self, name: str) -> Decimal:
        return fixed(sum((getattr(line, name) for line in self.lines), ZERO), self.precision)

    def breakup_total(self, name: str) -> Decimal:
        return fixed(sum((c.amount for c in self.breakup if c.name == name), ZERO), self.precision)

    def by_rate(self, *, include_exempt: bool = False) -> dict[Decimal, dict[str, Decimal]]:
        """Taxable value and tax per rate charged, for GSTR-1 (nil-rated and exempt lines left out unless asked)."""
        out: dict[Decimal, dict[str, Decimal]] = defaultdict(lambda: dict(taxable=ZERO, igst=ZERO, cgst=ZERO,
                                                                           sgst=ZERO))
        for line in self.lines:
            if (line.exempt or line.nil_rated) and not include_exempt:
                continue
            row = out[line.rate]
            row["taxable"] += line.taxable_value
            row["igst"] += line.igst
            row["cgst"] += line.cgst
            row["sgst"] += line.sgst
        return dict(out)


def is_gst(invoice: InvoiceView) -> bool:
    return invoice.tax_engine == ENGINE_ID


def _half(tax: Decimal) -> Decimal:
    """CGST of a line from its tax: the engine makes both halves equal, so this is exact;
    written at the tax's own places (the SGST is the rest, so the two always add up)."""
    exponent = tax.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return round_money(tax / 2, min(places, 6))


def read(invoice: InvoiceView, precision: int = 2) -> GstInvoice:
    """The invoice's GST, amounts written at the billing ``precision``."""
    details = invoice.tax_details or {}
    supply_type = details.get("supply_type", B2C)
    interstate = details.get("interstate", "Y") == "Y"
    recorded = [r for r in (details.get("line_rates") or "").split(",") if r]
    lines = []
    for position, line in enumerate(invoice.lines, start=1):
        mark = recorded[position - 1] if position <= len(recorded) else ""
        exempt = mark == EXEMPT or (mark == "" and line.tax == 0)
        rate = normalize_rate(Decimal(mark)) if mark not in ("", EXEMPT) else ZERO
        zero = fixed(ZERO, precision)
        if supply_type == EXPORT or interstate:
            cgst = sgst = zero
            igst = fixed(line.tax, precision)
        else:
            cgst = fixed(_half(line.tax), precision)
            sgst = fixed(line.tax - cgst, precision)
            igst = zero
        lines.append(GstLine(position=position, line=line, sac=line.tax_code, exempt=exempt, rate=rate,
                             taxable_value=fixed(line.amount, precision), cgst=cgst, sgst=sgst, igst=igst))
    place_code = details.get("place_of_supply_code", "")
    return GstInvoice(
        invoice=invoice, supply_type=supply_type, place_code=place_code,
        place_of_supply=details.get("place_of_supply") or (f"{place_code}-{state_name(place_code)}"
                                                           if place_code else ""),
        interstate=interstate, seller_gstin=details.get("seller_gstin", ""),
        buyer_gstin=details.get("buyer_gstin", "") if supply_type == B2B else "",
        reverse_charge=details.get("reverse_charge", "N"), lut_number=details.get("lut_number", ""),
        lines=tuple(lines), precision=precision, subtotal=fixed(invoice.subtotal, precision),
        tax_total=fixed(invoice.tax_total, precision), total=fixed(invoice.total, precision),
        breakup=tuple(TaxComponent(name=c.name, rate=normalize_rate(c.rate), amount=fixed(c.amount, precision))
                      for c in invoice.tax_breakup))
