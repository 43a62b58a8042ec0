from datetime import datetime, timezone

from sqlalchemy import select

from kassa.clock import FrozenClock, now, today
from kassa.models import AuditEvent
from kassa.services import plugin_settings, users


def test_frozen_clock_moves_only_when_told():
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert clock.now() == clock.now()
    clock.advance(days=30)
    assert clock.now().date().isoformat() == "2026-03-31"


def test_services_read_the_app_clock(app, db, clock, admin):
    clock.set(datetime(2027, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert now().year == 2027 and today().isoformat() == "2027-02-03"
    _, token = users.create_api_token(admin, "x")
    assert token.created_at == datetime(2027, 2, 3, 4, 5)


def test_changes_are_audited_with_actor(app, db, admin, api):
    plugin_settings.set_enabled(admin, "dunning", True)
    api(admin).put("/api/v1/billing/settings", json={"precision": 3})
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    actions = [e.action for e in events]
    assert "plugin.enable" in actions and "settings.billing" in actions
    billing = next(e for e in events if e.action == "settings.billing")
    assert billing.actor_id == admin.id and billing.details["after"]["precision"] == 3
    listed = api(admin).get("/api/v1/audit?action=plugin").get_json()["items"]
    assert [e["action"] for e in listed] == ["plugin.enable"]
