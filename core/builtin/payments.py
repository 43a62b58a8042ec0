"""Payment housekeeping: reconcile attempts whose outcome is unknown."""
from ..contracts import ScheduledJob
from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def kassa_scheduled_jobs():
    return [ScheduledJob(id="reconcile-payments", func="kassa.jobs.tasks.reconcile_payments", every_minutes=5,
                         description="Ask the gateways about payments left pending (timeouts, crashes)")]
