"""A `kassa worker` killed with SIGKILL in the middle of a chunk, then the run resumed."""
import os
import signal
import subprocess

import pytest
from sqlalchemy import select

from kassa.jobs import rq_queue
from kassa.models import BillingRun
from kassa.services import billing_run

from .conftest import (AS_OF, KASSA, assert_billed_once, scalar, seed, side_connection, start_worker, stop,
                       wait_for, worker_env, worker_log)

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]
COUNT, CHUNK = 2000, 200

HOLDS_NUMBERS = """SELECT a.application_name || ' ' || a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE a.application_name LIKE 'fault-w%' AND l.granted
                   AND l.relation = 'invoice_sequences'::regclass LIMIT 1"""


def test_worker_killed_mid_chunk_then_resumed(db, provider, redis_app, kassa_config, kassa_tmp_root, log_dir):
    sub_ids = seed(provider, COUNT)
    redis_url = redis_app.config["KASSA_REDIS_URL"]
    with redis_app.app_context():
        redis_app.config["KASSA_BILLING_CHUNK"] = CHUNK
        run_id = billing_run.start(None, provider.id, AS_OF, background=False, distribute=True).id
        assert rq_queue().count == COUNT // CHUNK

    names = ("fault-w1", "fault-w2")
    env = {n: worker_env(kassa_config, kassa_tmp_root, redis_url, name=n) for n in names}
    workers = {n: start_worker(env[n], log_dir, n) for n in names}
    procs = list(workers.values())
    try:
        with side_connection(db) as conn:
            # catch a worker inside a chunk's transaction after it took invoice numbers, freeze
            # it, check it still holds them, and kill it there
            for _ in range(200):
                holder = wait_for(lambda: scalar(conn, HOLDS_NUMBERS), 60, "a worker to take invoice numbers",
                                  interval=0.002)
                name, backend = holder.split()
                victim = workers[name]
                os.kill(victim.pid, signal.SIGSTOP)
                if scalar(conn, HOLDS_NUMBERS) == holder:
                    break
                os.kill(victim.pid, signal.SIGCONT)  # it committed in between: catch the next chunk
            else:
                pytest.fail("no worker was caught holding the invoice numbers")
            os.kill(victim.pid, signal.SIGKILL)
            assert victim.wait(10) == -signal.SIGKILL
            wait_for(lambda: not scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = :p",
                                        p=int(backend)), 30, "the killed worker's session to end")
            survivor = next(n for n in names if n != name)
            assert workers[survivor].wait(120) == 0, worker_log(log_dir, survivor)[-3000:]

            # the killed chunk left nothing: no invoice, no number, no count; the run is stuck
            made = scalar(conn, "SELECT count(*) FROM invoices")
            assert 0 < made < COUNT and made % CHUNK == 0, made
            assert scalar(conn, "SELECT max(sequence) FROM invoices") == made
            assert scalar(conn, "SELECT last_number FROM invoice_sequences") == made  # numbers given back
            status, done = conn.execute(select(BillingRun.status, BillingRun.done)
                                        .where(BillingRun.id == run_id)).one()
            assert (status, done) == ("running", made)

        # an operator resumes it (twice: safe to repeat), and workers finish it
        resume_env = dict(env[survivor], KASSA_BILLING_CHUNK="100")
        resumed = subprocess.run([KASSA, "billing", "resume", str(run_id)], env=resume_env, capture_output=True,
                                 text=True, timeout=60)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        missing = COUNT - made
        assert f"{missing} subscriptions still due (0 held by a running chunk)" in resumed.stdout, resumed.stdout
        with redis_app.app_context():
            assert rq_queue().count == -(-missing // 100)
        # again, following the progress this time, while two workers finish it
        again = subprocess.Popen([KASSA, "billing", "resume", str(run_id), "--wait", "--interval", "0.2",
                                  "--timeout", "100"], env=resume_env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        first_line = again.stdout.readline()  # printed once the queued jobs are replaced
        finishers = [start_worker(env[n], log_dir, n) for n in names]
        procs += finishers + [again]
        out, err = again.communicate(timeout=110)
        out = first_line + out
        assert again.returncode == 0, err[-2000:]
        chunks = -(-missing // 100)
        assert f"{chunks} chunk jobs enqueued, {chunks} waiting jobs replaced" in out, out
        assert out.rstrip().splitlines()[-1].startswith(f"Billing run {run_id} (finished"), out
        for proc in finishers:
            assert proc.wait(120) == 0
        assert_billed_once(db, provider, sub_ids, run_id)

        status = subprocess.run([KASSA, "billing", "status", str(run_id)], env=resume_env, capture_output=True,
                                text=True, timeout=60)
        assert f"(finished, as of {AS_OF})" in status.stdout and f"{COUNT}/{COUNT} subscriptions done" in \
            status.stdout and f"{COUNT} invoices made" in status.stdout, status.stdout
        refused = subprocess.run([KASSA, "billing", "resume", str(run_id)], env=resume_env, capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode == 1 and "nothing to resume" in refused.stderr
    finally:
        stop(procs)
