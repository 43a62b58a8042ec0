"""The GST quote through the hook, to the paisa: intra-state, inter-state, B2C, export."""
from decimal import Decimal

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from gst_helpers import (KA_GSTIN, MH_GSTIN, SELLER, SELLER_GSTIN, SETTINGS, components, ctx_for, party,
                         tax_draft)
from kassa.contracts import Party
from kassa.money import round_money
from kassa.testing.billing import rule
from kassa_tax_india_gst.engine import GstDataError, line_components, quote
from kassa_tax_india_gst.settings import rate_table

D = Decimal
RATES = rate_table(SETTINGS)


def test_intra_state_splits_each_line_into_rounded_halves(hooks, gst):
    q = hooks.kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=party(state="Tamil Nadu"), ctx=ctx_for(gst))
    assert q.engine == "india_gst"
    assert components(q) == {
        "0": [("CGST", "9", "111.11"), ("SGST", "9", "111.11")],  # 1234.57 x 9 % = 111.1113
        "1": [("CGST", "6", "60.00"), ("SGST", "6", "60.00")],  # 999.99 x 6 % = 59.9994
        "2": [],  # not taxable: exempt
        "3": [("CGST", "9", "0.05"), ("SGST", "9", "0.05")],  # 0.50 x 9 % = 0.045, half-up
    }
    assert q.total == D("342.32")
    assert q.details["place_of_supply"] == "33-Tamil Nadu"
    assert q.details["supply_type"] == "B2C"
    assert q.details["seller_gstin"] == SELLER_GSTIN
    assert q.details["reverse_charge"] == "N"
    assert "buyer_gstin" not in q.details
    assert q.details["line_rates"] == "18,12,exempt,18"
    assert q.note == ""


def test_inter_state_b2b_is_igst_at_the_full_rate(hooks, gst):
    q = hooks.kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=party(tax_id=KA_GSTIN), ctx=ctx_for(gst))
    assert components(q) == {
        "0": [("IGST", "18", "222.22")],  # 222.2226
        "1": [("IGST", "12", "120.00")],  # 119.9988
        "2": [],
        "3": [("IGST", "18", "0.09")],
    }
    assert q.total == D("342.31")  # one paisa less than intra-state: each component is rounded once
    assert q.details["place_of_supply"] == "29-Karnataka"
    assert (q.details["supply_type"], q.details["buyer_gstin"]) == ("B2B", KA_GSTIN)


def test_the_buyers_gstin_decides_the_place_of_supply_over_its_address(hooks, gst):
    buyer = party(state="Tamil Nadu", tax_id=MH_GSTIN.lower())
    q = hooks.kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=buyer, ctx=ctx_for(gst))
    assert q.details["place_of_supply"] == "27-Maharashtra"
    assert q.details["buyer_gstin"] == MH_GSTIN
    assert {c.name for line in q.lines for c in line.components} == {"IGST"}


def test_b2c_with_an_invalid_gstin_uses_the_registered_state(hooks, gst):
    buyer = party(state="karnataka", tax_id="29AABCD5678E1ZX")  # wrong check character
    q = hooks.kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=buyer, ctx=ctx_for(gst))
    assert q.details["supply_type"] == "B2C" and "buyer_gstin" not in q.details
    assert q.details["place_of_supply"] == "29-Karnataka"
    assert components(q)["0"] == [("IGST", "18", "222.22")]


def test_export_is_zero_rated_under_lut(hooks, gst):
    q = hooks.kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=party(country="US", state="CA"),
                              ctx=ctx_for(gst))
    assert components(q) == {"0": [("IGST", "0", "0.00")], "1": [("IGST", "0", "0.00")], "2": [],
                             "3": [("IGST", "0", "0.00")]}
    assert q.total == 0
    assert q.note == ("Supply meant for export of services under LUT without payment of IGST "
                      "(LUT AD3301260001234)")
    assert q.details["supply_type"] == "EXPWOP"
    assert q.details["place_of_supply"] == "96-Other Countries"
    assert q.details["lut_number"] == "AD3301260001234"


def test_export_note_without_an_lut_number(gst):
    q = quote(tax_draft(), SELLER, party(country="DE"), rate_table({"default_rate": "18"}))
    assert q.note == "Supply meant for export of services under LUT without payment of IGST"
    assert "lut_number" not in q.details


@pytest.mark.parametrize("spelling", ["Tamil Nadu", "tamil nadu", "TAMILNADU", " Tamil  Nadu ", "TN", "IN-TN", "33"])
def test_common_spellings_of_the_buyers_state(spelling):
    q = quote(tax_draft(), SELLER, party(state=spelling), RATES)
    assert q.details["place_of_supply"] == "33-Tamil Nadu"
    assert q.details["interstate"] == "N"


@pytest.mark.parametrize("spelling, place", [
    ("Orissa", "21-Odisha"), ("Pondicherry", "34-Puducherry"), ("Jammu & Kashmir", "01-Jammu and Kashmir"),
    ("Daman and Diu", "26-Dadra and Nagar Haveli and Daman and Diu"), ("Ladakh", "38-Ladakh"),
    ("NCT of Delhi", "07-Delhi"), ("Chattisgarh", "22-Chhattisgarh"), ("KA", "29-Karnataka"),
])
def test_other_spellings_map_to_the_current_state_code(spelling, place):
    q = quote(tax_draft(), SELLER, party(state=spelling), RATES)
    assert q.details["place_of_supply"] == place
    assert q.details["interstate"] == "Y"


def test_seller_state_from_its_gstin_when_the_address_has_none():
    seller = Party(org_id=1, kind="provider", name="S", country="IN", tax_id=KA_GSTIN)
    q = quote(tax_draft(), seller, party(state="Karnataka"), RATES)
    assert [c.name for c in q.lines[0].components] == ["CGST", "SGST"]
    assert q.details["seller_state_code"] == "29"


def test_buyer_without_address_is_supplied_where_the_seller_is():
    q = quote(tax_draft(), SELLER, party(), RATES)
    assert q.details["place_of_supply"] == "33-Tamil Nadu"
    assert [c.name for c in q.lines[0].components] == ["CGST", "SGST"]


def test_unknown_state_is_refused_with_a_clear_message():
    with pytest.raises(GstDataError, match="'Atlantis' is not an Indian state"):
        quote(tax_draft(), SELLER, party(state="Atlantis"), RATES)
    stateless = Party(org_id=1, kind="provider", name="S", country="IN")
    with pytest.raises(GstDataError, match="set the provider's state"):
        quote(tax_draft(), stateless, party(state="Goa"), RATES)


def test_nil_rated_sac_and_prefix_rates():
    table = rate_table({"default_rate": "18", "sac_rates": "9983=12\n998315=5\n998599=0"})
    spec = (("A", "998315", "100.00", True), ("B", "998316", "100.00", True), ("C", "998599", "100.00", True),
            ("D", "997331", "100.00", True))
    q = quote(tax_draft(spec), SELLER, party(tax_id=KA_GSTIN), table)
    assert components(q) == {"0": [("IGST", "5", "5.00")], "1": [("IGST", "12", "12.00")], "2": [],
                             "3": [("IGST", "18", "18.00")]}
    assert q.details["line_rates"] == "5,12,0,18"


def test_precision_follows_the_draft():
    q = quote(tax_draft((("A", "998315", "0.333", True),), precision=3), SELLER, party(state="TN"), RATES)
    assert components(q) == {"0": [("CGST", "9", "0.030"), ("SGST", "9", "0.030")]}  # 0.02997


def test_seller_outside_india_gets_no_answer_and_the_builtin_engine_answers(hooks, gst, admin):
    rule(admin, country="IN", rate="10", name="Sales tax")
    foreign = Party(org_id=gst.id, kind="provider", name="Cloud7 GmbH", country="DE", state="Berlin")
    from kassa_tax_india_gst import plugin

    assert plugin.kassa_tax_quote(draft=tax_draft(), seller=foreign, buyer=party(state="Goa"),
                                  ctx=ctx_for(gst)) is None
    q = hooks.kassa_tax_quote(draft=tax_draft(), seller=foreign, buyer=party(state="Goa"), ctx=ctx_for(gst))
    assert q.engine == "tax_rules"
    assert components(q)["0"] == [("Sales tax", "10", "123.46")]
    indian = hooks.kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=party(state="Goa"), ctx=ctx_for(gst))
    assert indian.engine == "india_gst"  # asked before the built-in engine


def test_disabled_plugin_leaves_indian_sellers_to_the_builtin_engine(app, db, provider, admin):
    from kassa.plugins import host

    rule(admin, country="IN", rate="18")
    q = host().hooks(provider.id).kassa_tax_quote(draft=tax_draft(), seller=SELLER, buyer=party(state="Goa"),
                                                  ctx=ctx_for(provider, {}))
    assert q.engine == "tax_rules"


# ---------------------------------------------------------------- properties

amounts = st.decimals(min_value=D("-100000"), max_value=D("10000000"), places=2, allow_nan=False,
                      allow_infinity=False)
rates = st.sampled_from([D("0.1"), D("0.25"), D("1"), D("1.5"), D("3"), D("5"), D("6"), D("7.5"), D("12"),
                         D("18"), D("28"), D("40")])


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(amounts, rates, st.booleans()), min_size=1, max_size=8),
       st.sampled_from(["Tamil Nadu", "Kerala"]))
def test_property_components_are_rounded_halves_and_the_tax_is_their_sum(lines, state):
    spec = tuple((f"L{i}", f"99{i:04d}", str(amount), taxable) for i, (amount, _, taxable) in enumerate(lines))
    table = rate_table({"default_rate": "18",
                        "sac_rates": "\n".join(f"99{i:04d}={rate}" for i, (_, rate, _) in enumerate(lines))})
    q = quote(tax_draft(spec), SELLER, party(state=state), table)
    total = Decimal(0)
    for (amount, rate, taxable), line in zip(lines, q.lines):
        if not taxable:
            assert line.components == ()
            continue
        if state == "Tamil Nadu":
            half = round_money(amount * rate / 200, 2)
            cgst, sgst = line.components
            assert (cgst.name, sgst.name) == ("CGST", "SGST")
            assert cgst.amount == sgst.amount == half
            assert cgst.rate + sgst.rate == rate
            assert line.tax == 2 * half
        else:
            (igst,) = line.components
            assert (igst.name, igst.rate, igst.amount) == ("IGST", rate, round_money(amount * rate / 100, 2))
        for c in line.components:
            assert c.amount == round_money(c.amount, 2)
            total += c.amount
    assert q.total == total


@hsettings(max_examples=200, deadline=None)
@given(amounts, rates)
def test_property_intra_and_inter_state_differ_by_at_most_one_paisa(amount, rate):
    intra = sum(c.amount for c in line_components(amount, rate, "intra", 2))
    inter = sum(c.amount for c in line_components(amount, rate, "inter", 2))
    assert abs(intra - inter) <= D("0.01")

