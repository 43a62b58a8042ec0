"""The schedule: plugins declare ScheduledJob(every_minutes=...); a tick enqueues
each job once per slot. With Redis, a slot is claimed with SET NX, so any number
of workers ticking at once enqueue it once."""
from __future__ import annotations

import logging
import threading

from flask import current_app

from ..clock import now
from . import enqueue, redis_connection

log = logging.getLogger(__name__)
_claimed_in_process: set[str] = set()
_claim_lock = threading.Lock()


def scheduled_jobs():
    from ..plugins import host

    jobs = [job for items in host().pm.hook.kassa_scheduled_jobs() for job in items or ()]
    return sorted(jobs, key=lambda j: j.id)


def slot_key(job, moment) -> str:
    slot = int(moment.timestamp() // 60) // max(1, job.every_minutes)
    return f"kassa:schedule:{job.id}:{slot}"


def _claim(key: str, ttl_seconds: int) -> bool:
    if current_app.config.get("KASSA_REDIS_URL"):
        return bool(redis_connection().set(key, "1", nx=True, ex=ttl_seconds))
    with _claim_lock:
        if key in _claimed_in_process:
            return False
        _claimed_in_process.add(key)
        return True


def tick() -> list[str]:
    """Enqueue every job whose current slot has not been claimed yet; return their ids."""
    moment = now()
    started = []
    for job in scheduled_jobs():
        key = slot_key(job, moment)
        if _claim(key, ttl_seconds=max(120, job.every_minutes * 120)):
            enqueue(job.func, job_id=None)
            started.append(job.id)
            log.info("scheduled job %s enqueued", job.id)
    return started


def run_ticker(app, interval_seconds: float = 30.0, stop: threading.Event | None = None) -> threading.Thread:
    """Tick every ``interval_seconds`` in a daemon thread until ``stop`` is set."""
    stop = stop or threading.Event()

    def loop():
        while not stop.is_set():
            with app.app_context():
                try:
                    tick()
                except Exception:
                    log.exception("schedule tick failed")
            stop.wait(interval_seconds)

    thread = threading.Thread(target=loop, name="kassa-schedule", daemon=True)
    thread.start()
    return thread
