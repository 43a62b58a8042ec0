"""The GST computation: place of supply, CGST + SGST or IGST, exports under LUT.

Rounding is line-level, like the core's built-in engine: every component of every
line is rounded once with :func:`kassa.money.round_money` (half-up, to the
billing precision). Within a state the line's tax is split at half the rate each
and CGST and SGST are each rounded from that half, so they are always equal and
the line's tax is twice one rounded half; the invoice's tax is the sum of all
components, so it always equals what the invoice prints line by line.

Place of supply of a service (IGST Act, s. 12(2)): the registered buyer's
location (the state of its GSTIN), else the buyer's address on record (its
state), else the supplier's location. A buyer outside India makes an export
(s. 13 / s. 2(6)): zero-rated, issued under LUT without payment of IGST.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kassa.contracts import Party, TaxComponent, TaxDraft, TaxLineQuote, TaxQuote
from kassa.money import round_money

from .gstin import valid_gstin
from .settings import RateTable, normalize_rate
from .states import EXPORT_CODE, place_label, state_code

ENGINE_ID = "india_gst"
HUNDRED = Decimal(100)
EXEMPT = "exempt"
B2B, B2C, EXPORT = "B2B", "B2C", "EXPWOP"
INTRA, INTER = "intra", "inter"
LUT_NOTE = "Supply meant for export of services under LUT without payment of IGST"


class GstDataError(ValueError):
    """The seller or buyer lacks what GST needs (a state); the message says what to fix."""


@dataclass(frozen=True)
class Supply:
    kind: str  # intra | inter | export
    supply_type: str  # B2B | B2C | EXPWOP
    place_code: str
    seller_code: str
    seller_gstin: str
    buyer_gstin: str


def is_indian(party: Party) -> bool:
    return (party.country or "IN").strip().upper() == "IN"


def seller_state(seller: Party) -> str:
    gstin = valid_gstin(seller.tax_id)
    if gstin:
        return gstin[:2]
    code = state_code(seller.state)
    if code is None:
        if seller.state:
            raise GstDataError(f"GST: the provider's state {seller.state!r} is not an Indian state; "
                               "use a name such as 'Tamil Nadu' or its GST code (33).")
        raise GstDataError("GST: set the provider's state (or its GSTIN) to work out CGST + SGST or IGST.")
    return code


def supply_for(seller: Party, buyer: Party) -> Supply:
    seller_gstin = valid_gstin(seller.tax_id)
    if not is_indian(buyer):
        return Supply(kind="export", supply_type=EXPORT, place_code=EXPORT_CODE,
                      seller_code=seller_state(seller), seller_gstin=seller_gstin, buyer_gstin="")
    own = seller_state(seller)
    buyer_gstin = valid_gstin(buyer.tax_id)
    if buyer_gstin:
        place = buyer_gstin[:2]
    elif buyer.state:
        place = state_code(buyer.state)
        if place is None:
            raise GstDataError(f"GST: {buyer.name}'s state {buyer.state!r} is not an Indian state; "
                               "use a name such as 'Karnataka' or its GST code (29).")
    else:
        place = own  # no address on record: the supplier's location (IGST Act s. 12(2)(b))
    return Supply(kind=INTRA if place == own else INTER, supply_type=B2B if buyer_gstin else B2C,
                  place_code=place, seller_code=own, seller_gstin=seller_gstin, buyer_gstin=buyer_gstin)


def line_components(amount: Decimal, rate: Decimal, kind: str, precision: int) -> tuple[TaxComponent, ...]:
    """The components of one taxable line at ``rate`` percent, each rounded once."""
    if kind == "export":
        return (TaxComponent(name="IGST", rate=Decimal(0), amount=round_money(Decimal(0), precision)),)
    if rate == 0:
        return ()  # nil-rated
    if kind == INTRA:
        half = normalize_rate(rate / 2)
        each = round_money(amount * half / HUNDRED, precision)
        return (TaxComponent(name="CGST", rate=half, amount=each), TaxComponent(name="SGST", rate=half, amount=each))
    return (TaxComponent(name="IGST", rate=rate, amount=round_money(amount * rate / HUNDRED, precision)),)


def quote(draft: TaxDraft, seller: Party, buyer: Party, rates: RateTable) -> TaxQuote:
    supply = supply_for(seller, buyer)
    lines, line_rates = [], []
    for line in draft.lines:
        if not line.taxable:
            lines.append(TaxLineQuote(key=line.key))
            line_rates.append(EXEMPT)
            continue
        rate = rates.rate_for(line.tax_code)
        components = line_components(line.amount, rate, supply.kind, draft.precision)
        lines.append(TaxLineQuote(key=line.key, components=components))
        charged = Decimal(0) if supply.kind == "export" else rate
        line_rates.append(str(normalize_rate(charged)))
    details = {
        "place_of_supply": place_label(supply.place_code),
        "place_of_supply_code": supply.place_code,
        "supply_type": supply.supply_type,
        "seller_gstin": supply.seller_gstin,
        "seller_state_code": supply.seller_code,
        "reverse_charge": "N",
        "interstate": "N" if supply.kind == INTRA else "Y",
        # the GST rate charged on each line, in line order ("exempt" for non-taxable lines)
        "line_rates": ",".join(line_rates),
    }
    note = ""
    if supply.supply_type == B2B:
        details["buyer_gstin"] = supply.buyer_gstin
    if supply.kind == "export":
        note = LUT_NOTE
        if rates.lut_number:
            note += f" (LUT {rates.lut_number})"
            details["lut_number"] = rates.lut_number
    return TaxQuote(engine=ENGINE_ID, lines=tuple(lines), note=note, details=details)
