"""The plugin's settings (on/off and days per phase) are what the core's engine runs."""
from datetime import date, timedelta

from kassa.plugins import host
from kassa.services import dunning, plugin_settings


def test_declares_the_daily_sweep():
    from kassa_dunning.plugin import kassa_scheduled_jobs

    (job,) = kassa_scheduled_jobs()
    assert job.id == "dunning-sweep" and job.every_minutes == 24 * 60
    from kassa.jobs import resolve

    assert callable(resolve(job.func))


def test_no_phase_until_the_plugin_is_enabled(app, db, provider, admin):
    assert dunning.phase_plans(provider.id) == []
    plugin_settings.set_enabled(admin, "dunning", True)
    host().forget_cache()
    assert [p.key for p in dunning.phase_plans(provider.id)] == ["grace", "warning", "suspension", "delete_notice"]


def test_settings_saved_in_the_console_change_the_timeline(app, db, provider, admin, console):
    plugin_settings.set_enabled(admin, "dunning", True)
    c = console(admin)
    response = c.post("/plugins/dunning/settings", {
        "grace_enabled": "y", "grace_days": "5", "warning_days": "7",  # warning switched off
        "suspension_enabled": "y", "suspension_days": "10", "delete_notice_enabled": "y", "delete_notice_days": "3"})
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    plans = dunning.phase_plans(provider.id)
    assert {p.key: (p.enabled, p.days) for p in plans} == {
        "grace": (True, 5), "warning": (False, 7), "suspension": (True, 10), "delete_notice": (True, 3)}
    due = date(2026, 2, 1)
    tl = dunning.timeline(due, plans)
    assert [(s.key, s.starts_on) for s in tl.steps] == [("grace", due), ("suspension", due + timedelta(5)),
                                                        ("delete_notice", due + timedelta(15))]
    assert tl.termination_on == due + timedelta(18)
    page = c.get("/billing/configurations").get_data(as_text=True)
    assert "Dunning Process" in page and ">10<" in page
