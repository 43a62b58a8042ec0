import pytest

from kassa.plugins import host
from kassa.services import plugin_settings


@pytest.fixture
def hooks(app, db, provider, admin):
    plugin_settings.set_enabled(admin, "tax_india_gst", True)
    host().forget_cache()
    return host().hooks(provider.id)


def test_registers_the_india_engine(hooks):
    engines = [e for es in hooks.kassa_tax_engines() for e in es]
    assert any(e.id == "india_gst" and e.countries == ("IN",) for e in engines)


def test_gstin_checked_with_stdnum(hooks):
    ok = hooks.kassa_tax_id_check(country="IN", tax_id="27aapfu0939f1zv")
    assert ok.valid and ok.normalized == "27AAPFU0939F1ZV" and ok.details["state"] == "Maharashtra"
    bad = hooks.kassa_tax_id_check(country="IN", tax_id="27AAPFU0939F1ZX")
    assert not bad.valid and "checksum" in bad.message.lower()
    assert not hooks.kassa_tax_id_check(country="IN", tax_id="27AAPFU0939").valid
    assert hooks.kassa_tax_id_check(country="US", tax_id="27AAPFU0939F1ZV") is None
