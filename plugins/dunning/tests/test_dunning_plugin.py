from kassa.plugins import host
from kassa.services import plugin_settings


def test_declares_the_four_seed_phases_in_order(app, db, provider, admin):
    plugin_settings.set_enabled(admin, "dunning", True)
    host().forget_cache()
    phases = sorted(host().listing("kassa_dunning_phases", provider.id), key=lambda p: p.order)
    assert [p.name for p in phases] == ["Grace Period", "Warning Notification", "Account Suspension",
                                        "Delete Notification"]
    assert phases[2].suspend and phases[3].terminate_on_exit and phases[1].banner


def test_settings_per_phase_with_days(app, db, provider, admin):
    values = plugin_settings.settings_for(provider.id, "dunning")
    assert values["grace_enabled"] is True and values["grace_days"] == 7
    from kassa.services.errors import ValidationError
    import pytest

    with pytest.raises(ValidationError) as err:
        plugin_settings.save_settings(admin, "dunning", {"grace_days": "0", "warning_days": "7",
                                                         "suspension_days": "14", "delete_notice_days": "7"})
    assert "grace_days" in err.value.field_errors
