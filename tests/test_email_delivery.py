"""E-mail delivery: text + HTML + the invoice PDF to the primary contact, through the
provider's own SMTP settings (builtin.email), KASSA_SMTP_URL or files; failures
counted and retried on the back-off schedule; the card and dunning templates."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from kassa.contracts import DunningCase
from kassa.models import OutboxMessage, PluginState
from kassa.services import invoicing, notifications, plugin_settings
from kassa.services.invoicing import DraftLine
from kassa.testing.billing import rule

D = Decimal
DEAD_SMTP = "smtp://127.0.0.1:1"  # nothing listens: the delivery fails


def issue(admin, buyer, amount="1000.00"):
    lines = [DraftLine(description="Virtual machine", quantity=D(1), unit_price=D(amount), amount=D(amount),
                       tax_code="998315", period_start=date(2026, 1, 1), period_end=date(2026, 2, 1))]
    return invoicing.issue(provider=admin.org, buyer=buyer, lines=lines, issue_date=date(2026, 1, 5),
                           period_start=date(2026, 1, 1), period_end=date(2026, 2, 1))


def parts(message) -> dict[str, list]:
    found: dict[str, list] = {}
    for part in message.walk():
        if part.is_multipart():
            continue
        found.setdefault(part.get_content_type(), []).append(part)
    return found


def last_message(db) -> OutboxMessage:
    db.session.expire_all()
    return db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))


def configure_email(admin, **values):
    plugin_settings.save_settings(admin, "builtin.email", values)
    plugin_settings.set_enabled(admin, "builtin.email", True)


def test_invoice_mail_has_text_html_and_the_pdf(db, admin, customer, customer_admin, make_user, smtp_sink):
    rule(admin, name="GST", rate="18")
    make_user(customer, "customer_user", actor=admin)
    inv = issue(admin, customer)
    assert len(smtp_sink) == 1
    message = smtp_sink[0]
    assert message["To"] == customer_admin.email
    assert inv.number in message["Subject"] and "Cloud7 Test" in message["Subject"]
    found = parts(message)
    assert set(found) == {"text/plain", "text/html", "application/pdf"}
    assert inv.number in found["text/plain"][0].get_content() and "₹1,180.00" in found["text/plain"][0].get_content()
    assert "<strong>" + inv.number in found["text/html"][0].get_content()
    pdf = found["application/pdf"][0]
    assert pdf.get_filename() == f"{inv.number}.pdf" and pdf.get_content_disposition() == "attachment"
    text = PdfReader(io.BytesIO(pdf.get_content())).pages[0].extract_text()
    assert inv.number in text and "₹1,180.00" in text
    sent = last_message(db)
    assert sent.status == "sent" and sent.attempts == 1 and sent.last_error == ""


def test_provider_smtp_settings_win_over_the_server_default(db, app, admin, customer, customer_admin, smtp_sink,
                                                            console):
    port = urlsplit(app.config["KASSA_SMTP_URL"]).port
    page = console(admin).get("/plugins/builtin.email/settings").get_data(as_text=True)
    assert "SMTP host" in page and "From address" in page and "Connection security" in page
    response = console(admin).post("/plugins/builtin.email/settings", data={
        "smtp_host": "127.0.0.1", "smtp_port": str(port), "smtp_username": "", "smtp_password": "s3cret-pass",
        "from_address": "Cloud7 Billing <billing@cloud7.example>", "security": "none"})
    assert response.status_code == 302
    plugin_settings.set_enabled(admin, "builtin.email", True)
    state = db.session.scalar(select(PluginState).filter_by(provider_id=admin.org.id, plugin="builtin.email"))
    assert state.settings["smtp_password"] != "s3cret-pass" and "$enc" in state.settings["smtp_password"]
    assert notifications.smtp_settings(admin.org.id)["smtp_password"] == "s3cret-pass"

    app.config["KASSA_SMTP_URL"] = DEAD_SMTP  # the provider's own server must be the one used
    inv = issue(admin, customer)
    assert last_message(db).status == "sent"
    assert len(smtp_sink) == 1
    assert smtp_sink[0]["From"] == "Cloud7 Billing <billing@cloud7.example>"
    assert inv.number in smtp_sink[0]["Subject"]


def test_bad_email_settings_are_refused(db, admin, console):
    response = console(admin).post("/plugins/builtin.email/settings", data={
        "smtp_host": "mail.example", "smtp_port": "99999", "from_address": "not an address", "security": "ssl"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Number must be between 1 and 65535" in body and "billing@example.com" in body


def test_provider_smtp_failure_is_recorded(db, app, admin, customer, customer_admin):
    configure_email(admin, smtp_host="127.0.0.1", smtp_port="1", security="starttls")
    issue(admin, customer)
    message = last_message(db)
    assert message.status == "queued" and message.attempts == 1 and "Error" in message.last_error


def test_file_transport_when_nothing_is_configured(db, app, admin, customer, customer_admin):
    assert not app.config.get("KASSA_SMTP_URL")
    inv = issue(admin, customer)
    message = last_message(db)
    assert message.status == "sent"
    eml = Path(app.instance_path) / "outbox" / f"kassa-outbox-{message.id}@kassa.localhost.eml"
    parsed = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert set(parts(parsed)) == {"text/plain", "text/html", "application/pdf"}
    assert inv.number in parsed["Subject"]


def test_failures_are_counted_and_retried_with_back_off(db, app, clock, admin, customer, customer_admin, smtp_sink):
    sink_url = app.config["KASSA_SMTP_URL"]
    app.config["KASSA_SMTP_URL"] = DEAD_SMTP
    inv = issue(admin, customer)
    message = last_message(db)
    assert (message.status, message.attempts) == ("queued", 1) and "Error" in message.last_error

    assert notifications.retry_due() == 0  # 10 s have not passed
    assert last_message(db).attempts == 1
    clock.advance(seconds=11)
    assert notifications.retry_due() == 0  # due, tried, failed again
    message = last_message(db)
    assert message.attempts == 2 and message.status == "queued"
    clock.advance(seconds=30)
    assert notifications.retry_due() == 0 and last_message(db).attempts == 2  # next try after 60 s more

    app.config["KASSA_SMTP_URL"] = sink_url  # the server is back
    clock.advance(seconds=31)
    assert notifications.retry_due() == 1
    message = last_message(db)
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, "")
    assert len(smtp_sink) == 1 and inv.number in smtp_sink[0]["Subject"]
    assert notifications.retry_due() == 0  # sent messages are left alone


def test_a_message_fails_for_good_after_the_last_attempt(db, app, clock, admin, customer, customer_admin):
    app.config["KASSA_SMTP_URL"] = DEAD_SMTP
    try:
        issue(admin, customer)
        for _ in range(notifications.MAX_ATTEMPTS):
            clock.advance(hours=2)
            notifications.retry_due()
    finally:
        app.config["KASSA_SMTP_URL"] = None
    message = last_message(db)
    assert message.status == "failed" and message.attempts == notifications.MAX_ATTEMPTS == 6


def test_a_lost_delivery_job_is_picked_up(db, app, clock, admin, customer, customer_admin, monkeypatch):
    monkeypatch.setattr(notifications, "_enqueue_delivery", lambda message_id: None)  # the job never ran
    notifications.card_blocked_message(customer, brand="Visa", last4="4242", reason="Expired")
    assert last_message(db).attempts == 0
    assert notifications.retry_due() == 0
    clock.advance(minutes=16)
    assert notifications.retry_due() == 1 and last_message(db).status == "sent"


def test_a_bulk_queued_invoice_mail_is_rendered_at_delivery(db, admin, customer, customer_admin, smtp_sink):
    """Issuing in bulk stores outbox rows without bodies; delivery renders them and keeps what it sent."""
    inv = issue(admin, customer)
    message = last_message(db)
    assert message.body_text and inv.number in message.body_text and "<html>" in message.body_html
    found = parts(smtp_sink[-1])
    assert inv.number in found["text/plain"][0].get_content() and "application/pdf" in found


def test_with_redis_delivery_is_enqueued_with_rq_retry(db, app, clock, admin, customer, customer_admin,
                                                       monkeypatch):
    from rq import Retry

    import kassa.jobs

    class RecordingQueue:
        """Stands in for the RQ queue on Redis: records what would be enqueued."""
        jobs = []

        def enqueue(self, func, *args, job_id=None, retry=None, **kwargs):
            self.jobs.append((func, args, retry))

    monkeypatch.setattr(kassa.jobs, "rq_queue", lambda app=None: RecordingQueue())
    monkeypatch.setitem(app.config, "KASSA_REDIS_URL", "redis://redis.invalid/0")
    message = notifications.card_blocked_message(customer, brand="Visa", last4="4242", reason="Expired")
    assert last_message(db).attempts == 0  # queued for the worker, not run here
    jobs = [j for j in RecordingQueue.jobs if j[0] == "kassa.jobs.tasks.deliver_email"]
    assert len(jobs) == 1
    func, args, retry = jobs[0]
    assert args == (message.id,)
    assert isinstance(retry, Retry) and retry.max == 5 and list(retry.intervals) == [10, 60, 300, 900, 3600]
    monkeypatch.setitem(app.config, "KASSA_SMTP_URL", DEAD_SMTP)
    with pytest.raises(Exception):
        notifications.deliver(message.id)  # the worker's first attempt fails; RQ will retry in 10 s
    assert last_message(db).attempts == 1
    clock.advance(seconds=30)
    notifications.retry_due()
    assert last_message(db).attempts == 1  # RQ's retry comes first: the sweep waits REDIS_GRACE longer
    monkeypatch.setitem(app.config, "KASSA_SMTP_URL", None)
    clock.advance(minutes=10)
    assert notifications.retry_due() == 1  # RQ gave up or lost it: the sweep sends it
    assert last_message(db).attempts == 2

    untouched = notifications.card_blocked_message(customer, brand="Visa", last4="1111", reason="Expired")
    clock.advance(hours=3)
    assert notifications.retry_due() == 0  # never attempted: its job (or a batch job) sends it, not the sweep
    db.session.refresh(untouched)
    assert (untouched.status, untouched.attempts) == ("queued", 0)


def test_card_blocked_mail(db, admin, customer, customer_admin, smtp_sink):
    notifications.card_blocked_message(customer, brand="Visa", last4="4242", reason="Reported stolen",
                                       blocked_on=date(2026, 1, 5))
    message = smtp_sink[-1]
    assert message["To"] == customer_admin.email and "4242" in message["Subject"]
    found = parts(message)
    text, html = found["text/plain"][0].get_content(), found["text/html"][0].get_content()
    for body in (text, html):
        assert "Customer Direct" in body and "Visa card ending 4242" in body and "Reported stolen" in body
        assert "2026-01-05" in body and "Cloud7 Test" in body
    assert "{#" not in text and "Context:" not in text


def test_dunning_warning_mail(db, admin, customer, customer_admin, smtp_sink):
    from kassa.services.context import party

    case = DunningCase(org=party(customer), phase="warning", overdue_amount=D("236000.00"), currency="INR",
                       oldest_due_date=date(2026, 1, 20), entered_on=date(2026, 2, 1),
                       invoice_numbers=("INV-000001", "INV-000002"))
    notifications.dunning_warning_message(customer, case, days_left=7, next_phase="Account Suspension")
    message = smtp_sink[-1]
    assert message["To"] == customer_admin.email and "Overdue" in message["Subject"]
    found = parts(message)
    text, html = found["text/plain"][0].get_content(), found["text/html"][0].get_content()
    for body in (text, html):
        assert "₹2,36,000.00" in body or "₹236,000.00" in body
        assert "INV-000001, INV-000002" in body and "2026-01-20" in body
        assert "within 7 days" in body and "Account Suspension" in body
    notifications.dunning_warning_message(customer, case)
    assert "next step" not in parts(smtp_sink[-1])["text/plain"][0].get_content()
