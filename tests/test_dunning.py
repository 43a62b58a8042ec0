"""Dunning: the engine day by day through every combination of phases, payments
ending it, races (Kill Bill #472, #687, #2297), card retries, the console and API."""
import itertools
import os
import threading
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kassa.contracts import DunningPhase
from kassa.hookspecs import hookimpl
from kassa.models import AuditEvent, DunningEvent, DunningState, OutboxMessage, Subscription
from kassa.plugins import host
from kassa.services import cards, charges, dunning, invoicing, manual_invoices, payments, plugin_settings
from kassa.testing.billing import service, subscribe

D = Decimal
KEYS = ("grace", "warning", "suspension", "delete_notice")
DAYS = (2, 4, 3, 2)  # warning e-mails every 3 days: its first day and its fourth
DUE = date(2026, 1, 10)
BANNER = {"grace": False, "warning": True, "suspension": True, "delete_notice": True}
SUSPEND = {"grace": False, "warning": False, "suspension": True, "delete_notice": True}


class Recorder:
    """A provisioning / notification plugin: records every dunning and termination hook."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def kassa_dunning_enter_phase(self, phase, case, ctx):
        self.calls.append(("enter", phase, case.org.org_id, ctx.now.date()))

    @hookimpl
    def kassa_dunning_resolved(self, case, reason, ctx):
        self.calls.append(("resolved", reason, case.org.org_id))

    @hookimpl
    def kassa_resource_terminate(self, resource, ctx):
        self.calls.append(("resource", resource.subscription_id, resource.item_id))

    @hookimpl
    def kassa_subscription_terminated(self, subscription, ctx):
        self.calls.append(("subscription", subscription.id))

    def of(self, kind):
        return [c for c in self.calls if c[0] == kind]


def configure(admin, enabled=(True, True, True, True), days=DAYS):
    plugin_settings.set_enabled(admin, "dunning", True)
    data = {f"{k}_days": str(d) for k, d in zip(KEYS, days)}
    data.update({f"{k}_enabled": "y" for k, on in zip(KEYS, enabled) if on})
    plugin_settings.save_settings(admin, "dunning", data)


def invoice(admin, org, amount="118", due=DUE, issued=date(2026, 1, 5)):
    return manual_invoices.create(admin, {"org_id": org.id, "for": org.kind, "issue_date": issued.isoformat(),
                                          "due_date": due.isoformat(), "period_from": "2026-01-01",
                                          "period_to": "2026-01-31",
                                          "items": [{"description": "Hosting", "quantity": "1", "unit_price": amount}]})


def on(clock, day):
    clock.set(datetime.combine(day, time(6, 0), tzinfo=timezone.utc))


def state(db, org):
    db.session.rollback()
    return db.session.get(DunningState, org.id)


def outbox(db, org, template=None):
    query = select(OutboxMessage).where(OutboxMessage.org_id == org.id, OutboxMessage.template.like("dunning%"))
    if template:
        query = query.where(OutboxMessage.template == template)
    return db.session.scalars(query.order_by(OutboxMessage.id)).all()


def statuses(db, org):
    db.session.rollback()
    return [s.status for s in db.session.scalars(select(Subscription).where(Subscription.org_id == org.id)
                                                 .order_by(Subscription.id))]


@pytest.fixture
def recorder(provider, register_plugin):
    rec = Recorder()
    register_plugin(rec, "recorder", enable_for=provider.id)
    host().forget_cache()
    return rec


@pytest.fixture
def overdue_customer(db, admin, customer, customer_admin):
    """A customer with two subscriptions (three resources) and one unpaid invoice due DUE."""
    vm, disk = service(admin, "vm.small", "100"), service(admin, "disk.ssd", "5")
    subscribe(admin, customer, [(vm, 2), (disk, 50)], name="Web")
    subscribe(admin, customer, [(vm, 1)], name="Batch")
    invoice(admin, customer)
    return customer


# ------------------------------------------------------------------ the pure timeline


def _plans(enabled=(True, True, True, True), days=DAYS):
    from kassa_dunning.plugin import PHASES

    return [dunning.PhasePlan.of(p, "dunning", {f"{p.key}_enabled": on, f"{p.key}_days": d})
            for p, on, d in zip(PHASES, enabled, days)]


def test_timeline_is_computed_from_the_oldest_due_date():
    tl = dunning.timeline(DUE, _plans())
    assert [(s.key, s.starts_on, s.ends_on) for s in tl.steps] == [
        ("grace", DUE, DUE + timedelta(2)), ("warning", DUE + timedelta(2), DUE + timedelta(6)),
        ("suspension", DUE + timedelta(6), DUE + timedelta(9)),
        ("delete_notice", DUE + timedelta(9), DUE + timedelta(11))]
    assert tl.termination_on == DUE + timedelta(11)
    assert tl.steps[1].emails() == (DUE + timedelta(2), DUE + timedelta(5))
    assert tl.steps[2].emails() == (DUE + timedelta(6),) and tl.steps[0].emails() == ()
    assert tl.step_on(DUE) is None  # not overdue on the due date itself
    assert tl.step_on(DUE + timedelta(1)).key == "grace" and tl.step_on(DUE + timedelta(10)).key == "delete_notice"
    assert tl.step_on(DUE + timedelta(11)) is None and tl.terminated_by(DUE + timedelta(11))
    assert tl.retries() == (DUE + timedelta(3), DUE + timedelta(6), DUE + timedelta(9))
    assert tl.next_change(DUE + timedelta(9)) == ("Terminated", DUE + timedelta(11))
    kinds = [k for _, k, _ in tl.calendar()]
    assert kinds.count("phase") == 4 and kinds.count("email") == 4 and kinds[-1] == "terminate"


def test_timeline_skips_disabled_phases_and_never_ends_without_a_terminating_phase():
    tl = dunning.timeline(DUE, _plans(enabled=(False, True, True, False)))
    assert [s.key for s in tl.steps] == ["warning", "suspension"] and tl.steps[0].starts_on == DUE
    assert [p.key for p in tl.skipped] == ["grace", "delete_notice"]
    assert tl.termination_on is None and tl.steps[-1].open_ended
    assert tl.step_on(DUE + timedelta(400)).key == "suspension"
    assert dunning.timeline(DUE, _plans(enabled=(False,) * 4)).steps == ()


def test_a_phase_entered_late_lasts_its_full_days():
    """Kill Bill #2297: the schedule follows where the organisation really is; the
    delete notice is never cut short."""
    late = DUE + timedelta(20)
    tl = dunning.timeline(DUE, _plans(), current=("delete_notice", late))
    assert tl.steps[-1].starts_on == late and tl.termination_on == late + timedelta(2)
    assert tl.steps[-2].ends_on == late  # the previous phase lasted until then
    on_time = dunning.timeline(DUE, _plans(), current=("delete_notice", DUE + timedelta(9)))
    assert on_time.termination_on == DUE + timedelta(11)


# ------------------------------------------------------------------ every combination, day by day


def _expected(enabled):
    """Reference model (independent of the engine): phase per day offset, termination day."""
    spans, start = [], 0
    for key, on, days in zip(KEYS, enabled, DAYS):
        if on:
            spans.append((key, start, start + days))
            start += days
    termination = start if enabled[3] else None

    def phase(offset):
        if offset <= 0 or not spans:
            return None
        if termination is not None and offset >= termination:
            return "terminated"
        for key, a, b in spans:
            if a <= offset < b:
                return key
        return spans[-1][0]

    return phase, termination, [k for k, _, _ in spans]


@pytest.mark.parametrize("enabled", list(itertools.product((True, False), repeat=4)),
                         ids=lambda e: "".join("GWSD"[i] if on else "-" for i, on in enumerate(e)))
def test_every_combination_of_phases_day_by_day(db, clock, admin, overdue_customer, recorder, enabled):
    customer = overdue_customer
    configure(admin, enabled)
    phase, termination, order = _expected(enabled)
    emails_on = {}
    for offset in range(0, 14):
        day = DUE + timedelta(offset)
        on(clock, day)
        dunning.sweep()
        dunning.sweep()  # twice a day: changes nothing the second time
        s = state(db, customer)
        want = phase(offset)
        assert (s.phase if s else None) == want, f"day +{offset}"
        if want is None:
            assert statuses(db, customer) == ["active", "active"]
            continue
        if want == "terminated":
            assert s.status == "terminated" and not s.restricted
            assert statuses(db, customer) == ["cancelled", "cancelled"]
            continue
        assert s.banner is BANNER[want] and s.restricted is SUSPEND[want], f"day +{offset}"
        assert statuses(db, customer) == (["suspended", "suspended"] if SUSPEND[want] else ["active", "active"])
        for message in outbox(db, customer):
            emails_on.setdefault(message.id, (message.template, offset))
    sent = sorted(emails_on.values(), key=lambda e: e[1])
    templates = {"warning": ("dunning_warning", 3), "suspension": ("dunning_suspended", 0),
                 "delete_notice": ("dunning_delete_notice", 0)}
    expected, start, enabled_keys = [], 0, [k for k, on_ in zip(KEYS, enabled) if on_]
    for key, days in ((k, d) for k, on_, d in zip(KEYS, enabled, DAYS) if on_):
        end = start + days if (key != enabled_keys[-1] or termination is not None) else 14  # the last lasts
        if key in templates:
            template, every = templates[key]
            slot = start
            while slot < end:
                expected.append((template, max(1, slot)))  # the due date itself is not overdue yet
                if not every:
                    break
                slot += every
        start += days
    assert sent == sorted(expected, key=lambda e: e[1])
    assert [c[1] for c in recorder.of("enter")] == order  # each phase entered once, in order
    events = db.session.scalars(select(DunningEvent).where(DunningEvent.kind == "enter")).all()
    assert [e.phase for e in events] == order
    if termination is not None:
        assert recorder.of("resolved") == [("resolved", "terminated", customer.id)]
        assert len(recorder.of("resource")) == 3  # vm + disk of "Web", vm of "Batch"
        assert len(recorder.of("subscription")) == 2
        assert db.session.scalar(select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "dunning.terminate")) == 1
    else:
        assert recorder.of("resource") == [] and recorder.of("resolved") == []
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "dunning.enter")) \
        == len(order)


def test_suspension_and_delete_notice_mails_are_delivered(db, clock, admin, overdue_customer, smtp_sink):
    configure(admin, (False, False, True, True))
    on(clock, DUE + timedelta(1))
    dunning.sweep()
    on(clock, DUE + timedelta(3))
    dunning.sweep()
    subjects = [m["Subject"] for m in smtp_sink]
    assert any("suspended for non-payment" in s for s in subjects)
    notice = next(m for m in smtp_sink if "Final notice" in m["Subject"])
    assert notice["To"] == "admin@customer.example"
    body = notice.get_body(("plain",)).get_content()
    assert "terminated" in body and "cancelled" in body and str(DUE + timedelta(5)) in body
    assert "Overdue invoices:" in body
    html = notice.get_body(("html",)).get_content()
    assert "<strong>terminated</strong>" in html and "{#" not in body


def test_catching_up_never_terminates_without_the_full_notice(db, clock, admin, overdue_customer, recorder):
    """The sweep did not run for 12 days: the organisation passes through every phase
    (history, hooks) but gets the delete notice's full days before termination."""
    configure(admin)
    late = DUE + timedelta(12)  # scheduled termination was DUE + 11
    on(clock, late)
    dunning.sweep()
    s = state(db, overdue_customer)
    assert s.phase == "delete_notice" and s.entered_on == late and s.next_on == late + timedelta(2)
    assert [c[1] for c in recorder.of("enter")] == list(KEYS)
    assert [m.template for m in outbox(db, overdue_customer)] == ["dunning_delete_notice"]
    on(clock, late + timedelta(1))
    dunning.sweep()
    assert state(db, overdue_customer).phase == "delete_notice"
    on(clock, late + timedelta(2))
    dunning.sweep()
    assert state(db, overdue_customer).status == "terminated"


# ------------------------------------------------------------------ a third-party phase


def test_a_plugin_adds_a_phase_and_the_engine_runs_it_in_order(db, clock, admin, overdue_customer, recorder,
                                                                register_plugin, provider):
    class Collections:
        """Calls the customer between the warning and the suspension."""

        @hookimpl
        def kassa_dunning_phases(self):
            return [DunningPhase(key="phone_call", name="Phone Call", order=25, default_days=2, banner=True,
                                 email_template="dunning_warning")]

    register_plugin(Collections(), "collections", enable_for=provider.id)
    host().forget_cache()
    configure(admin)
    seen = []
    for offset in range(1, 16):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
        s = state(db, overdue_customer)
        seen.append(s.phase)
    assert list(dict.fromkeys(seen)) == ["grace", "warning", "phone_call", "suspension", "delete_notice",
                                         "terminated"]
    assert seen.index("phone_call") == 5 and seen.count("phone_call") == 2  # days 6-7 (after grace 2 + warning 4)
    assert [c[1] for c in recorder.of("enter")] == ["grace", "warning", "phone_call", "suspension", "delete_notice"]
    calls = [m for m in outbox(db, overdue_customer) if "(Phone Call)" in m.body_text]  # its phase name
    assert len(calls) == 1


# ------------------------------------------------------------------ paying ends it


def test_full_payment_lifts_everything_at_once(db, clock, admin, overdue_customer, recorder, console,
                                               customer_admin):
    customer = overdue_customer
    configure(admin)
    for offset in range(1, 8):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    assert state(db, customer).phase == "suspension" and statuses(db, customer) == ["suspended", "suspended"]
    c = console(customer_admin)
    assert c.get("/billing/invoices").status_code == 302
    from kassa.models import Invoice

    inv = db.session.scalar(select(Invoice).where(Invoice.org_id == customer.id))
    payments.adjust_offline(admin, inv, mark_as_paid=True, reference="CHQ-1")
    assert state(db, customer) is None  # immediately, not at the next sweep
    assert statuses(db, customer) == ["active", "active"]
    assert recorder.of("resolved") == [("resolved", "paid", customer.id)]
    page = c.get("/billing/invoices")
    assert page.status_code == 200 and 'id="dunning-banner"' not in page.get_data(as_text=True)
    mails = len(outbox(db, customer))
    for offset in range(8, 20):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    assert len(outbox(db, customer)) == mails and state(db, customer) is None
    assert statuses(db, customer) == ["active", "active"]
    kinds = [e.kind for e in db.session.scalars(select(DunningEvent).order_by(DunningEvent.id))]
    assert kinds[-2:] == ["restore", "resolved"]


def test_a_subscription_suspended_by_hand_stays_suspended(db, clock, admin, overdue_customer):
    from kassa.services import subscriptions

    configure(admin)
    subs = db.session.scalars(select(Subscription).where(Subscription.org_id == overdue_customer.id)
                              .order_by(Subscription.id)).all()
    subscriptions.set_status(admin, subs[1], "suspend")  # the provider's own decision, before dunning
    for offset in range(1, 8):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    assert state(db, overdue_customer).suspended_subscription_ids == [subs[0].id]
    from kassa.models import Invoice

    inv = db.session.scalar(select(Invoice).where(Invoice.org_id == overdue_customer.id))
    payments.adjust_offline(admin, inv, mark_as_paid=True, reference="T-1")
    assert statuses(db, overdue_customer) == ["active", "suspended"]


def test_partial_payment_moves_the_next_phase_date(db, clock, admin, customer, customer_admin, api):
    """Kill Bill #2297: paying the oldest invoice re-anchors on the next one."""
    configure(admin)
    first = invoice(admin, customer, "100", due=DUE)
    invoice(admin, customer, "50", due=DUE + timedelta(4))
    for offset in range(1, 8):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    s = state(db, customer)
    assert s.phase == "suspension" and s.next_on == DUE + timedelta(9) and s.overdue_amount == D("150.00")
    payments.adjust_offline(admin, first, mark_as_paid=False, amount="40", reference="P-1")  # part of the oldest
    s = state(db, customer)
    assert s.phase == "suspension" and s.next_on == DUE + timedelta(9) and s.overdue_amount == D("110.00")
    payments.adjust_offline(admin, first, mark_as_paid=True, reference="P-2")  # the oldest is settled
    s = state(db, customer)
    assert s.anchor_date == DUE + timedelta(4) and s.overdue_amount == D("50.00")
    assert s.phase == "warning" and not s.restricted  # back: DUE+4 +2 days grace, warning until DUE+10
    assert s.next_step == "Account Suspension" and s.next_on == DUE + timedelta(10)
    body = api(customer_admin).get(f"/api/v1/organisations/{customer.id}/dunning").get_json()
    assert body["timeline"]["anchor"] == (DUE + timedelta(4)).isoformat()
    assert body["timeline"]["termination_on"] == (DUE + timedelta(15)).isoformat()
    kinds = [e.kind for e in db.session.scalars(select(DunningEvent).order_by(DunningEvent.id))]
    assert kinds.count("back") == 1


# ------------------------------------------------------------------ races


def test_payment_recorded_while_the_sweep_runs_is_seen_under_the_lock(db, clock, admin, overdue_customer,
                                                                      monkeypatch):
    """Kill Bill #472: the sweep found the organisation overdue, the payment commits
    before the sweep locks it; the decision is taken from the ledger under the lock."""
    configure(admin)
    for offset in range(1, 6):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    assert state(db, overdue_customer).phase == "warning"
    from kassa.models import Invoice

    inv = db.session.scalar(select(Invoice).where(Invoice.org_id == overdue_customer.id))
    real_lock = dunning._lock_orgs
    paid = []

    def pay_then_lock(org_ids, *, skip_locked):
        if not paid:
            paid.append(payments.adjust_offline(admin, inv, mark_as_paid=True, reference="RACE"))
        return real_lock(org_ids, skip_locked=skip_locked)

    monkeypatch.setattr(dunning, "_lock_orgs", pay_then_lock)
    monkeypatch.setattr(dunning, "payment_recorded", lambda org_id: None)  # only the sweep decides here
    on(clock, DUE + timedelta(7))  # suspension day
    assert overdue_customer.id in dunning.overdue_org_ids(admin.org_id, DUE + timedelta(7))
    dunning.sweep()
    assert paid and state(db, overdue_customer) is None
    assert statuses(db, overdue_customer) == ["active", "active"]
    assert not outbox(db, overdue_customer, "dunning_suspended")


def test_payment_just_after_the_sweep_suspended_undoes_it(db, clock, admin, overdue_customer, register_plugin,
                                                           provider):
    """The payment commits right after the sweep decided: its re-evaluation (after
    commit) restores the subscriptions at once."""
    from kassa.models import Invoice

    inv = db.session.scalar(select(Invoice).where(Invoice.org_id == overdue_customer.id))

    class PaysWhenSuspended:
        @hookimpl
        def kassa_dunning_enter_phase(self, phase, case, ctx):
            if phase == "suspension":
                payments.record_payment(invoice=inv, amount=invoicing.amount_due(inv), gateway="offline",
                                        reference="JUST-IN-TIME")

    register_plugin(PaysWhenSuspended(), "payswhensuspended", enable_for=provider.id)
    host().forget_cache()
    configure(admin)
    for offset in range(1, 8):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    assert state(db, overdue_customer) is None
    assert statuses(db, overdue_customer) == ["active", "active"]


def test_sweeping_twice_sends_and_records_once(db, clock, admin, overdue_customer):
    configure(admin)
    on(clock, DUE + timedelta(3))
    first = dunning.sweep()
    second = dunning.sweep()
    assert first["entered"] == 2 and first["emails"] == 1
    assert "entered" not in second and "emails" not in second
    assert len(outbox(db, overdue_customer)) == 1
    keys = db.session.scalars(select(DunningEvent.key).where(DunningEvent.kind == "email")).all()
    assert keys == [f"email:{overdue_customer.id}:warning:{DUE + timedelta(3)}"]


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("KASSA_DATABASE_URL", "").startswith("postgresql"),
                    reason="two sweeps at once need PostgreSQL row locks (KASSA_DATABASE_URL=postgresql+psycopg://...)")
def test_two_sweeps_at_once_on_postgres(app, db, clock, admin, make_org, make_user):
    configure(admin)
    orgs = []
    for i in range(40):
        org = make_org("customer", parent=admin.org, name=f"Late {i}", email=f"late{i}@example.com")
        invoice(admin, org, "10")
        orgs.append(org)
    on(clock, DUE + timedelta(3))  # warning: one e-mail each
    db.session.commit()
    barrier = threading.Barrier(2)
    results = []

    def work():
        with app.app_context():
            from kassa.extensions import db as _db

            _db.session.commit()  # give the connection back to the pool before waiting
            barrier.wait(timeout=30)
            try:
                results.append(dunning.sweep())
            except Exception as exc:  # reported by the assertion below
                results.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    db.session.rollback()
    assert all(isinstance(r, dict) for r in results), results
    assert not any(r.get("chunks_retried") or r.get("failed") for r in results), results  # the locks serialised them
    assert db.session.scalar(select(func.count(DunningState.org_id))) == 40
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.template == "dunning_warning")) == 40
    assert db.session.scalar(select(func.count(DunningEvent.id)).where(DunningEvent.kind == "enter")) == 80
    assert sum(r.get("emails", 0) for r in results) == 40


# ------------------------------------------------------------------ card retries


def test_cards_are_retried_within_the_decline_limit(db, clock, admin, overdue_customer, fake_gateway):
    cards.update_card_settings(admin, {"max_declines": 2, "validity_amount": "1"})
    configure(admin)
    cards.add_card(admin, overdue_customer, "tok_visa_4242")
    fake_gateway.decline_next(times=10, reason="Insufficient funds")
    charged_on = []
    for offset in range(1, 11):
        on(clock, DUE + timedelta(offset))
        before = len([c for c in fake_gateway.calls if c[0] == "charge"])
        dunning.sweep()
        dunning.sweep()
        if len([c for c in fake_gateway.calls if c[0] == "charge"]) > before:
            charged_on.append(offset)
    assert charged_on == [3, 6]  # every 3 days; the second decline blocks the card: no more retries
    assert cards.active_card(overdue_customer.id).status == "blocked"
    retries = db.session.scalars(select(DunningEvent).where(DunningEvent.kind == "retry")).all()
    assert [r.details["status"] for r in retries] == ["declined", "declined"]


def test_a_successful_retry_ends_dunning(db, clock, admin, overdue_customer, fake_gateway, recorder):
    configure(admin)
    cards.add_card(admin, overdue_customer, "tok_visa_4242")
    fake_gateway.decline_next(times=1)
    for offset in range(1, 7):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    assert state(db, overdue_customer) is None  # the retry of day 6 paid before the suspension
    assert len(fake_gateway.charges) == 1
    assert statuses(db, overdue_customer) == ["active", "active"]
    assert recorder.of("resolved") == [("resolved", "paid", overdue_customer.id)]
    assert not outbox(db, overdue_customer, "dunning_suspended")


# ------------------------------------------------------------------ console and API


def _to_suspension(clock, admin):
    configure(admin)
    for offset in range(1, 8):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()


def test_banner_on_every_page_of_the_organisation(db, clock, admin, overdue_customer, customer_admin, console):
    configure(admin)
    for offset in range(1, 4):
        on(clock, DUE + timedelta(offset))
        dunning.sweep()
    c = console(customer_admin)
    for url in ("/", "/billing/invoices", "/billing/profile", "/profile", "/billing/transactions"):
        response = c.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and 'id="dunning-banner"' in page, url
        assert "Warning Notification" in page and "118.00" in page
    admin_page = console(admin).get("/").get_data(as_text=True)
    assert 'id="dunning-banner"' not in admin_page  # only the overdue organisation's users


def test_suspended_console_shows_only_the_payment_prompt(db, clock, admin, overdue_customer, customer_admin,
                                                         console):
    _to_suspension(clock, admin)
    c = console(customer_admin)
    for url in ("/", "/billing/invoices", "/billing/transactions"):
        response = c.get(url)
        assert response.status_code == 302 and response.headers["Location"].endswith("/dunning/pay"), url
    prompt = c.get("/dunning/pay").get_data(as_text=True)
    from kassa.models import Invoice

    inv = db.session.scalar(select(Invoice).where(Invoice.org_id == overdue_customer.id))
    assert "Your account is suspended" in prompt and f'action="/billing/invoices/{inv.id}/pay"' in prompt
    assert 'href="/billing/invoices"' not in prompt  # no menu
    assert c.get(f"/billing/invoices/{inv.id}").status_code == 200
    refused = c.post("/users/1/active", {"active": "0"})
    assert refused.status_code == 403 and "suspended for non-payment" in refused.get_data(as_text=True)
    assert console(admin).get("/billing/invoices").status_code == 200  # the provider is not affected


def test_suspended_api_calls_get_a_403_saying_why(db, clock, admin, overdue_customer, customer_admin, api):
    _to_suspension(clock, admin)
    client = api(customer_admin)
    refused = client.get("/api/v1/subscriptions")
    assert refused.status_code == 403
    message = refused.get_json()["error"]["message"]
    assert "suspended for non-payment" in message and "118.00" in message and str(DUE) in message
    assert client.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/invoices").status_code == 200
    body = client.get(f"/api/v1/organisations/{overdue_customer.id}/dunning").get_json()
    assert body["state"]["phase"] == "suspension" and body["state"]["suspended"] is True
    assert [p["key"] for p in body["timeline"]["phases"]] == list(KEYS)
    assert body["unpaid"][0]["overdue"] is True and body["history"]
    assert api(admin).get("/api/v1/subscriptions").status_code == 200


def test_cancelling_the_overdue_invoice_lifts_the_suspension_on_the_next_request(db, clock, admin,
                                                                                   overdue_customer,
                                                                                   customer_admin, console):
    _to_suspension(clock, admin)
    from kassa.models import Invoice

    inv = db.session.scalar(select(Invoice).where(Invoice.org_id == overdue_customer.id))
    invoicing.cancel(admin, inv, "billed in error")
    page = console(customer_admin).get("/")
    assert page.status_code == 200 and 'id="dunning-banner"' not in page.get_data(as_text=True)
    assert state(db, overdue_customer) is None and statuses(db, overdue_customer) == ["active", "active"]


def test_timeline_preview_page_in_scope(db, clock, admin, overdue_customer, customer_admin, console, make_org):
    configure(admin, (True, False, True, True))
    on(clock, DUE + timedelta(3))
    dunning.sweep()
    page = console(admin).get(f"/dunning/organisations/{overdue_customer.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Account Suspension" in text and str(DUE + timedelta(2)) in text  # grace 2 days, then suspension
    assert "switched off" in text and "Warning Notification" in text
    assert str(DUE + timedelta(7)) in text  # termination: 2 + 3 + 2
    assert "Entered Account Suspension" in text  # history
    own = console(customer_admin).get(f"/dunning/organisations/{overdue_customer.id}")
    assert own.status_code == 200
    other = make_org("customer", parent=admin.org, name="Someone Else")
    assert console(customer_admin).get(f"/dunning/organisations/{other.id}").status_code == 404
    overview = console(admin).get("/dunning").get_data(as_text=True)
    assert overdue_customer.name in overview and "Account Suspension" in overview


def test_billing_configurations_show_the_dunning_process(db, admin, console):
    page = console(admin).get("/billing/configurations").get_data(as_text=True)
    assert "Dunning Process" in page and "enable the plugin" in page
    configure(admin, (True, True, False, True), days=(5, 7, 14, 3))
    page = console(admin).get("/billing/configurations").get_data(as_text=True)
    section = page[page.index('id="dunning-process"'):]
    assert "/plugins/dunning/settings" in section
    for name in ("Grace Period", "Warning Notification", "Account Suspension", "Delete Notification"):
        assert name in section
    assert "skipped" in section and ">14<" in section


def test_test_clock_page(app, db, clock, admin, overdue_customer, customer_admin, make_user, console):
    configure(admin)
    c = console(admin)
    on(clock, DUE)
    assert c.get("/dunning/test-clock").status_code == 200
    assert c.raw_post("/dunning/test-clock", data={"action": "advance", "days": "3"}).status_code == 400  # CSRF
    response = c.post("/dunning/test-clock", {"action": "advance", "days": "3", "run_sweep": "y"})
    assert response.status_code == 302
    assert clock.now().date() == DUE + timedelta(3)
    assert state(db, overdue_customer).phase == "warning"  # swept each day: grace, then warning
    assert c.post("/dunning/test-clock", {"action": "set", "date": "2026-03-01"}).status_code == 302
    assert clock.now().date() == date(2026, 3, 1)
    staff = make_user(admin.org, "staff", privileges=["billing.view", "billing.configure"], actor=admin)
    assert console(staff).get("/dunning/test-clock").status_code == 404
    assert console(customer_admin).get("/dunning/test-clock").status_code == 404
    app.config["KASSA_TEST_CLOCK"] = False
    try:
        assert c.get("/dunning/test-clock").status_code == 404
    finally:
        app.config["KASSA_TEST_CLOCK"] = True


def test_frozen_clock_without_a_start_reads_the_real_time():
    from kassa.clock import FrozenClock

    before = datetime.now(timezone.utc)
    frozen = FrozenClock()
    assert before - timedelta(seconds=2) <= frozen.now() <= datetime.now(timezone.utc)


def test_the_scheduled_job_sweeps_every_provider(app, db, clock, admin, overdue_customer, make_org):
    from kassa.jobs import resolve
    from kassa.jobs.schedule import scheduled_jobs

    configure(admin)
    job = next(j for j in scheduled_jobs() if j.id == "dunning-sweep")
    assert job.every_minutes == 24 * 60 and job.func == "kassa.jobs.tasks.dunning_sweep"
    on(clock, DUE + timedelta(1))
    totals = resolve(job.func)()
    assert totals["providers"] == 1 and totals["entered"] == 1
    assert state(db, overdue_customer).phase == "grace"
