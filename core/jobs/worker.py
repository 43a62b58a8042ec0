"""``kassa worker``: an RQ worker with the scheduler that runs each job in the app context."""
from __future__ import annotations

import logging

from rq import SimpleWorker

log = logging.getLogger(__name__)


class KassaWorker(SimpleWorker):
    """Runs jobs in-process (no fork: the SQLAlchemy pool is not fork-safe), each
    inside a fresh app context whose session is removed afterwards."""

    kassa_app = None

    def perform_job(self, job, queue, *args, **kwargs):
        from ..extensions import db
        from ..logs import job_context

        with self.kassa_app.app_context(), job_context(job):
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()

    def clean_registries(self):
        """RQ's maintenance (at start-up, then every ``maintenance_interval``, one
        worker at a time) also resumes billing runs left stalled: chunks lost with
        Redis' data, or whose worker died (its transaction was rolled back)."""
        super().clean_registries()
        if self.kassa_app is None:
            return
        from ..extensions import db
        from ..services import billing_run

        with self.kassa_app.app_context():
            try:
                resumed = billing_run.resume_stalled()
                if resumed:
                    log.warning("resumed stalled billing runs %s", resumed)
            except Exception:
                log.exception("resuming stalled billing runs failed")
            finally:
                db.session.remove()
