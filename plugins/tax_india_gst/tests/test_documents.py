"""The GST block of invoice documents and the e-invoice JSON renderer."""
import json
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from gst_helpers import KA_GSTIN, SELLER_GSTIN, TN_GSTIN, ctx_for, issue, view
from kassa_tax_india_gst.einvoice import dumps
from kassa_tax_india_gst.words import amount_in_words, cardinal_words

D = Decimal
ONE_LINE = (("Dedicated server", "998315", "5025.00", True),)  # 5025 + 18 % = 5929.50


def context_of(hooks, gst, invoice):
    blocks = [b for b in hooks.kassa_invoice_context(invoice=view(invoice), ctx=ctx_for(gst)) if b and "gst" in b]
    assert len(blocks) == 1
    return blocks[0]


def render(hooks, gst, invoice, renderer="gst_einvoice"):
    v = view(invoice)
    return hooks.kassa_render_invoice(renderer=renderer, invoice=v, context={}, ctx=ctx_for(gst))


# ---------------------------------------------------------------- amount in words


@pytest.mark.parametrize("amount, words", [
    ("5929.50", "Rupees Five Thousand Nine Hundred Twenty-Nine and Fifty Paise Only"),
    ("3077.38", "Rupees Three Thousand Seventy-Seven and Thirty-Eight Paise Only"),
    ("100000", "Rupees One Lakh Only"),
    ("1234567.05", "Rupees Twelve Lakh Thirty-Four Thousand Five Hundred Sixty-Seven and Five Paise Only"),
    ("250000000.00", "Rupees Twenty-Five Crore Only"),
    ("20000000000", "Rupees Two Thousand Crore Only"),
    ("0.99", "Rupees Zero and Ninety-Nine Paise Only"),
    ("101", "Rupees One Hundred One Only"),
])
def test_amount_in_words_indian_style(amount, words):
    assert amount_in_words(D(amount)) == words


def test_cardinal_words_beyond_num2words_range():
    assert cardinal_words(123456789012) == ("Twelve Thousand Three Hundred Forty-Five Crore Sixty-Seven Lakh "
                                            "Eighty-Nine Thousand Twelve")


# ---------------------------------------------------------------- context


def test_b2b_context(hooks, gst, buyer):
    inv = issue(gst, buyer("Chennai Cloud", state="Tamil Nadu", tax_id=TN_GSTIN), ONE_LINE)
    block = context_of(hooks, gst, inv)
    g = block["gst"]
    assert (g["seller_gstin"], g["buyer_gstin"]) == (SELLER_GSTIN, TN_GSTIN)
    assert (g["place_of_supply"], g["supply_type"], g["reverse_charge"]) == ("33-Tamil Nadu", "B2B", "N")
    assert g["lines"] == [{"position": 1, "description": "Dedicated server", "sac": "998315", "exempt": False,
                           "rate": D(18), "taxable_value": D("5025.00"), "cgst": D("452.25"), "sgst": D("452.25"),
                           "igst": D("0.00"), "tax": D("904.50"), "total": D("5929.50")}]
    assert [(b["name"], b["rate"], b["amount"]) for b in g["breakup"]] == [
        ("CGST", D(9), D("452.25")), ("SGST", D(9), D("452.25"))]
    assert (g["cgst_total"], g["sgst_total"], g["igst_total"]) == (D("452.25"), D("452.25"), D("0.00"))
    assert (g["taxable_total"], g["tax_total"], g["total"]) == (D("5025.00"), D("904.50"), D("5929.50"))
    assert g["amount_in_words"] == "Rupees Five Thousand Nine Hundred Twenty-Nine and Fifty Paise Only"
    assert block["seller_lines"] == [f"GSTIN: {SELLER_GSTIN}"]
    assert block["buyer_lines"] == [f"GSTIN: {TN_GSTIN}", "Place of supply: 33-Tamil Nadu"]
    assert block["notes"] == ["Amount in words: Rupees Five Thousand Nine Hundred Twenty-Nine and Fifty Paise Only"]
    (section,) = block["sections"]
    assert section["title"] == "GST summary"
    rows = dict(section["rows"])
    assert rows["Supply type"] == "B2B (registered buyer)"
    assert rows["Place of supply"] == "33-Tamil Nadu"
    assert rows["Tax payable on reverse charge"] == "No"
    assert rows["SAC 998315 (18%): taxable value"] == "₹5,025.00"
    assert rows["CGST @ 9%"] == rows["SGST @ 9%"] == "₹452.25"
    assert rows["Invoice total"] == "₹5,929.50"
    assert all(isinstance(label, str) and isinstance(value, str) for label, value in section["rows"])


def test_b2c_context_carries_no_buyer_gstin(hooks, gst, buyer):
    inv = issue(gst, buyer("Home User", state="Karnataka"))
    block = context_of(hooks, gst, inv)
    g = block["gst"]
    assert "buyer_gstin" not in g
    assert g["supply_type"] == "B2C"
    assert not any("GSTIN" in line for line in block["buyer_lines"])
    assert block["buyer_lines"] == ["Place of supply: 29-Karnataka"]
    assert KA_GSTIN not in repr(block)
    assert [(l["sac"], l["rate"], l["igst"], l["exempt"]) for l in g["lines"]] == [
        ("998315", D(18), D("222.22"), False), ("998314", D(12), D("120.00"), False),
        ("999293", D(0), D("0.00"), True), ("998315", D(18), D("0.09"), False)]
    assert g["igst_total"] == D("342.31") and g["cgst_total"] == D("0.00")
    assert g["amount_in_words"] == "Rupees Three Thousand Seventy-Seven and Thirty-Seven Paise Only"
    rows = dict(block["sections"][0]["rows"])
    assert rows["SAC 999293 (exempt): taxable value"] == "₹500.00"
    assert rows["IGST @ 12%"] == "₹120.00"


def test_a_buyer_gstin_added_after_issue_does_not_appear_on_a_b2c_invoice(hooks, gst, buyer):
    org = buyer("Late Registrant", state="Karnataka")
    inv = issue(gst, org)
    v = view(inv)
    v = replace(v, buyer=replace(v.buyer, tax_id=KA_GSTIN))  # a snapshot that somehow carries a GSTIN
    block = [b for b in hooks.kassa_invoice_context(invoice=v, ctx=ctx_for(gst)) if b and "gst" in b][0]
    assert "buyer_gstin" not in block["gst"] and KA_GSTIN not in " ".join(block["buyer_lines"])


def test_export_context_has_the_lut_note(hooks, gst, buyer):
    inv = issue(gst, buyer("Acme Inc", country="US", state="CA"), ONE_LINE)
    block = context_of(hooks, gst, inv)
    assert block["gst"]["supply_type"] == "EXPWOP"
    assert block["gst"]["place_of_supply"] == "96-Other Countries"
    lut = "Supply meant for export of services under LUT without payment of IGST (LUT AD3301260001234)"
    assert block["notes"] == ["Amount in words: Rupees Five Thousand Twenty-Five Only", lut]
    assert block["gst"]["lut_note"] == lut


def test_no_context_for_invoices_of_other_engines(hooks, gst, buyer):
    inv = issue(gst, buyer("Anyone", state="Goa"))
    other = replace(view(inv), tax_engine="tax_rules")
    assert [b for b in hooks.kassa_invoice_context(invoice=other, ctx=ctx_for(gst)) if b and "gst" in b] == []
    from kassa_tax_india_gst import plugin

    assert plugin.kassa_invoice_context(invoice=other, ctx=ctx_for(gst)) is None


# ---------------------------------------------------------------- e-invoice JSON

MANDATORY = {
    "": ["Version", "TranDtls", "DocDtls", "SellerDtls", "BuyerDtls", "ItemList", "ValDtls"],
    "TranDtls": ["TaxSch", "SupTyp", "RegRev"],
    "DocDtls": ["Typ", "No", "Dt"],
    "SellerDtls": ["Gstin", "LglNm", "Addr1", "Loc", "Pin", "Stcd"],
    "BuyerDtls": ["Gstin", "LglNm", "Pos", "Addr1", "Loc", "Pin", "Stcd"],
    "ValDtls": ["AssVal", "CgstVal", "SgstVal", "IgstVal", "TotInvVal"],
}
ITEM_MANDATORY = ["SlNo", "IsServc", "HsnCd", "Qty", "Unit", "UnitPrice", "TotAmt", "AssAmt", "GstRt", "IgstAmt",
                  "CgstAmt", "SgstAmt", "TotItemVal"]


def parsed(document):
    assert document.media_type == "application/json"
    return json.loads(document.content, parse_float=Decimal)


def assert_mandatory(doc):
    for block, fields in MANDATORY.items():
        target = doc if not block else doc[block]
        missing = [f for f in fields if f not in target]
        assert not missing, (block, missing)
    for item in doc["ItemList"]:
        assert not [f for f in ITEM_MANDATORY if f not in item]


def test_einvoice_b2b_intra_state(hooks, gst, buyer):
    inv = issue(gst, buyer("Chennai Cloud", state="Tamil Nadu", tax_id=TN_GSTIN, postal_code="600028"))
    document = render(hooks, gst, inv)
    assert document.filename == f"{inv.number}-einvoice.json"
    doc = parsed(document)
    assert_mandatory(doc)
    assert doc["Version"] == "1.1"
    assert doc["TranDtls"] == {"TaxSch": "GST", "SupTyp": "B2B", "RegRev": "N", "EcmGstin": None,
                               "IgstOnIntra": "N"}
    assert doc["DocDtls"] == {"Typ": "INV", "No": inv.number, "Dt": "10/01/2026"}
    assert doc["SellerDtls"]["Gstin"] == SELLER_GSTIN and doc["SellerDtls"]["Stcd"] == "33"
    assert doc["SellerDtls"]["Pin"] == 600002 and isinstance(doc["SellerDtls"]["Pin"], int)
    assert (doc["BuyerDtls"]["Gstin"], doc["BuyerDtls"]["Pos"], doc["BuyerDtls"]["Stcd"]) == (TN_GSTIN, "33", "33")
    assert doc["BuyerDtls"]["Pin"] == 600028
    items = doc["ItemList"]
    assert [i["SlNo"] for i in items] == ["1", "2", "3", "4"]
    assert [i["HsnCd"] for i in items] == ["998315", "998314", "999293", "998315"]
    assert all(i["IsServc"] == "Y" for i in items)
    assert [i["GstRt"] for i in items] == [18, 12, 0, 18]
    assert [(i["CgstAmt"], i["SgstAmt"], i["IgstAmt"]) for i in items] == [
        (D("111.11"), D("111.11"), 0), (D("60.00"), D("60.00"), 0), (0, 0, 0), (D("0.05"), D("0.05"), 0)]
    assert items[0]["TotItemVal"] == D("1456.79")
    for item in items:
        assert item["AssAmt"] == item["TotAmt"] == D(item["Qty"]) * D(item["UnitPrice"])
        assert item["TotItemVal"] == item["AssAmt"] + item["CgstAmt"] + item["SgstAmt"] + item["IgstAmt"]
    val = doc["ValDtls"]
    assert val["AssVal"] == inv.subtotal
    assert (val["CgstVal"], val["SgstVal"], val["IgstVal"]) == (D("171.16"), D("171.16"), 0)
    assert val["CgstVal"] + val["SgstVal"] + val["IgstVal"] == inv.tax_total
    assert val["TotInvVal"] == inv.total == D("3077.38")
    assert val["AssVal"] == sum(i["AssAmt"] for i in items)


def test_einvoice_numbers_are_exact_json_numbers(hooks, gst, buyer):
    inv = issue(gst, buyer("Bengaluru Labs", state="Karnataka", tax_id=KA_GSTIN))
    text = render(hooks, gst, inv).content.decode()
    assert '"TotInvVal": 3077.37' in text
    assert '"IgstVal": 342.31' in text
    assert '"CgstAmt": 0.00' in text
    assert '"Pin": 560001' in text and '"Pin": "' not in text
    assert not re.search(r"\d\.\d*0000000\d", text) and "e+" not in text.lower() and "E-" not in text
    doc = json.loads(text, parse_float=Decimal)
    assert doc["TranDtls"]["SupTyp"] == "B2B" and doc["BuyerDtls"]["Pos"] == "29"
    assert doc["ValDtls"]["IgstVal"] == inv.tax_total


def test_einvoice_prorated_line_has_an_effective_unit_price(hooks, gst, buyer):
    from kassa.services import invoicing

    line = invoicing.DraftLine(description="VM (prorated 10/31 days)", quantity=D(3), unit_price=D("1000.00"),
                               amount=D("967.74"), tax_code="998315")
    inv = invoicing.issue(provider=gst, buyer=buyer("Pune Co", state="MH", tax_id="27AAPFU0939F1ZV"),
                          lines=[line], issue_date=date(2026, 1, 31))
    (item,) = parsed(render(hooks, gst, inv))["ItemList"]
    assert (item["Qty"], item["UnitPrice"], item["TotAmt"]) == (D("3.000"), D("322.580"), D("967.74"))
    assert abs(item["Qty"] * item["UnitPrice"] - item["TotAmt"]) < D("0.01")
    assert item["IgstAmt"] == D("174.19")  # 967.74 x 18 % = 174.1932


def test_einvoice_export(hooks, gst, buyer):
    inv = issue(gst, buyer("Acme Inc", country="US", state="CA"), ONE_LINE)
    doc = parsed(render(hooks, gst, inv))
    assert_mandatory(doc)
    assert doc["TranDtls"]["SupTyp"] == "EXPWOP"
    buyer_dtls = doc["BuyerDtls"]
    assert (buyer_dtls["Gstin"], buyer_dtls["Pos"], buyer_dtls["Stcd"], buyer_dtls["Pin"]) == (
        "URP", "96", "96", 999999)
    assert doc["ExpDtls"] == {"CntCode": "US"}
    assert [(i["GstRt"], i["IgstAmt"]) for i in doc["ItemList"]] == [(0, D("0.00"))]
    assert doc["ValDtls"]["TotInvVal"] == doc["ValDtls"]["AssVal"] == inv.total == D("5025.00")


def test_no_einvoice_for_b2c_other_engines_or_other_renderers(hooks, gst, buyer):
    b2c = issue(gst, buyer("Home User", state="Goa"))
    assert render(hooks, gst, b2c) is None
    b2b = issue(gst, buyer("Goa Biz", state="Goa", tax_id="30AABCG1234H1Z" + _check("30AABCG1234H1Z")))
    assert render(hooks, gst, b2b) is not None
    assert hooks.kassa_render_invoice(renderer="gst_einvoice", invoice=replace(view(b2b), tax_engine="tax_rules"),
                                      context={}, ctx=ctx_for(gst)) is None
    from kassa_tax_india_gst import plugin

    assert plugin.kassa_render_invoice(renderer="pdf", invoice=view(b2b), context={}, ctx=ctx_for(gst)) is None


def test_no_einvoice_without_a_seller_gstin(hooks, gst, buyer):
    from kassa.extensions import db

    gst.tax_id = ""
    db.session.commit()
    inv = issue(gst, buyer("Bengaluru Labs", state="Karnataka", tax_id=KA_GSTIN))
    assert view(inv).tax_details["seller_gstin"] == ""
    assert render(hooks, gst, inv) is None


def test_dumps_writes_decimals_exactly():
    text = dumps({"a": D("0.10"), "b": [D("1E+2"), D("-0.00"), 7, None, True, "x\"y"], "c": {}})
    assert json.loads(text, parse_float=Decimal) == {"a": D("0.10"), "b": [100, 0, 7, None, True, 'x"y'], "c": {}}
    assert '"a": 0.10' in text and "100" in text and "-0" not in text
    with pytest.raises(TypeError):
        dumps({"a": 0.1})


def _check(body: str) -> str:
    from stdnum import luhn

    return luhn.calc_check_digit(body, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
