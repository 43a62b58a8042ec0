"""The scheduled billing run of every provider."""
from ..contracts import ScheduledJob
from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def kassa_scheduled_jobs():
    return [ScheduledJob(id="billing-run", func="kassa.jobs.tasks.scheduled_billing", every_minutes=60,
                         description="Invoice every subscription whose period has ended")]
