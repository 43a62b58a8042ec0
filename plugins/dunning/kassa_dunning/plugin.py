"""The four dunning phases of seed 000, each with an on/off and a number of days."""
from kassa.contracts import DunningPhase, ScheduledJob
from kassa.hookspecs import hookimpl
from wtforms import BooleanField, Form, IntegerField
from wtforms.validators import InputRequired, NumberRange

PHASES = (
    DunningPhase(key="grace", name="Grace Period", order=10, default_days=7,
                 description="Time to settle overdue invoices without penalty."),
    DunningPhase(key="warning", name="Warning Notification", order=20, default_days=7, banner=True,
                 email_template="dunning_warning", email_every_days=3,
                 description="Header notification on every page and regular warning e-mails."),
    DunningPhase(key="suspension", name="Account Suspension", order=30, default_days=14, banner=True, suspend=True,
                 email_template="dunning_suspended",
                 description="The console shows only the payment prompt; subscriptions are suspended."),
    DunningPhase(key="delete_notice", name="Delete Notification", order=40, default_days=7, banner=True,
                 suspend=True, email_template="dunning_delete_notice", terminate_on_exit=True,
                 description="Final warning: unpaid, resources are terminated and subscriptions cancelled."),
)


class DunningSettings(Form):
    pass


for _phase in PHASES:
    setattr(DunningSettings, f"{_phase.key}_enabled", BooleanField(f"{_phase.name}: All Customer/Resellers",
                                                                   default=_phase.default_enabled))
    setattr(DunningSettings, f"{_phase.key}_days", IntegerField(
        f"{_phase.name}: No of Days", default=_phase.default_days,
        validators=[InputRequired(), NumberRange(min=1, max=365)]))


@hookimpl
def kassa_dunning_phases():
    return list(PHASES)


@hookimpl
def kassa_settings_form():
    return DunningSettings


@hookimpl
def kassa_scheduled_jobs():
    return [ScheduledJob(id="dunning-sweep", func="kassa.jobs.tasks.dunning_sweep", every_minutes=24 * 60,
                         description="Move overdue organisations through the dunning phases; retry their cards.")]
