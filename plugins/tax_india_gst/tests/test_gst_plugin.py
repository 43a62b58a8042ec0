"""Registration, GSTIN checks and the state table."""
import pytest
from stdnum.in_ import gstin as std_gstin

from gst_helpers import KA_GSTIN, SELLER_GSTIN
from kassa_tax_india_gst.states import STATES, place_label, state_code


def test_registers_the_india_engine_renderer_and_export(hooks):
    engines = [e for es in hooks.kassa_tax_engines() for e in es]
    assert any(e.id == "india_gst" and e.countries == ("IN",) for e in engines)
    renderers = [r for rs in hooks.kassa_renderers() for r in rs]
    assert any(r.id == "gst_einvoice" and r.media_type == "application/json" and r.extension == "json"
               and r.name == "GST e-invoice JSON (INV-01 v1.1)" for r in renderers)
    exports = [e for es in hooks.kassa_invoice_exports() for e in es]
    assert any(e.id == "gstr1" and e.media_type == "text/csv" and e.extension == "csv" for e in exports)


def test_gstin_checked_with_stdnum(hooks):
    ok = hooks.kassa_tax_id_check(country="IN", tax_id="27aapfu0939f1zv")
    assert ok.valid and ok.normalized == "27AAPFU0939F1ZV" and ok.details["state"] == "Maharashtra"
    assert ok.details["state_code"] == "27"
    bad = hooks.kassa_tax_id_check(country="IN", tax_id="27AAPFU0939F1ZX")
    assert not bad.valid and "checksum" in bad.message.lower()
    assert not hooks.kassa_tax_id_check(country="IN", tax_id="27AAPFU0939").valid
    assert hooks.kassa_tax_id_check(country="US", tax_id="27AAPFU0939F1ZV") is None


@pytest.mark.parametrize("tax_id, message", [
    ("27AAPFU0939F1ZX", "check character (the last one) does not match: checksum"),
    ("27AAPFU0939", "A GSTIN has 15 characters; this one has 11."),
    ("27AAPFU0939F1ZVV", "A GSTIN has 15 characters; this one has 16."),
    ("99AAPFU0939F1ZV", "99 is not a GST state code"),
    ("27AAPFU0939F1AV", "Not a GSTIN: it is 2 digits (state code)"),
    ("27AAPFU0939F0ZV", "13th character"),
    ("27AAPXU0939F1ZV", "The PAN inside the GSTIN (AAPXU0939F) is not valid"),
    ("", "Enter a GSTIN"),
])
def test_gstin_messages_say_what_is_wrong(hooks, tax_id, message):
    result = hooks.kassa_tax_id_check(country="IN", tax_id=tax_id)
    assert not result.valid
    assert result.message.startswith("Not a valid GSTIN: ")
    assert message in result.message
    assert result.details == {}


@pytest.mark.parametrize("tax_id, state, code", [
    (SELLER_GSTIN, "Tamil Nadu", "33"), (KA_GSTIN, "Karnataka", "29"), ("38AABCL1234F1ZV", "Ladakh", "38"),
    (" 33-AABCC-1234D1ZI ", "Tamil Nadu", "33"),
])
def test_valid_gstins_carry_their_state(hooks, tax_id, state, code):
    result = hooks.kassa_tax_id_check(country="in", tax_id=tax_id)
    assert result.valid, result.message
    assert (result.details["state"], result.details["state_code"]) == (state, code)
    assert result.normalized == tax_id.replace("-", "").strip()


def test_ladakh_is_valid_here_though_stdnum_rejects_it():
    assert not std_gstin.is_valid("38AABCL1234F1ZV")
    assert state_code("Ladakh") == "38"


def test_every_stdnum_state_code_and_spelling_is_covered():
    for code, name in std_gstin._STATE_CODES.items():
        assert code in STATES
        mapped = state_code(name)
        assert mapped is not None, name
        assert mapped == {"25": "26", "28": "37"}.get(code, code), name


def test_state_lookup():
    assert state_code("West  Bengal") == "19"
    assert state_code("andaman & nicobar islands") == "35"
    assert state_code("9") == "09"
    assert state_code("96") is None and state_code("Bavaria") is None and state_code("") is None
    assert place_label("33") == "33-Tamil Nadu"
    assert place_label("96") == "96-Other Countries"
