"""Background jobs.

With ``KASSA_REDIS_URL`` set, jobs go to RQ and ``kassa worker`` runs them (an RQ
worker with the scheduler, inside the app context). Without it, jobs run in the
web process on one background thread, so ``make run`` needs nothing but Python;
tests set ``KASSA_JOBS_SYNC`` to run them at once in the caller.
"""
from __future__ import annotations

import logging
import queue
import threading
from importlib import import_module

from flask import current_app

log = logging.getLogger(__name__)
QUEUE_NAME = "kassa"


def resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def init_jobs(app) -> None:
    app.extensions["kassa_jobs"] = InProcessRunner(app) if not app.config.get("KASSA_REDIS_URL") else None


def redis_connection(url: str | None = None):
    from redis import Redis

    return Redis.from_url(url or current_app.config["KASSA_REDIS_URL"])


def rq_queue(app=None):
    from rq import Queue

    app = app or current_app
    return Queue(QUEUE_NAME, connection=redis_connection(app.config["KASSA_REDIS_URL"]))


def enqueue(func_path: str, *args, job_id: str | None = None, retry=None, **kwargs):
    """Queue ``func_path(*args, **kwargs)`` to run inside the app context.

    ``retry`` (an ``rq.Retry``) makes RQ run a failed job again on its schedule;
    without Redis there is no queue to retry from and it is ignored."""
    resolve(func_path)  # fail now, in the caller, on a wrong path
    app = current_app._get_current_object()
    if app.config.get("KASSA_REDIS_URL"):
        return rq_queue(app).enqueue(func_path, *args, job_id=job_id, retry=retry, **kwargs)
    if app.config.get("KASSA_JOBS_SYNC"):
        return run_job(app, func_path, args, kwargs)
    app.extensions["kassa_jobs"].submit(func_path, args, kwargs)
    return None


def run_job(app, func_path: str, args=(), kwargs=None):
    from ..extensions import db

    with app.app_context():
        try:
            return resolve(func_path)(*args, **(kwargs or {}))
        finally:
            db.session.remove()


class InProcessRunner:
    """One daemon thread that runs queued jobs in order, each in its own app context."""

    def __init__(self, app):
        self.app = app
        self.jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, func_path, args, kwargs) -> None:
        self.start()
        self.jobs.put((func_path, args, kwargs))

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="kassa-jobs", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            func_path, args, kwargs = self.jobs.get()
            try:
                run_job(self.app, func_path, args, kwargs)
            except Exception:
                log.exception("job %s failed", func_path)
            finally:
                self.jobs.task_done()
