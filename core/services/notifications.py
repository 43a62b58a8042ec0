"""E-mail through an outbox: services queue a message in their transaction; a job
delivers it after commit by SMTP (``KASSA_SMTP_URL``, e.g. smtp://127.0.0.1:1025)
or, with no SMTP configured, into ``instance/outbox/`` as .eml files."""
from __future__ import annotations

import smtplib
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

MAX_ATTEMPTS = 5


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

    enqueue("kassa.jobs.tasks.deliver_email", message_id)


def invoice_message(invoice: Invoice, template: str = "invoice_issued") -> OutboxMessage:
    from . import invoicing

    org = db.session.get(Organisation, invoice.org_id)
    provider = db.session.get(Organisation, invoice.provider_id)
    subject = f"Invoice {invoice.number} from {provider.name}"
    return queue(provider_id=invoice.provider_id, org=org, to_email=primary_contact(org), template=template,
                 subject=subject, invoice_id=invoice.id,
                 context={"invoice": invoice, "org": org, "provider": provider,
                          "due": invoicing.amount_due(invoice), "status": invoicing.status(invoice)})


def build_email(message: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = current_app.config.get("KASSA_MAIL_FROM", "Kassa Billing <billing@kassa.localhost>")
    email["To"] = message.to_email
    email["Subject"] = message.subject
    email["Message-ID"] = f"<kassa-outbox-{message.id}@kassa.localhost>"
    email.set_content(message.body_text)
    email.add_alternative(message.body_html, subtype="html")
    for filename, content, maintype, subtype in _attachments(message):
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return email


def _attachments(message: OutboxMessage):
    """Documents attached to the message; renderers add the invoice PDF (see invoice documents)."""
    if message.invoice_id is None:
        return []
    from . import documents

    return documents.email_attachments(message.invoice_id)


def _send(email: EmailMessage) -> None:
    url = current_app.config.get("KASSA_SMTP_URL")
    if not url:
        folder = Path(current_app.instance_path) / "outbox"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{email['Message-ID'].strip('<>')}.eml").write_bytes(email.as_bytes())
        return
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_class(parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25), timeout=20) as smtp:
        if options.get("starttls", ["0"])[0] == "1":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(email)


def deliver(message_id: int) -> str:
    """Send one queued message; on failure count the attempt and re-raise so the job is retried."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.status == "sent":
        return "skipped"
    try:
        _send(build_email(message))
    except Exception as exc:
        with atomic():
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
            message.status = "failed" if message.attempts >= MAX_ATTEMPTS else "queued"
        raise
    with atomic():
        message.attempts += 1
        message.status = "sent"
        message.sent_at = utcnow_naive()
        message.last_error = ""
    return "sent"
