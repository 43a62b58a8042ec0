"""GSTR-1 (details of outward supplies) for one month, as one CSV.

Sections, each a title row, the column row of the GST offline tool's sheet
(plus the tax amounts, so the file can be checked against the invoices), the
rows and a total row:

* B2B   - Table 4: invoices to registered buyers, one row per invoice and rate,
          ordered by the buyer's GSTIN;
* B2CL  - Table 5: inter-state invoices to unregistered buyers whose invoice
          value is above Rs 1,00,000 (Rs 2,50,000 for invoices before
          1 August 2024: CGST Rules r. 59(4) as amended by notification
          12/2024-Central Tax);
* B2CS  - Table 7: every other invoice to an unregistered buyer, summed by place
          of supply and rate;
* EXP   - Table 6A: exports of services, without payment of tax (WOPAY);
* EXEMP - Table 8: nil-rated and exempt lines of domestic invoices;
* SUMMARY - per section and in total; the totals equal the month's invoices
          (subtotal, IGST, CGST, SGST, total).

Cancelled invoices are left out, and so are invoices another tax engine taxed;
the header says how many. Every amount is the invoice's own (its lines' values
and taxes), never recomputed.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal

from kassa.contracts import InvoiceView

from .settings import normalize_rate
from .states import place_label
from .views import ZERO, GstInvoice, fixed, is_gst, read

B2CL_FROM = date(2024, 8, 1)
B2CL_LIMIT = Decimal("100000")
B2CL_LIMIT_BEFORE = Decimal("250000")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

B2B_COLUMNS = ["GSTIN/UIN of Recipient", "Receiver Name", "Invoice Number", "Invoice date", "Invoice Value",
               "Place Of Supply", "Reverse Charge", "Applicable % of Tax Rate", "Invoice Type", "E-Commerce GSTIN",
               "Rate", "Taxable Value", "Integrated Tax", "Central Tax", "State/UT Tax", "Cess Amount"]
B2CL_COLUMNS = ["Invoice Number", "Invoice date", "Invoice Value", "Place Of Supply", "Applicable % of Tax Rate",
                "Rate", "Taxable Value", "Integrated Tax", "Cess Amount", "E-Commerce GSTIN"]
B2CS_COLUMNS = ["Type", "Place Of Supply", "Applicable % of Tax Rate", "Rate", "Taxable Value", "Integrated Tax",
                "Central Tax", "State/UT Tax", "Cess Amount", "E-Commerce GSTIN"]
EXP_COLUMNS = ["Export Type", "Invoice Number", "Invoice date", "Invoice Value", "Port Code",
               "Shipping Bill Number", "Shipping Bill Date", "Rate", "Taxable Value", "Integrated Tax",
               "Cess Amount"]
EXEMP_COLUMNS = ["Description", "Nil Rated Supplies", "Exempted(other than nil rated/non GST supply)",
                 "Non-GST Supplies"]
SUMMARY_COLUMNS = ["Part of the return", "Invoices", "Invoice Value", "Taxable Value", "Integrated Tax", "Central Tax",
                   "State/UT Tax", "Cess Amount"]
EXEMP_ROWS = ("Inter-State supplies to registered persons", "Intra-State supplies to registered persons",
              "Inter-State supplies to unregistered persons", "Intra-State supplies to unregistered persons")
TITLES = {
    "B2B": "Taxable outward supplies to registered persons (Table 4)",
    "B2CL": "Inter-State supplies to unregistered persons, invoice value above the B2CL limit (Table 5)",
    "B2CS": "Other supplies to unregistered persons (Table 7)",
    "EXP": "Exports of services (Table 6A)",
    "EXEMP": "Nil rated, exempted and non-GST outward supplies (Table 8)",
    "SUMMARY": "Totals per section; they equal the invoices of the month",
}


def gst_date(day: date) -> str:
    """GSTR-1's date form: 05-Jan-2026 (independent of the locale)."""
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year}"


def b2cl_limit(day: date) -> Decimal:
    return B2CL_LIMIT if day >= B2CL_FROM else B2CL_LIMIT_BEFORE


def section_of(gst: GstInvoice) -> str:
    if gst.is_export:
        return "EXP"
    if gst.is_b2b:
        return "B2B"
    if gst.interstate and gst.total > b2cl_limit(gst.invoice.issue_date):
        return "B2CL"
    return "B2CS"


def _safe_text(text: str) -> str:
    """Names come from customers: keep a spreadsheet from reading one as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Totals:
    def __init__(self):
        self.invoices: set[int] = set()
        self.invoice_value = ZERO
        self.taxable = self.igst = self.cgst = self.sgst = ZERO

    def add_invoice(self, gst: GstInvoice) -> None:
        if gst.invoice.id not in self.invoices:
            self.invoices.add(gst.invoice.id)
            self.invoice_value += gst.total

    def add(self, row: dict) -> None:
        self.taxable += row["taxable"]
        self.igst += row["igst"]
        self.cgst += row["cgst"]
        self.sgst += row["sgst"]


def build(invoices: list[InvoiceView], period_start: date, period_end: date, precision: int) -> tuple[str, str]:
    """(csv text, seller GSTIN) of the month's GSTR-1."""
    def num(value: Decimal) -> str:
        return f"{fixed(value, precision):f}"

    def pct(rate: Decimal) -> str:
        return f"{normalize_rate(rate):f}"

    cancelled = sum(1 for i in invoices if i.cancelled)
    live = [i for i in invoices if not i.cancelled]
    other = sum(1 for i in live if not is_gst(i))
    gsts = [read(i, precision) for i in live if is_gst(i)]
    seller_gstin = next((g.seller_gstin for g in gsts if g.seller_gstin), "")
    seller_name = gsts[0].invoice.seller.name if gsts else ""

    out = io.StringIO()
    writer = csv.writer(out)
    last_day = date.fromordinal(period_end.toordinal() - 1)
    writer.writerow(["GSTR-1", "Details of outward supplies of goods or services"])
    writer.writerow(["GSTIN", seller_gstin])
    writer.writerow(["Legal name", _safe_text(seller_name)])
    writer.writerow(["Return period", f"{period_start:%m%Y}", "From", gst_date(period_start), "To",
                     gst_date(last_day)])
    writer.writerow(["Invoices", len(gsts), "Cancelled (left out)", cancelled, "Not taxed under GST (left out)",
                     other])

    totals = {name: _Totals() for name in ("B2B", "B2CL", "B2CS", "EXP", "EXEMP")}
    sections: dict[str, list[GstInvoice]] = defaultdict(list)
    for gst in gsts:
        sections[section_of(gst)].append(gst)
        totals[section_of(gst)].add_invoice(gst)

    def section(name: str, columns: list[str]) -> None:
        writer.writerow([])
        writer.writerow(["Section", name, TITLES[name]])
        writer.writerow(columns)

    def total_row(columns: list[str], values: dict) -> None:
        writer.writerow([values.get(c, "") for c in columns])

    # B2B: by recipient GSTIN, then invoice
    section("B2B", B2B_COLUMNS)
    t = totals["B2B"]
    for gst in sorted(sections["B2B"], key=lambda g: (g.buyer_gstin, g.invoice.issue_date, g.invoice.number)):
        for rate, row in sorted(gst.by_rate().items()):
            t.add(row)
            writer.writerow([gst.buyer_gstin, _safe_text(gst.invoice.buyer.name), gst.invoice.number,
                             gst_date(gst.invoice.issue_date), num(gst.total), gst.place_of_supply,
                             gst.reverse_charge, "", "Regular B2B", "", pct(rate), num(row["taxable"]),
                             num(row["igst"]), num(row["cgst"]), num(row["sgst"]), num(ZERO)])
    total_row(B2B_COLUMNS, {"GSTIN/UIN of Recipient": "Total", "Invoice Number": f"{len(t.invoices)} invoices",
                            "Invoice Value": num(t.invoice_value), "Taxable Value": num(t.taxable),
                            "Integrated Tax": num(t.igst), "Central Tax": num(t.cgst), "State/UT Tax": num(t.sgst),
                            "Cess Amount": num(ZERO)})

    # B2CL: invoice by invoice
    section("B2CL", B2CL_COLUMNS)
    t = totals["B2CL"]
    for gst in sorted(sections["B2CL"], key=lambda g: (g.invoice.issue_date, g.invoice.number)):
        for rate, row in sorted(gst.by_rate().items()):
            t.add(row)
            writer.writerow([gst.invoice.number, gst_date(gst.invoice.issue_date), num(gst.total),
                             gst.place_of_supply, "", pct(rate), num(row["taxable"]), num(row["igst"]), num(ZERO),
                             ""])
    total_row(B2CL_COLUMNS, {"Invoice Number": "Total", "Invoice date": f"{len(t.invoices)} invoices",
                             "Invoice Value": num(t.invoice_value), "Taxable Value": num(t.taxable),
                             "Integrated Tax": num(t.igst), "Cess Amount": num(ZERO)})

    # B2CS: summed by place of supply and rate
    section("B2CS", B2CS_COLUMNS)
    t = totals["B2CS"]
    grouped: dict[tuple[str, Decimal], dict] = defaultdict(lambda: dict(taxable=ZERO, igst=ZERO, cgst=ZERO, sgst=ZERO))
    for gst in sections["B2CS"]:
        for rate, row in gst.by_rate().items():
            target = grouped[(gst.place_code, rate)]
            for key in target:
                target[key] += row[key]
    for (place, rate), row in sorted(grouped.items()):
        t.add(row)
        writer.writerow(["OE", place_label(place), "", pct(rate), num(row["taxable"]), num(row["igst"]),
                         num(row["cgst"]), num(row["sgst"]), num(ZERO), ""])
    total_row(B2CS_COLUMNS, {"Type": "Total", "Place Of Supply": f"{len(t.invoices)} invoices",
                             "Taxable Value": num(t.taxable), "Integrated Tax": num(t.igst),
                             "Central Tax": num(t.cgst), "State/UT Tax": num(t.sgst), "Cess Amount": num(ZERO)})

    # EXP: exports without payment of tax; every line of an export is zero-rated
    section("EXP", EXP_COLUMNS)
    t = totals["EXP"]
    for gst in sorted(sections["EXP"], key=lambda g: (g.invoice.issue_date, g.invoice.number)):
        for rate, row in sorted(gst.by_rate(include_exempt=True).items()):
            t.add(row)
            writer.writerow(["WOPAY", gst.invoice.number, gst_date(gst.invoice.issue_date), num(gst.total), "", "",
                             "", pct(rate), num(row["taxable"]), num(row["igst"]), num(ZERO)])
    total_row(EXP_COLUMNS, {"Export Type": "Total", "Invoice Number": f"{len(t.invoices)} invoices",
                            "Invoice Value": num(t.invoice_value), "Taxable Value": num(t.taxable),
                            "Integrated Tax": num(t.igst), "Cess Amount": num(ZERO)})

    # EXEMP: nil-rated and exempt lines of domestic invoices
    section("EXEMP", EXEMP_COLUMNS)
    nil: dict[str, Decimal] = defaultdict(lambda: ZERO)
    exempt: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for gst in gsts:
        if gst.is_export:
            continue
        label = EXEMP_ROWS[(0 if gst.interstate else 1) + (0 if gst.is_b2b else 2)]
        for line in gst.lines:
            if line.exempt:
                exempt[label] += line.taxable_value
            elif line.nil_rated:
                nil[label] += line.taxable_value
    for label in EXEMP_ROWS:
        writer.writerow([label, num(nil[label]), num(exempt[label]), num(ZERO)])
    nil_total, exempt_total = sum(nil.values(), ZERO), sum(exempt.values(), ZERO)
    writer.writerow(["Total", num(nil_total), num(exempt_total), num(ZERO)])
    totals["EXEMP"].taxable = nil_total + exempt_total

    # SUMMARY
    section("SUMMARY", SUMMARY_COLUMNS)
    grand = _Totals()
    for name in ("B2B", "B2CL", "B2CS", "EXP", "EXEMP"):
        t = totals[name]
        writer.writerow([name, len(t.invoices) if name != "EXEMP" else "", num(t.invoice_value) if name != "EXEMP"
                         else "", num(t.taxable), num(t.igst), num(t.cgst), num(t.sgst), num(ZERO)])
        grand.invoices |= t.invoices
        grand.invoice_value += t.invoice_value
        grand.add(dict(taxable=t.taxable, igst=t.igst, cgst=t.cgst, sgst=t.sgst))
    writer.writerow(["Total", len(grand.invoices), num(grand.invoice_value), num(grand.taxable), num(grand.igst),
                     num(grand.cgst), num(grand.sgst), num(ZERO)])
    return out.getvalue(), seller_gstin
