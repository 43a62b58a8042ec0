"""E-mail delivery through the provider's own SMTP server (host, port, login, From address, STARTTLS or SSL).

With no host set, mail goes through the server-wide ``KASSA_SMTP_URL``, or
without that into ``instance/outbox/`` as .eml files (see services.notifications).
"""
from __future__ import annotations

from email.utils import parseaddr

from wtforms import Form, IntegerField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from ..contracts import ScheduledJob
from ..forms_api import SecretField
from ..hookspecs import hookimpl

PLUGIN = "builtin.email"
SECURITY = (("starttls", "STARTTLS (port 587)"), ("ssl", "SSL/TLS (port 465)"), ("none", "None (trusted relay only)"))


def _address(form, field):
    if field.data:
        name, address = parseaddr(field.data)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValidationError("An address such as Billing <billing@example.com>.")


class EmailSettingsForm(Form):
    smtp_host = StringField("SMTP host", validators=[Optional(), Length(max=255)],
                            description="Leave empty to use the server's mail settings.")
    smtp_port = IntegerField("SMTP port", default=587, validators=[Optional(), NumberRange(1, 65535)])
    smtp_username = StringField("Username", validators=[Optional(), Length(max=255)])
    smtp_password = SecretField("Password")
    from_address = StringField("From address", validators=[Optional(), Length(max=254), _address],
                               description="e.g. Cloud7 Billing <billing@cloud7.example>")
    security = SelectField("Connection security", choices=list(SECURITY), default="starttls")


@hookimpl(trylast=True)
def kassa_settings_form():
    return EmailSettingsForm


@hookimpl(trylast=True)
def kassa_scheduled_jobs():
    return [ScheduledJob(id="outbox-retry", func="kassa.services.notifications.retry_due", every_minutes=5,
                         description="Send again e-mails whose delivery failed, with back-off (without Redis)")]
