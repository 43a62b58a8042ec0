"""The RQ side of a billing run: its jobs are found by their ids
(``billing-run-<run>-...``), so a run's queued, running and failed chunks can be
counted and a resume can take back what is still queued before it re-plans."""
from __future__ import annotations

import secrets

from flask import current_app

from . import redis_connection, rq_queue

ALL = ("queued", "scheduled", "started", "failed")


def job_id(run_id: int, part: str) -> str:
    return f"billing-run-{run_id}-{part}-{secrets.token_hex(4)}"


def _prefix(run_id: int) -> str:
    return f"billing-run-{run_id}-"


def redis_configured() -> bool:
    return bool(current_app.config.get("KASSA_REDIS_URL"))


def run_jobs(run_id: int) -> dict[str, list[str]]:
    """The run's job ids in the queue, waiting for a retry, being run, and failed
    (a job whose worker died stays "started" until RQ's cleanup declares it
    abandoned and moves it to the failed registry)."""
    queue = rq_queue()
    prefix = _prefix(run_id)
    found = {
        "queued": queue.get_job_ids(),
        "scheduled": queue.scheduled_job_registry.get_job_ids(cleanup=False),
        "started": queue.started_job_registry.get_job_ids(cleanup=False),
        "failed": queue.failed_job_registry.get_job_ids(cleanup=False),
    }
    return {state: [i for i in ids if i.startswith(prefix)] for state, ids in found.items()}


def drop_waiting(run_id: int) -> int:
    """Take the run's queued and retry-scheduled jobs off Redis; return how many.
    A job a worker dequeues meanwhile still runs: harmless, a chunk settles each
    subscription once (see :func:`kassa.services.billing_run.run_chunk`)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    queue = rq_queue()
    jobs = run_jobs(run_id)
    taken = [i for i in jobs["queued"] if queue.remove(i)]
    taken += [i for i in jobs["scheduled"] if queue.scheduled_job_registry.remove(i)]
    for ident in taken:
        try:
            Job.fetch(ident, connection=queue.connection).delete(remove_from_queue=False)
        except NoSuchJobError:
            pass
    return len(taken)


def claim(name: str, seconds: int) -> bool:
    """A short lock on Redis (SET NX with expiry); it runs out by itself."""
    return bool(redis_connection().set(f"kassa:billing:{name}", "1", nx=True, ex=seconds))
