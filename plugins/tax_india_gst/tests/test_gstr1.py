"""GSTR-1 for a month of mixed invoices: every section, and totals equal to the invoices."""
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from gst_helpers import (D, KA_GSTIN, MH_GSTIN, MIXED, SELLER_GSTIN, TN_GSTIN, csv_sections, ctx_for, issue,
                         view)
from kassa.services import invoicing
from kassa_tax_india_gst.gstr1 import b2cl_limit, gst_date

JAN = (date(2026, 1, 1), date(2026, 2, 1))


def one(sac, amount, description="Service"):
    return ((description, sac, amount, True),)


@pytest.fixture
def month(gst, buyer, admin):
    """A January of every kind of supply, plus a cancelled invoice; returns the invoices by name."""
    inv = {}
    inv["b2b_ka"] = issue(gst, buyer("Bengaluru Labs", state="Karnataka", tax_id=KA_GSTIN), MIXED,
                          date(2026, 1, 3))
    inv["b2b_tn"] = issue(gst, buyer("Chennai Cloud", state="Tamil Nadu", tax_id=TN_GSTIN), one("998315", "10000.00"),
                          date(2026, 1, 4))
    inv["b2b_mh"] = issue(gst, buyer("Pune Co", state="Maharashtra", tax_id=MH_GSTIN), one("998315", "2000.00"),
                          date(2026, 1, 5))
    inv["b2cl_dl"] = issue(gst, buyer("Delhi Person", state="Delhi"), one("998315", "90000.00"), date(2026, 1, 6))
    inv["b2cs_ka"] = issue(gst, buyer("Mysuru Person", state="Karnataka"), one("998315", "1000.00"),
                           date(2026, 1, 7))
    inv["b2cs_tn"] = issue(gst, buyer("Madurai Person", state="Tamil Nadu"),
                           (("VM", "998315", "100.00", True), ("Backup", "998314", "50.00", True),
                            ("Training", "998599", "40.00", True)), date(2026, 1, 8))
    inv["b2cs_ka2"] = issue(gst, buyer("Hubli Person", state="KA"), one("998315", "200.00"), date(2026, 1, 9))
    # exactly Rs 1,00,000 is not "above" the limit: B2CS
    inv["b2cs_kl_edge"] = issue(gst, buyer("Kochi Person", state="Kerala"), one("998315", "84745.76"),
                                date(2026, 1, 10))
    inv["exp_us"] = issue(gst, buyer("Acme Inc", country="US", state="CA"), one("998315", "3000.00"),
                          date(2026, 1, 11))
    inv["cancelled"] = issue(gst, buyer("Gone Ltd", state="Karnataka", tax_id="29AAACG9999Q1Z" + _c("29AAACG9999Q1Z")),
                             one("998315", "5000.00"), date(2026, 1, 12))
    invoicing.cancel(admin, inv["cancelled"], "issued by mistake")
    return inv


def export(hooks, gst, invoices):
    document = hooks.kassa_export_invoices(export="gstr1", invoices=[view(i) for i in invoices],
                                           period_start=JAN[0], period_end=JAN[1], ctx=ctx_for(gst))
    assert document.media_type == "text/csv"
    return document


def test_gstr1_sections(hooks, gst, month):
    document = export(hooks, gst, month.values())
    assert document.filename == f"GSTR1_{SELLER_GSTIN}_012026.csv"
    s = csv_sections(document.content.decode("utf-8"))
    header = {row[0]: row[1:] for row in s["HEADER"]}
    assert header["GSTIN"] == [SELLER_GSTIN]
    assert header["Return period"] == ["012026", "From", "01-Jan-2026", "To", "31-Jan-2026"]
    assert header["Invoices"] == ["9", "Cancelled (left out)", "1", "Not taxed under GST (left out)", "0"]

    b2b = [(r["GSTIN/UIN of Recipient"], r["Invoice Number"], r["Invoice Value"], r["Place Of Supply"], r["Rate"],
            r["Taxable Value"], r["Integrated Tax"], r["Central Tax"], r["State/UT Tax"]) for r in s["B2B"]["rows"]]
    n = {k: v.number for k, v in month.items()}
    assert b2b == [  # by recipient GSTIN; the exempt line of b2b_ka goes to EXEMP
        (MH_GSTIN, n["b2b_mh"], "2360.00", "27-Maharashtra", "18", "2000.00", "360.00", "0.00", "0.00"),
        (KA_GSTIN, n["b2b_ka"], "3077.37", "29-Karnataka", "12", "999.99", "120.00", "0.00", "0.00"),
        (KA_GSTIN, n["b2b_ka"], "3077.37", "29-Karnataka", "18", "1235.07", "222.31", "0.00", "0.00"),
        (TN_GSTIN, n["b2b_tn"], "11800.00", "33-Tamil Nadu", "18", "10000.00", "0.00", "900.00", "900.00"),
    ]
    assert {r["Reverse Charge"] for r in s["B2B"]["rows"]} == {"N"}
    assert {r["Invoice Type"] for r in s["B2B"]["rows"]} == {"Regular B2B"}
    assert s["B2B"]["rows"][0]["Receiver Name"] == "Pune Co"
    assert s["B2B"]["rows"][0]["Invoice date"] == "05-Jan-2026"
    t = s["B2B"]["total"]
    assert (t["Invoice Number"], t["Invoice Value"], t["Taxable Value"], t["Integrated Tax"], t["Central Tax"],
            t["State/UT Tax"]) == ("3 invoices", "17237.37", "14235.06", "702.31", "900.00", "900.00")

    assert [(r["Invoice Number"], r["Invoice Value"], r["Place Of Supply"], r["Rate"], r["Taxable Value"],
             r["Integrated Tax"]) for r in s["B2CL"]["rows"]] == [
        (n["b2cl_dl"], "106200.00", "07-Delhi", "18", "90000.00", "16200.00")]

    assert [(r["Type"], r["Place Of Supply"], r["Rate"], r["Taxable Value"], r["Integrated Tax"], r["Central Tax"],
             r["State/UT Tax"]) for r in s["B2CS"]["rows"]] == [
        ("OE", "29-Karnataka", "18", "1200.00", "216.00", "0.00", "0.00"),
        ("OE", "32-Kerala", "18", "84745.76", "15254.24", "0.00", "0.00"),
        ("OE", "33-Tamil Nadu", "12", "50.00", "0.00", "3.00", "3.00"),
        ("OE", "33-Tamil Nadu", "18", "100.00", "0.00", "9.00", "9.00"),
    ]
    assert s["B2CS"]["total"]["Place Of Supply"] == "4 invoices"

    assert [(r["Export Type"], r["Invoice Number"], r["Invoice Value"], r["Rate"], r["Taxable Value"],
             r["Integrated Tax"]) for r in s["EXP"]["rows"]] == [
        ("WOPAY", n["exp_us"], "3000.00", "0", "3000.00", "0.00")]

    exemp = {r["Description"]: (r["Nil Rated Supplies"], r["Exempted(other than nil rated/non GST supply)"])
             for r in s["EXEMP"]["rows"]}
    assert exemp == {
        "Inter-State supplies to registered persons": ("0.00", "500.00"),
        "Intra-State supplies to registered persons": ("0.00", "0.00"),
        "Inter-State supplies to unregistered persons": ("0.00", "0.00"),
        "Intra-State supplies to unregistered persons": ("40.00", "0.00"),
    }
    all_numbers = " ".join(",".join(r.values()) for sec in ("B2B", "B2CL", "B2CS", "EXP") for r in s[sec]["rows"])
    assert month["cancelled"].number not in all_numbers


def test_gstr1_totals_equal_the_invoices(hooks, gst, month):
    s = csv_sections(export(hooks, gst, month.values()).content.decode())
    live = [i for k, i in month.items() if k != "cancelled"]
    total = s["SUMMARY"]["total"]

    def tax(name):
        return sum((t.amount for i in live for t in i.taxes if t.name == name), Decimal(0))

    assert int(total["Invoices"]) == len(live) == 9
    assert D(total["Invoice Value"]) == sum(i.total for i in live) == D("228067.37")
    assert D(total["Taxable Value"]) == sum(i.subtotal for i in live)
    assert D(total["Integrated Tax"]) == tax("IGST") == D("32372.55")
    assert D(total["Central Tax"]) == tax("CGST") == D("912.00")
    assert D(total["State/UT Tax"]) == tax("SGST") == D("912.00")
    assert D(total["Integrated Tax"]) + D(total["Central Tax"]) + D(total["State/UT Tax"]) == sum(
        i.tax_total for i in live)
    per_section = {r["Part of the return"]: r for r in s["SUMMARY"]["rows"]}
    assert [per_section[k]["Invoices"] for k in ("B2B", "B2CL", "B2CS", "EXP", "EXEMP")] == ["3", "1", "4", "1", ""]
    assert per_section["EXEMP"]["Taxable Value"] == "540.00"
    for name, columns in (("B2B", "Taxable Value"), ("B2CL", "Taxable Value"), ("B2CS", "Taxable Value"),
                          ("EXP", "Taxable Value")):
        assert per_section[name][columns] == s[name]["total"][columns]


def test_invoices_of_other_engines_are_left_out_and_counted(hooks, gst, buyer):
    inv = issue(gst, buyer("Anyone", state="Goa"), one("998315", "100.00"))
    foreign = replace(view(inv), tax_engine="tax_rules", id=inv.id + 1000, number="OTHER-1")
    document = hooks.kassa_export_invoices(export="gstr1", invoices=[view(inv), foreign], period_start=JAN[0],
                                           period_end=JAN[1], ctx=ctx_for(gst))
    s = csv_sections(document.content.decode())
    assert {row[0]: row[1:] for row in s["HEADER"]}["Invoices"] == [
        "1", "Cancelled (left out)", "0", "Not taxed under GST (left out)", "1"]
    assert "OTHER-1" not in document.content.decode()
    assert s["SUMMARY"]["total"]["Invoice Value"] == "118.00"


def test_empty_month_and_other_exports(hooks, gst):
    document = hooks.kassa_export_invoices(export="gstr1", invoices=[], period_start=JAN[0], period_end=JAN[1],
                                           ctx=ctx_for(gst))
    s = csv_sections(document.content.decode())
    assert s["B2B"]["rows"] == [] and s["SUMMARY"]["total"]["Invoice Value"] == "0.00"
    assert document.filename == "GSTR1_outward-supplies_012026.csv"
    from kassa_tax_india_gst import plugin

    assert plugin.kassa_export_invoices(export="other", invoices=[], period_start=JAN[0], period_end=JAN[1],
                                        ctx=ctx_for(gst)) is None


def test_receiver_names_cannot_become_formulas(hooks, gst, buyer):
    inv = issue(gst, buyer("=HYPERLINK(1)", state="Karnataka", tax_id=KA_GSTIN), one("998315", "10.00"))
    s = csv_sections(export(hooks, gst, [inv]).content.decode())
    assert s["B2B"]["rows"][0]["Receiver Name"] == "'=HYPERLINK(1)"


def test_b2cl_limit_and_dates():
    assert b2cl_limit(date(2024, 7, 31)) == D("250000")
    assert b2cl_limit(date(2024, 8, 1)) == D("100000")
    assert gst_date(date(2026, 3, 9)) == "09-Mar-2026"


def _c(body: str) -> str:
    from stdnum import luhn

    return luhn.calc_check_digit(body, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
