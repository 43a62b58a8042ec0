"""`kassa billing run|status|resume`, resuming a run that lost a chunk, and the console's Resume button.
(With real workers, Redis and a killed process: tests/faults.)"""
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from kassa.cli import main
from kassa.hookspecs import hookimpl
from kassa.models import BillingRun, BillingRunError, Invoice
from kassa.services import billing_run
from kassa.testing.billing import service, subscribe

AS_OF = "2026-02-05"


def at(clock, day: date):
    clock.set(datetime(day.year, day.month, day.day, 6, 0, tzinfo=timezone.utc))


class ExplodingTax:
    def __init__(self, victim):
        self.victim = victim

    @hookimpl(tryfirst=True)
    def kassa_tax_quote(self, draft, seller, buyer, ctx):
        if buyer.org_id == self.victim:
            raise RuntimeError("tax service down")
        return None


@pytest.fixture
def customers(admin, make_org):
    svc = service(admin)
    orgs = [make_org("customer", parent=admin.org, name=f"C{i}") for i in range(5)]
    subs = [subscribe(admin, org, [(svc, 1)]) for org in orgs]
    return orgs, subs


def cli(app, *args):
    return app.test_cli_runner().invoke(main, ["billing", *args])


def _run(db, run_id) -> BillingRun:
    db.session.rollback()
    return db.session.get(BillingRun, run_id, populate_existing=True)


def _planned_but_lost(monkeypatch, admin, as_of=date(2026, 2, 5)) -> int:
    """A run planned and handed out, whose chunks never came back (the worker was
    killed, Redis lost them): nothing of it is billed."""
    monkeypatch.setattr(billing_run, "dispatch", lambda run_id, ids, here: 0)
    run_id = billing_run.start(None, admin.org_id, as_of, background=False, distribute=True).id
    monkeypatch.undo()
    return run_id


def test_run_here_shows_the_result_with_every_failure(app, db, clock, admin, customers, register_plugin):
    orgs, subs = customers
    register_plugin(ExplodingTax(orgs[1].id), "exploding-tax", enable_for=admin.org_id)
    result = cli(app, "run", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert f"(finished, as of {AS_OF}): 5/5 subscriptions done, 4 invoices made, 0 skipped (not due), 1 failed" \
        in result.output
    failure = next(line for line in result.output.splitlines() if line.startswith("  failed: "))
    assert failure.startswith(f"  failed: subscription {subs[1].id}: ") and "tax service down" in failure
    status = cli(app, "status")  # the latest run
    assert status.exit_code == 0 and status.output.splitlines() == [
        line for line in result.output.splitlines() if line.startswith(("Billing run", "  failed"))]
    assert db.session.scalar(select(func.count(Invoice.id))) == 4


def test_not_due_subscriptions_are_counted_skipped(app, db, clock, admin, customer):
    svc = service(admin)
    subscribe(admin, customer, [(svc, 1)])
    subscribe(admin, customer, [(svc, 1)], start=date(2026, 1, 20))  # first period ends Feb 20
    result = cli(app, "run", "--as-of", AS_OF)
    assert "2/2 subscriptions done, 1 invoices made, 1 skipped (not due), 0 failed" in result.output, result.output


def test_status_and_resume_of_an_unknown_run(app, db, admin):
    assert cli(app, "status").output.strip() == "Error: No billing run yet."
    for command in ("status", "resume"):
        result = cli(app, command, "999")
        assert result.exit_code == 1 and "No billing run 999." in result.output


def test_run_needs_the_provider_when_there_are_several(app, db, admin, make_org):
    make_org("provider", name="Second Provider")
    result = cli(app, "run")
    assert result.exit_code == 2 and "choose one with --provider" in result.output
    result = cli(app, "run", "--provider", "99999")
    assert result.exit_code == 2 and "no provider 99999" in result.output
    assert cli(app, "run", "--as-of", "5 Feb").exit_code == 2


def test_one_run_at_a_time(app, db, clock, admin, customers, monkeypatch):
    run_id = _planned_but_lost(monkeypatch, admin)
    result = cli(app, "run", "--as-of", AS_OF)
    assert result.exit_code == 1 and f"Billing run {run_id} is still in progress." in result.output


def test_resume_bills_what_the_lost_chunks_left(app, db, clock, admin, customers, monkeypatch):
    orgs, subs = customers
    app.config["KASSA_BILLING_CHUNK"] = 2
    try:
        run_id = _planned_but_lost(monkeypatch, admin)
        billing_run.run_chunk(run_id, [subs[0].id, subs[1].id])  # one chunk made it
    finally:
        app.config.pop("KASSA_BILLING_CHUNK")
    run = _run(db, run_id)
    assert (run.status, run.total, run.done, run.invoices_created) == ("running", 5, 2, 2)
    assert "2/5 subscriptions done" in cli(app, "status", str(run_id)).output

    result = cli(app, "resume", str(run_id))
    assert result.exit_code == 0, result.output
    assert "3 subscriptions were still due (0 held by a running chunk)" in result.output
    assert "(finished, as of 2026-02-05): 5/5 subscriptions done, 5 invoices made" in result.output
    keys = db.session.scalars(select(Invoice.billing_key)).all()
    assert sorted(keys) == sorted(f"{s.id}:2026-01-05" for s in subs)
    assert sorted(db.session.scalars(select(Invoice.sequence))) == [1, 2, 3, 4, 5]
    again = cli(app, "resume", str(run_id))
    assert again.exit_code == 1 and f"Billing run {run_id} has finished; there is nothing to resume." in again.output


def test_a_chunk_run_twice_bills_and_counts_once(app, db, clock, admin, customers, monkeypatch):
    orgs, subs = customers
    run_id = _planned_but_lost(monkeypatch, admin)
    ids = [s.id for s in subs]
    first = billing_run.run_chunk(run_id, ids)
    second = billing_run.run_chunk(run_id, ids)  # RQ ran it again, or a resume raced a live copy
    assert (first["settled"], second["settled"], second["invoices"]) == (5, 0, 0)
    run = _run(db, run_id)
    assert (run.status, run.total, run.done, run.invoices_created) == ("finished", 5, 5, 5)
    assert db.session.scalar(select(func.count(Invoice.id))) == 5


def test_resume_does_not_retry_or_recount_failures(app, db, clock, admin, customers, monkeypatch, register_plugin):
    orgs, subs = customers
    register_plugin(ExplodingTax(orgs[0].id), "exploding-tax", enable_for=admin.org_id)
    run_id = _planned_but_lost(monkeypatch, admin)
    billing_run.run_chunk(run_id, [subs[0].id, subs[1].id])
    billing_run.run_chunk(run_id, [subs[0].id])  # the failed one again: not counted twice
    run = _run(db, run_id)
    assert (run.done, run.failed, run.invoices_created) == (2, 1, 1)
    done = billing_run.resume(run_id)
    assert (done.remaining, done.status) == (3, "finished")
    run = _run(db, run_id)
    assert (run.total, run.done, run.failed, run.invoices_created) == (5, 5, 1, 4)
    assert db.session.scalar(select(func.count(BillingRunError.id))) == 1


def test_resume_of_a_run_whose_start_job_was_lost(app, db, clock, admin, customers):
    run = BillingRun(provider_id=admin.org_id, as_of=date(2026, 2, 5), status="queued", created_at=datetime.now())
    db.session.add(run)
    db.session.commit()
    result = cli(app, "resume", str(run.id))
    assert result.exit_code == 0 and "5/5 subscriptions done, 5 invoices made" in result.output, result.output


def test_stalled_runs_are_resumed_by_the_schedule(app, db, clock, admin, customers, monkeypatch):
    from kassa.jobs.tasks import scheduled_billing

    run_id = _planned_but_lost(monkeypatch, admin)
    assert billing_run.resume_stalled() == []  # too young: its chunks may still be on their way
    clock.advance(minutes=3)
    started = scheduled_billing()  # resumed it first, then started today's run
    assert _run(db, run_id).status == "finished" and run_id not in started
    assert db.session.scalar(select(func.count(Invoice.id))) == 5


def test_console_resume_button(app, db, clock, admin, customers, monkeypatch, console):
    run_id = _planned_but_lost(monkeypatch, admin)
    c = console(admin)
    page = c.get(f"/billing/runs/{run_id}").get_data(as_text=True)
    assert "0</strong> of 5 subscriptions done" in page and f"/billing/runs/{run_id}/resume" in page
    response = c.post(f"/billing/runs/{run_id}/resume")
    assert response.status_code == 302
    page = c.get(response.headers["Location"]).get_data(as_text=True)
    assert "Resumed: 5 subscriptions still due" in page and "finished" in page
    assert f"/billing/runs/{run_id}/resume" not in page  # nothing left to resume
    page = c.get(c.post(f"/billing/runs/{run_id}/resume").headers["Location"]).get_data(as_text=True)
    assert "there is nothing to resume" in page
    assert c.post("/billing/runs/99999/resume").status_code == 404


def test_redis_unreachable(app, db, clock, admin, customers, monkeypatch):
    run_id = _planned_but_lost(monkeypatch, admin)
    monkeypatch.setitem(app.config, "KASSA_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    result = cli(app, "resume", str(run_id))
    assert result.exit_code == 1 and "Redis is not reachable" in result.output
    assert _run(db, run_id).done == 0  # nothing planned or billed
    status = cli(app, "status", str(run_id))  # the database still tells the progress
    assert status.exit_code == 0 and "(running, as of 2026-02-05): 0/5 subscriptions done" in status.output
