"""``kassa worker``: an RQ worker with the scheduler that runs each job in the app context."""
from __future__ import annotations

from rq import SimpleWorker


class KassaWorker(SimpleWorker):
    """Runs jobs in-process (no fork: the SQLAlchemy pool is not fork-safe), each
    inside a fresh app context whose session is removed afterwards."""

    kassa_app = None

    def perform_job(self, job, queue, *args, **kwargs):
        from ..extensions import db

        with self.kassa_app.app_context():
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()
