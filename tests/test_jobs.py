"""Jobs: in-process for `make run`, RQ on the real Redis with a real `kassa worker --burst`."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kassa import create_app
from kassa.jobs import InProcessRunner, enqueue, rq_queue
from kassa.jobs import schedule
from kassa.models import LoginAttempt
from kassa.testing.services import require_redis


def _old_and_new_attempts(db, moment):
    db.session.add(LoginAttempt(email="a@x.example", ip="1", succeeded=False,
                                at=(moment - timedelta(days=40)).replace(tzinfo=None)))
    db.session.add(LoginAttempt(email="b@x.example", ip="1", succeeded=False, at=moment.replace(tzinfo=None)))
    db.session.commit()


def _count(db):
    db.session.expire_all()
    return db.session.scalar(select(func.count(LoginAttempt.id)))


def test_sync_jobs_run_in_the_caller(app, db, clock):
    _old_and_new_attempts(db, clock.now())
    assert enqueue("kassa.jobs.tasks.prune_login_attempts") == 1
    assert _count(db) == 1


def test_enqueue_refuses_an_unknown_function(app, db):
    with pytest.raises(AttributeError):
        enqueue("kassa.jobs.tasks.no_such_job")


def test_in_process_runner_runs_jobs_on_its_thread(app, db, clock):
    _old_and_new_attempts(db, clock.now())
    runner = InProcessRunner(app)
    runner.submit("kassa.jobs.tasks.prune_login_attempts", (), {})
    runner.jobs.join()
    assert _count(db) == 1


def test_schedule_enqueues_each_slot_once(app, db, clock):
    clock.set(datetime(2031, 5, 1, 0, 30, tzinfo=timezone.utc))
    assert "prune-login-attempts" in schedule.tick()
    assert schedule.tick() == []  # same day: already claimed
    clock.advance(days=1)
    assert "prune-login-attempts" in schedule.tick()


@pytest.fixture
def redis_app(kassa_config):
    url = require_redis()
    app = create_app(dict(kassa_config, KASSA_REDIS_URL=url, KASSA_JOBS_SYNC=False))
    with app.app_context():
        queue = rq_queue(app)
        queue.connection.flushdb()
        yield app
        queue.connection.flushdb()


def test_rq_job_runs_on_a_real_worker(redis_app, db, clock, kassa_config, kassa_tmp_root):
    _old_and_new_attempts(db, datetime.now(timezone.utc))  # the worker runs on the system clock
    with redis_app.app_context():
        job = enqueue("kassa.jobs.tasks.prune_login_attempts")
        assert job is not None and rq_queue().count == 1
    env = dict(os.environ, KASSA_DATABASE_URL=kassa_config["SQLALCHEMY_DATABASE_URI"],
               KASSA_REDIS_URL=redis_app.config["KASSA_REDIS_URL"], KASSA_SECRET_KEY=kassa_config["SECRET_KEY"],
               KASSA_INSTANCE_PATH=os.path.join(kassa_tmp_root, "instance"))
    kassa = Path(sys.executable).with_name("kassa")
    done = subprocess.run([str(kassa), "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout, (done.stdout + done.stderr)[-3000:]
    assert _count(db) == 1  # the worker pruned the old attempt in the shared database
    with redis_app.app_context():
        job.refresh()
        assert job.get_status() == "finished" and job.return_value() == 1


def test_two_workers_ticking_at_once_enqueue_a_slot_once(redis_app, db, clock):
    clock.set(datetime(2031, 6, 1, 0, 30, tzinfo=timezone.utc))
    with redis_app.app_context():
        first, second = schedule.tick(), schedule.tick()
        assert "prune-login-attempts" in first and second == []
        assert rq_queue().count == len(first)
