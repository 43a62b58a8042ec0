"""E-mail through an outbox: services queue a message in their transaction; a job
delivers it after commit. The transport is the provider's own SMTP server when
its ``builtin.email`` settings have a host, else the server-wide ``KASSA_SMTP_URL``
(e.g. smtp://127.0.0.1:1025, smtps://user:pass@host, ?starttls=1), else files in
``instance/outbox/`` (.eml).

Every message has a text and an HTML part; an invoice's message has its PDF
attached. A failed delivery counts the attempt and keeps the error; it is tried
again on the back-off schedule ``RETRY_INTERVALS``: by RQ's Retry when Redis is
configured, otherwise by the scheduled job :func:`retry_due`. After
``MAX_ATTEMPTS`` the message is marked failed.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, render_template
from sqlalchemy import select

from ..clock import utcnow_naive
from ..extensions import db
from ..models import Invoice, OutboxMessage, Organisation, User
from .errors import ValidationError
from .uow import after_commit, atomic

log = logging.getLogger(__name__)
RETRY_INTERVALS = (10, 60, 300, 900, 3600)  # seconds before each retry
MAX_ATTEMPTS = 1 + len(RETRY_INTERVALS)
LOST_AFTER = timedelta(minutes=15)  # never attempted this long after queueing: the job was lost
REDIS_GRACE = timedelta(minutes=10)  # with Redis, RQ's own retry comes first
EMAIL_PLUGIN = "builtin.email"
SMTP_TIMEOUT = 20


def primary_contact(org: Organisation) -> str:
    """Seed 000: invoices always go to the primary contact (primary user) of the organisation."""
    user = db.session.scalar(select(User).where(User.org_id == org.id, User.is_primary_contact.is_(True),
                                                User.active.is_(True)).order_by(User.id))
    if user is not None:
        return user.email
    if org.email:
        return org.email
    raise ValidationError(f"{org.name} has no primary contact to send to.")


def queue(*, provider_id: int, org: Organisation | None, to_email: str, template: str, subject: str,
          context: dict, invoice_id: int | None = None) -> OutboxMessage:
    text = render_template(f"email/{template}.txt", **context)
    html = render_template(f"email/{template}.html", **context)
    with atomic():
        message = OutboxMessage(provider_id=provider_id, org_id=getattr(org, "id", None), template=template,
                                to_email=to_email, subject=subject[:300], body_text=text, body_html=html,
                                invoice_id=invoice_id, created_at=utcnow_naive())
        db.session.add(message)
        db.session.flush()
        message_id = message.id
        after_commit(lambda: _enqueue_delivery(message_id))
    return message


def _enqueue_delivery(message_id: int) -> None:
    from ..jobs import enqueue

    retry = None
    if current_app.config.get("KASSA_REDIS_URL"):
        from rq import Retry

        retry = Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS))
    enqueue("kassa.jobs.tasks.deliver_email", message_id, retry=retry)


def invoice_context(invoice: Invoice) -> dict:
    """What the invoice_issued and invoice_resend templates see."""
    from . import invoicing

    return {"invoice": invoice, "org": db.session.get(Organisation, invoice.org_id),
            "provider": db.session.get(Organisation, invoice.provider_id),
            "due": invoicing.amount_due(invoice), "status": invoicing.status(invoice)}


def invoice_message(invoice: Invoice, template: str = "invoice_issued") -> OutboxMessage:
    context = invoice_context(invoice)
    subject = f"Invoice {invoice.number} from {context['provider'].name}"
    return queue(provider_id=invoice.provider_id, org=context["org"], to_email=primary_contact(context["org"]),
                 template=template, subject=subject, invoice_id=invoice.id, context=context)


def card_blocked_message(org: Organisation, *, brand: str, last4: str, reason: str,
                         blocked_on=None) -> OutboxMessage:
    """Tell the organisation's primary contact that its saved card was blocked (context: see the template)."""
    provider = db.session.get(Organisation, org.provider_id)
    return queue(provider_id=provider.id, org=org, to_email=primary_contact(org), template="card_blocked",
                 subject=f"Your card ending {last4} was blocked by {provider.name}",
                 context={"org": org, "provider": provider, "brand": brand, "last4": last4, "reason": reason,
                          "blocked_on": blocked_on})


def dunning_warning_message(org: Organisation, case, *, phase_name: str = "Warning Notification",
                            days_left: int | None = None, next_phase: str = "") -> OutboxMessage:
    """Warn the primary contact about overdue invoices (``case``: a :class:`DunningCase`)."""
    provider = db.session.get(Organisation, org.provider_id)
    return queue(provider_id=provider.id, org=org, to_email=primary_contact(org), template="dunning_warning",
                 subject=f"Overdue invoices with {provider.name}",
                 context={"org": org, "provider": provider, "case": case, "overdue_amount": case.overdue_amount,
                          "currency": case.currency, "oldest_due_date": case.oldest_due_date,
                          "invoice_numbers": list(case.invoice_numbers), "phase_name": phase_name,
                          "days_left": days_left, "next_phase": next_phase})


def smtp_settings(provider_id: int) -> dict | None:
    """The provider's own SMTP settings (password decrypted), or None when it has no host set."""
    from . import plugin_settings

    if not plugin_settings.is_enabled(provider_id, EMAIL_PLUGIN):
        return None
    values = plugin_settings.settings_for(provider_id, EMAIL_PLUGIN, secrets=True)
    return values if (values.get("smtp_host") or "").strip() else None


def _from_address(provider_id: int) -> str:
    from . import plugin_settings

    if plugin_settings.is_enabled(provider_id, EMAIL_PLUGIN):
        configured = (plugin_settings.settings_for(provider_id, EMAIL_PLUGIN).get("from_address") or "").strip()
        if configured:
            return configured
    return current_app.config.get("KASSA_MAIL_FROM", "Kassa Billing <billing@kassa.localhost>")


def build_email(message: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = _from_address(message.provider_id)
    email["To"] = message.to_email
    email["Subject"] = message.subject
    email["Message-ID"] = f"<kassa-outbox-{message.id}@kassa.localhost>"
    text, html = bodies(message)
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    for filename, content, maintype, subtype in _attachments(message):
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return email


def bodies(message: OutboxMessage) -> tuple[str, str]:
    """The text and HTML parts. A message queued in bulk (the invoices of a billing
    run) is stored without them and rendered here, at delivery."""
    if message.body_text and message.body_html:
        return message.body_text, message.body_html
    if message.invoice_id is None:
        raise ValueError(f"Outbox message {message.id} has no body and no invoice to render one from.")
    context = invoice_context(db.session.get(Invoice, message.invoice_id))
    return (render_template(f"email/{message.template}.txt", **context),
            render_template(f"email/{message.template}.html", **context))


def _attachments(message: OutboxMessage):
    """Documents attached to the message; renderers add the invoice PDF (see invoice documents)."""
    if message.invoice_id is None:
        return []
    from . import documents

    return documents.email_attachments(message.invoice_id)


def _send(email: EmailMessage, provider_id: int | None = None) -> str:
    """Send by the provider's SMTP server, else ``KASSA_SMTP_URL``, else into files; returns the transport used."""
    own = smtp_settings(provider_id) if provider_id is not None else None
    if own is not None:
        security = own.get("security") or "starttls"
        port = int(own.get("smtp_port") or (465 if security == "ssl" else 587))
        _smtp(email, own["smtp_host"].strip(), port, ssl_wrap=security == "ssl", starttls=security == "starttls",
              username=own.get("smtp_username") or "", password=own.get("smtp_password") or "")
        return "provider-smtp"
    url = current_app.config.get("KASSA_SMTP_URL")
    if not url:
        folder = Path(current_app.instance_path) / "outbox"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{email['Message-ID'].strip('<>')}.eml").write_bytes(email.as_bytes())
        return "file"
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    _smtp(email, parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25),
          ssl_wrap=parts.scheme == "smtps", starttls=options.get("starttls", ["0"])[0] == "1",
          username=unquote(parts.username or ""), password=unquote(parts.password or ""))
    return "smtp"


def _smtp(email: EmailMessage, host: str, port: int, *, ssl_wrap: bool, starttls: bool, username: str,
          password: str) -> None:
    context = ssl.create_default_context()
    if ssl_wrap:
        smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
    with smtp:
        if starttls:
            smtp.starttls(context=context)
        if username:
            smtp.login(username, password)
        smtp.send_message(email)


#: templates whose text holds a password: their bodies are blanked once sent
CARRIES_CREDENTIALS = frozenset({"order_invoice"})


def deliver(message_id: int) -> str:
    """Send one queued message; on failure count the attempt and re-raise so the job is retried."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.status == "sent":
        return "skipped"
    try:
        email = build_email(message)
        _send(email, message.provider_id)
    except Exception as exc:
        with atomic():
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
            message.status = "failed" if message.attempts >= MAX_ATTEMPTS else "queued"
        raise
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    with atomic():
        message.attempts += 1
        message.status = "sent"
        message.sent_at = utcnow_naive()
        message.last_error = ""
        if message.template in CARRIES_CREDENTIALS:  # a first password is never kept at rest
            message.body_text = message.body_html = "(not kept: this message carried sign-in credentials)"
        else:
            if not message.body_text and text is not None:  # keep what was sent
                message.body_text = text.get_content()
            if not message.body_html and html is not None:
                message.body_html = html.get_content()
    return "sent"


def retry_due() -> int:
    """Deliver again the queued messages whose back-off has passed (the scheduled
    job ``outbox-retry``); returns how many were sent.

    Without Redis, jobs run one at a time on one thread, so this also sends
    messages whose delivery job was lost. With Redis, workers run in parallel: a
    message sent by its own job is retried by RQ's Retry, so this job waits
    ``REDIS_GRACE`` longer, and it leaves never-attempted messages to their job
    (a billing run's batch job may still be on its way to them)."""
    moment = utcnow_naive()
    with_redis = bool(current_app.config.get("KASSA_REDIS_URL"))
    if with_redis:
        moment -= REDIS_GRACE
    sent = 0
    candidates = db.session.execute(select(OutboxMessage.id, OutboxMessage.attempts, OutboxMessage.created_at)
                                    .where(OutboxMessage.status == "queued").order_by(OutboxMessage.id)).all()
    for message_id, attempts, created_at in candidates:
        if (with_redis and attempts == 0) or moment < next_attempt_at(attempts, created_at):
            continue
        try:
            sent += deliver(message_id) == "sent"
        except Exception as exc:  # counted on the message; the next run tries again
            log.warning("outbox message %s: attempt failed again: %s", message_id, exc)
    return sent


def next_attempt_at(attempts: int, created_at):
    """When a queued message is due: after the back-off of its attempts so far (or,
    never attempted, when its delivery job must have been lost)."""
    if attempts <= 0:
        return created_at + LOST_AFTER
    return created_at + timedelta(seconds=sum(RETRY_INTERVALS[:attempts]))
