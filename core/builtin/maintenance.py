"""Housekeeping jobs of the core."""
from ..contracts import ScheduledJob
from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def kassa_scheduled_jobs():
    return [ScheduledJob(id="prune-login-attempts", func="kassa.jobs.tasks.prune_login_attempts",
                         every_minutes=24 * 60, description="Forget sign-in attempts older than 30 days")]
