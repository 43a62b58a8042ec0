"""GST through the core's issuing path: what the stored invoice says, to the paisa."""
from decimal import Decimal

import pytest

from gst_helpers import KA_GSTIN, PLUGIN, SELLER_GSTIN, breakup, issue, view
from kassa.services import plugin_settings
from kassa.services.errors import ValidationError

D = Decimal


def test_intra_state_invoice(gst, buyer):
    inv = issue(gst, buyer("Chennai Retail", state="Tamil Nadu"))
    assert inv.tax_engine == "india_gst"
    assert breakup(inv) == {("CGST", D(9)): D("111.16"), ("SGST", D(9)): D("111.16"),
                            ("CGST", D(6)): D("60.00"), ("SGST", D(6)): D("60.00")}
    assert [l.tax_amount for l in inv.lines] == [D("222.22"), D("120.00"), D(0), D("0.10")]
    assert (inv.subtotal, inv.tax_total, inv.total) == (D("2735.06"), D("342.32"), D("3077.38"))
    assert inv.tax_total == sum(t.amount for t in inv.taxes) == sum(l.tax_amount for l in inv.lines)
    taxable = {(t.name, t.rate.normalize()): t.taxable_amount for t in inv.taxes}
    assert taxable[("CGST", D(9))] == D("1235.07") and taxable[("SGST", D(6))] == D("999.99")
    details = view(inv).tax_details
    assert details["place_of_supply"] == "33-Tamil Nadu" and details["supply_type"] == "B2C"
    assert details["seller_gstin"] == SELLER_GSTIN and "buyer_gstin" not in details


def test_inter_state_b2b_invoice(gst, buyer):
    inv = issue(gst, buyer("Bengaluru Labs", state="Karnataka", tax_id=KA_GSTIN))
    assert breakup(inv) == {("IGST", D(18)): D("222.31"), ("IGST", D(12)): D("120.00")}
    assert (inv.tax_total, inv.total) == (D("342.31"), D("3077.37"))
    details = view(inv).tax_details
    assert (details["place_of_supply"], details["supply_type"], details["buyer_gstin"]) == (
        "29-Karnataka", "B2B", KA_GSTIN)


def test_export_invoice_is_zero_rated_with_the_lut_note(gst, buyer):
    inv = issue(gst, buyer("Acme Inc", country="US", state="CA"))
    assert breakup(inv) == {("IGST", D(0)): D(0)}
    assert {t.taxable_amount for t in inv.taxes} == {D("2235.06")}  # the exempt line has no component
    assert (inv.tax_total, inv.total) == (D(0), D("2735.06"))
    assert inv.tax_note.startswith("Supply meant for export of services under LUT without payment of IGST")
    assert "AD3301260001234" in inv.tax_note
    assert view(inv).tax_details["supply_type"] == "EXPWOP"


def test_b2c_inter_state_with_odd_amounts(gst, buyer):
    spec = (("Object storage", "998315", "0.05", True), ("GPU hours", "998314", "10.05", True),
            ("CDN", "998315", "333.33", True))
    inv = issue(gst, buyer("Kochi Home User", state="Kerala"), spec)
    # 0.05 x 18 % = 0.009 -> 0.01; 10.05 x 12 % = 1.206 -> 1.21; 333.33 x 18 % = 59.9994 -> 60.00
    assert [l.tax_amount for l in inv.lines] == [D("0.01"), D("1.21"), D("60.00")]
    assert breakup(inv) == {("IGST", D(18)): D("60.01"), ("IGST", D(12)): D("1.21")}
    assert (inv.subtotal, inv.tax_total, inv.total) == (D("343.43"), D("61.22"), D("404.65"))


def test_settings_change_the_rates_of_new_invoices(gst, admin, buyer):
    plugin_settings.save_settings(admin, PLUGIN, {"default_rate": "5", "sac_rates": "998314=28"})
    inv = issue(gst, buyer("Mysuru Ltd", state="Karnataka"))
    # 1234.57 x 5 % = 61.7285; 999.99 x 28 % = 279.9972; 0.50 x 5 % = 0.025 -> 0.03
    assert [l.tax_amount for l in inv.lines] == [D("61.73"), D("280.00"), D(0), D("0.03")]
    assert breakup(inv) == {("IGST", D(5)): D("61.76"), ("IGST", D(28)): D("280.00")}
    assert "lut_number" not in view(inv).tax_details


# ---------------------------------------------------------------- the settings form


def test_defaults_reach_the_hooks(app, db, provider, admin):
    plugin_settings.set_enabled(admin, PLUGIN, True)
    values = plugin_settings.settings_for(provider.id, PLUGIN)
    assert D(values["default_rate"]) == 18 and values["sac_rates"] == "" and values["lut_number"] == ""


@pytest.mark.parametrize("sac_rates, message", [
    ("abc=18", "'abc' is not a SAC/HSN code"),
    ("998315", "write CODE=RATE"),
    ("998315=eighteen", "is not a number"),
    ("998315=118", "between 0 and 100"),
    ("998315=-5", "between 0 and 100"),
    ("998315=18.125", "at most 2 decimal places"),
    ("998315=18\n998315=12", "998315 is listed twice"),
    ("998315=18\n\n99831x=12", "Line 3"),
])
def test_bad_sac_lines_are_rejected(gst, admin, sac_rates, message):
    with pytest.raises(ValidationError) as caught:
        plugin_settings.save_settings(admin, PLUGIN, {"default_rate": "18", "sac_rates": sac_rates})
    assert message in caught.value.field_errors["sac_rates"]
    assert plugin_settings.settings_for(gst.id, PLUGIN)["sac_rates"] == "998314=12\n998599=0"  # unchanged


@pytest.mark.parametrize("field, value", [("default_rate", "101"), ("default_rate", ""), ("default_rate", "x"),
                                          ("lut_number", "AD33 0126"), ("lut_number", "A" * 51)])
def test_bad_default_rate_or_lut_number_is_rejected(gst, admin, field, value):
    data = {"default_rate": "18", "sac_rates": "", "lut_number": "", field: value}
    with pytest.raises(ValidationError) as caught:
        plugin_settings.save_settings(admin, PLUGIN, data)
    assert field in caught.value.field_errors


def test_good_settings_are_stored(gst, admin):
    stored = plugin_settings.save_settings(admin, PLUGIN, {
        "default_rate": "12.5", "sac_rates": "# compute\n998315 = 18%\n9983=12\n", "lut_number": "AD330126/0001"})
    assert D(stored["default_rate"]) == D("12.5")
    assert stored["sac_rates"] == "# compute\n998315 = 18%\n9983=12\n"
    assert stored["lut_number"] == "AD330126/0001"
