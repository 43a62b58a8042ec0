"""The billing run, day by day on the test clock."""
import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from kassa.testing.billing import rule, service, subscribe
from kassa.contracts import TaxQuote
from kassa.hookspecs import hookimpl
from kassa.models import BillingRun, Invoice, InvoiceSequence, LedgerTransaction
from kassa.services import billing_run, invoicing, ledger, settings, subscriptions
from kassa.services.invoicing import DraftLine

D = Decimal


def at(clock, day: date):
    clock.set(datetime(day.year, day.month, day.day, 6, 0, tzinfo=timezone.utc))


def run(admin):
    r = billing_run.start(admin, admin.org.provider_id)
    return billing_run.db.session.get(BillingRun, r.id)


def invoices(db, sub=None):
    query = select(Invoice).order_by(Invoice.sequence)
    if sub is not None:
        query = query.where(Invoice.subscription_id == sub.id)
    return db.session.scalars(query).all()


def test_one_invoice_per_ended_period(db, clock, admin, customer):
    sub = subscribe(admin, customer, [(service(admin), 2)])
    at(clock, date(2026, 2, 4))
    assert run(admin).invoices_created == 0  # the first period ends on Feb 5
    at(clock, date(2026, 2, 5))
    first = run(admin)
    assert (first.status, first.invoices_created, first.total, first.done) == ("finished", 1, 1, 1)
    assert run(admin).invoices_created == 0  # running again makes nothing new
    at(clock, date(2026, 5, 20))
    assert run(admin).invoices_created == 3  # catch up Mar 5, Apr 5, May 5
    made = invoices(db, sub)
    assert [(i.period_start, i.period_end) for i in made] == [
        (date(2026, 1, 5), date(2026, 2, 5)), (date(2026, 2, 5), date(2026, 3, 5)),
        (date(2026, 3, 5), date(2026, 4, 5)), (date(2026, 4, 5), date(2026, 5, 5))]
    assert [i.number for i in made] == ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]
    assert all(i.total == D("200.00") and i.due_date == date.fromordinal(i.issue_date.toordinal() + 15) for i in made)
    assert ledger.receivable_balance(customer.id, "INR") == D("800.00")


def test_the_database_refuses_a_second_invoice_for_a_period(db, clock, admin, customer, provider):
    sub = subscribe(admin, customer, [(service(admin), 1)])
    line = [DraftLine(description="x", quantity=D(1), unit_price=D(1), amount=D("1.00"))]
    invoicing.issue(provider=provider, buyer=customer, lines=line, issue_date=date(2026, 2, 5),
                    subscription_id=sub.id, billing_key=f"{sub.id}:2026-01-05")
    with pytest.raises(IntegrityError):
        invoicing.issue(provider=provider, buyer=customer, lines=line, issue_date=date(2026, 2, 5),
                        subscription_id=sub.id, billing_key=f"{sub.id}:2026-01-05")
    db.session.rollback()
    assert db.session.scalar(select(InvoiceSequence.last_number)) == 1  # the failed issue gave its number back


def test_two_runs_at_once_never_duplicate(app, db, clock, admin, customer, make_org):
    svc = service(admin)
    others = [make_org("customer", parent=admin.org, name=f"C{i}") for i in range(6)]
    subs = [subscribe(admin, org, [(svc, 1)]) for org in [customer, *others]]
    at(clock, date(2026, 4, 10))
    run_ids = []
    for _ in range(2):
        r = BillingRun(provider_id=admin.org_id, as_of=date(2026, 4, 10), status="queued", created_at=datetime.now())
        db.session.add(r)
        db.session.commit()
        run_ids.append(r.id)
    barrier = threading.Barrier(2)
    results = []

    def work(run_id):
        with app.app_context():
            barrier.wait()
            results.append(billing_run.execute(run_id))

    threads = [threading.Thread(target=work, args=(i,)) for i in run_ids]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    db.session.rollback()  # end the test's own read snapshot
    made = invoices(db)
    assert len(made) == len(subs) * 3, results  # Jan-Feb, Feb-Mar, Mar-Apr for each
    assert len({(i.subscription_id, i.period_start) for i in made}) == len(made)
    assert sorted(i.sequence for i in made) == list(range(1, len(made) + 1))  # gapless
    assert sum(r["invoices"] for r in results) == len(made)


def test_totals_rounded_once_to_the_billing_precision(db, clock, admin, customer):
    rule(admin, rate="18")
    svc = service(admin, price="0.333333")
    subscribe(admin, customer, [(svc, 3)])
    at(clock, date(2026, 2, 5))
    run(admin)
    inv = invoices(db)[0]
    assert inv.subtotal == D("1.00")  # 3 × 0.333333 = 0.999999, rounded once
    assert inv.tax_total == D("0.18") and inv.total == D("1.18")


def test_precision_setting_applies(db, clock, admin, customer):
    settings.update_billing_settings(admin, currency="INR", precision=3)
    svc = service(admin, price="0.3333")
    subscribe(admin, customer, [(svc, 1)])
    at(clock, date(2026, 2, 5))
    run(admin)
    assert invoices(db)[0].total == D("0.333")


def test_tax_rules_by_country_and_status(db, clock, admin, customer, make_org):
    rule(admin, "IN", "18", "GST")
    rule(admin, "IN", "2", "Cess")
    rule(admin, "DE", "19", "VAT", status="suspended")
    german = make_org("customer", parent=admin.org, name="Nordlicht", country="DE")
    taxable, exempt = service(admin, "vm", "100"), service(admin, "support", "50", taxable=False)
    subscribe(admin, customer, [(taxable, 1), (exempt, 1)])
    subscribe(admin, german, [(taxable, 1)])
    at(clock, date(2026, 2, 5))
    run(admin)
    indian, de = invoices(db)
    assert indian.subtotal == D("150.00") and indian.tax_total == D("20.00") and indian.total == D("170.00")
    assert {(t.name, t.rate, t.amount) for t in indian.taxes} == {("GST", D(18), D("18.00")), ("Cess", D(2), D("2.00"))}
    assert indian.tax_rate_label == "2% + 18%"
    assert de.tax_total == 0  # the German rule is suspended


class _Undo(Exception):
    """Raised at the end of an example to roll back everything it wrote."""


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.decimals(min_value=D("0.01"), max_value=D("99999"), places=2), min_size=1, max_size=8),
       rates=st.lists(st.decimals(min_value=D("0"), max_value=D("100"), places=3), min_size=1, max_size=3))
def test_tax_total_equals_what_the_invoice_shows(db, admin, customer, provider, amounts, rates):
    from kassa.services.uow import atomic

    try:
        with atomic():  # the outer block: the service's own commits join it and the _Undo rolls all back
            for i, rate in enumerate(rates):
                rule(admin, "IN", str(rate), f"R{i}")
            lines = [DraftLine(description=f"L{i}", quantity=D(1), unit_price=a, amount=a)
                     for i, a in enumerate(amounts)]
            inv = invoicing.issue(provider=provider, buyer=customer, lines=lines, issue_date=date(2026, 1, 1))
            assert inv.tax_total == sum(l.tax_amount for l in inv.lines) == sum(t.amount for t in inv.taxes)
            assert inv.total == inv.subtotal + inv.tax_total == sum(amounts) + inv.tax_total
            assert all(l.tax_amount == l.tax_amount.quantize(D("0.01")) for l in inv.lines)
            assert ledger.unbalanced_transactions() == []
            raise _Undo
    except _Undo:
        pass


def test_mid_cycle_unit_change_prorated_to_the_day(db, clock, admin, customer):
    svc = service(admin, price="100")
    sub = subscribe(admin, customer, [(svc, 10)], start=date(2026, 4, 1))
    at(clock, date(2026, 4, 16))  # 15 of April's 30 days remain
    subscriptions.change_units(admin, sub.items[0], "16")
    at(clock, date(2026, 5, 1))
    run(admin)
    april = invoices(db, sub)[0]
    assert [l.amount for l in april.lines] == [D("1000.00"), D("300.00")]
    assert "prorated 15/30 days" in april.lines[1].description
    at(clock, date(2026, 5, 11))
    subscriptions.change_units(admin, sub.items[0], "6")  # down by 10 for 21 of May's 31 days
    at(clock, date(2026, 6, 1))
    run(admin)
    may = invoices(db, sub)[1]
    assert [l.amount for l in may.lines] == [D("1600.00"), D("-677.42")]
    assert may.total == D("922.58")


def test_added_service_is_prorated_from_today(db, clock, admin, customer):
    sub = subscribe(admin, customer, [(service(admin, "a", "30"), 1)], start=date(2026, 4, 1))
    at(clock, date(2026, 4, 21))
    subscriptions.add_item(admin, sub, service(admin, "b", "300").id, "1")
    at(clock, date(2026, 5, 1))
    run(admin)
    assert invoices(db, sub)[0].total == D("130.00")  # 30 + 300 × 10/30


def test_quarterly_and_yearly_cycles_charge_the_whole_period(db, clock, admin, customer):
    svc = service(admin, price="10")
    q = subscribe(admin, customer, [(svc, 1)], cycle="quarterly")
    y = subscribe(admin, customer, [(svc, 1)], cycle="yearly")
    at(clock, date(2027, 1, 5))
    run(admin)
    assert [i.total for i in invoices(db, q)] == [D("30.00")] * 4
    assert [i.total for i in invoices(db, y)] == [D("120.00")]


def test_trial_is_not_billed_then_becomes_active(db, clock, admin, customer):
    sub = subscribe(admin, customer, [(service(admin), 1)], start=date(2026, 1, 5), trial_days=14)
    assert sub.status == "trial" and sub.trial_ends_on == date(2026, 1, 19)
    at(clock, date(2026, 2, 18))
    run(admin)
    assert invoices(db, sub) == [] and db.session.get(type(sub), sub.id).status == "active"
    at(clock, date(2026, 2, 19))
    run(admin)
    assert [(i.period_start, i.total) for i in invoices(db, sub)] == [(date(2026, 1, 19), D("100.00"))]


def test_cancelled_subscription_billed_to_the_day_then_never_again(db, clock, admin, customer):
    sub = subscribe(admin, customer, [(service(admin, price="310"), 1)], start=date(2026, 3, 1))
    at(clock, date(2026, 3, 11))
    subscriptions.set_status(admin, sub, "cancel")
    run(admin)
    at(clock, date(2026, 9, 1))
    run(admin)
    made = invoices(db, sub)
    assert [(i.period_start, i.period_end, i.total) for i in made] == [(date(2026, 3, 1), date(2026, 3, 11), D("100.00"))]


class ExplodingTax:
    """A tax engine that fails for one buyer."""

    def __init__(self, victim):
        self.victim = victim

    @hookimpl(tryfirst=True)
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        if buyer.org_id == self.victim:
            raise RuntimeError("tax service down")
        return None


def test_a_failure_half_way_costs_only_that_subscription(db, clock, admin, customer, make_org, register_plugin):
    svc = service(admin)
    orgs = [make_org("customer", parent=admin.org, name=f"C{i}") for i in range(3)]
    for org in orgs:
        subscribe(admin, org, [(svc, 1)])
    register_plugin(ExplodingTax(orgs[1].id), "exploding-tax", enable_for=admin.org_id)
    at(clock, date(2026, 2, 5))
    result = run(admin)
    assert (result.invoices_created, result.failed) == (2, 1)
    assert "tax service down" in result.errors[0].error
    assert [i.number for i in invoices(db)] == ["INV-000001", "INV-000002"]  # no number lost


def test_issue_posts_ledger_and_fires_the_hook_after_commit(db, clock, admin, customer, register_plugin):
    seen = []

    class Listener:
        @hookimpl
        def kassa_invoice_issued(self, invoice, ctx):
            # committed: a fresh session sees the invoice
            seen.append((invoice.number, invoice.total, invoice.status))

    register_plugin(Listener(), "listener", enable_for=admin.org_id)
    subscribe(admin, customer, [(service(admin), 3)])
    at(clock, date(2026, 2, 5))
    run(admin)
    assert seen == [("INV-000001", D("300.00"), "unpaid")]
    txn = db.session.scalar(select(LedgerTransaction).filter_by(kind="invoice"))
    assert txn.amount == D("300.00") and sum(e.amount for e in txn.entries) == 0


def test_billing_run_from_console_shows_progress(db, clock, admin, customer, console):
    subscribe(admin, customer, [(service(admin), 1)])
    at(clock, date(2026, 2, 5))
    c = console(admin)
    response = c.post("/billing/runs")
    assert response.status_code == 302
    page = c.get(response.headers["Location"]).get_data(as_text=True)
    assert "finished" in page and "<strong>1</strong> invoices issued" in page
    assert "INV-000001" in c.get("/billing/invoices").get_data(as_text=True)


def test_billing_run_api_and_one_at_a_time(db, clock, admin, customer, api):
    subscribe(admin, customer, [(service(admin), 1)])
    at(clock, date(2026, 2, 5))
    client = api(admin)
    started = client.post("/api/v1/billing/runs")
    assert started.status_code == 202
    body = client.get(f"/api/v1/billing/runs/{started.get_json()['id']}").get_json()
    assert body["status"] == "finished" and body["invoices_created"] == 1
    queued = BillingRun(provider_id=admin.org_id, as_of=date(2026, 2, 5), status="running",
                        created_at=datetime.now())
    db.session.add(queued)
    db.session.commit()
    assert client.post("/api/v1/billing/runs").status_code == 409


def test_scheduled_billing_job_runs_for_every_provider(db, clock, admin, customer):
    from kassa.jobs.tasks import scheduled_billing

    subscribe(admin, customer, [(service(admin), 1)])
    at(clock, date(2026, 2, 5))
    assert len(scheduled_billing()) == 1
    assert len(invoices(db)) == 1
    assert db.session.scalar(select(func.count(BillingRun.id))) == 1
