"""Redis goes down in the middle of a distributed run and comes back empty (no
persistence: the worst case, every queued chunk lost). The workers are kept
running by the test as a supervisor would (a burst worker exits when it finds the
queue empty, an RQ worker gives up when Redis vanishes under a running job);
a worker starting up runs RQ's maintenance, which resumes the stalled run. No
one resumes it by hand."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from redis import Redis

from .conftest import (AS_OF, KASSA, assert_billed_once, free_port, scalar, seed, side_connection, start_worker, stop,
                       wait_for, worker_env, worker_log)

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]
COUNT, CHUNK = 2000, 100
REDIS_SERVER = "/usr/bin/redis-server"


def _redis(port: int, workdir: str) -> subprocess.Popen:
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: _ping(port), 10, f"redis-server on port {port}")
    return proc


def _ping(port: int) -> bool:
    try:
        return Redis(port=port, socket_connect_timeout=0.2).ping()
    except Exception:
        return False


@pytest.fixture
def own_redis(pg):
    if not os.path.exists(REDIS_SERVER):
        pytest.skip(f"{REDIS_SERVER} is needed to restart a Redis of the test's own")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="kassa-redis-")
    box = {"proc": _redis(port, workdir), "port": port, "dir": workdir}
    yield box
    stop([box["proc"]])
    shutil.rmtree(workdir, ignore_errors=True)


def test_redis_restarted_mid_run(db, provider, own_redis, kassa_config, kassa_tmp_root, log_dir):
    sub_ids = seed(provider, COUNT)
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    env = worker_env(kassa_config, kassa_tmp_root, url, KASSA_BILLING_STALL_SECONDS=0, KASSA_BILLING_CHUNK=CHUNK)
    started = subprocess.run([KASSA, "billing", "run", "--provider", str(provider.id), "--as-of", str(AS_OF),
                              "--no-wait"], env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr[-2000:]
    line = started.stdout.strip()
    assert line.endswith(f"0/{COUNT} subscriptions done, 0 invoices made, 0 skipped (not due), 0 failed; "
                         f"chunk jobs: {COUNT // CHUNK} waiting, 0 running, 0 failed"), line
    run_id = int(line.split()[2])
    names = ("redis-w1", "redis-w2")
    workers = {n: start_worker(env, log_dir, n) for n in names}
    starts = 2
    try:
        with side_connection(db) as conn:
            invoices = lambda: scalar(conn, "SELECT count(*) FROM invoices")  # noqa: E731
            wait_for(lambda: invoices() >= 3 * CHUNK, 60, "a few chunks to be billed", interval=0.01)
            own_redis["proc"].send_signal(signal.SIGKILL)  # a crash: what was queued is gone
            own_redis["proc"].wait(10)
            at_crash = invoices()
            time.sleep(1.5)
            assert invoices() < COUNT, "the run finished before Redis went down: nothing was tested"
            own_redis["proc"] = _redis(own_redis["port"], own_redis["dir"])
            assert Redis(port=own_redis["port"]).dbsize() == 0  # came back empty

            # the supervisor: a worker that has exited is started again until the run is done
            deadline = time.monotonic() + 75
            while scalar(conn, "SELECT status FROM billing_runs WHERE id = :i", i=run_id) != "finished":
                assert time.monotonic() < deadline, "the run did not finish: " + " | ".join(
                    worker_log(log_dir, n)[-1500:] for n in names)
                for name, proc in workers.items():
                    if proc.poll() is not None:
                        workers[name] = start_worker(env, log_dir, name)
                        starts += 1
                time.sleep(0.2)
        for proc in workers.values():
            proc.wait(60)
        assert starts > 2  # the burst workers ran out of queue when Redis came back empty
        assert at_crash < COUNT
        assert_billed_once(db, provider, sub_ids, run_id)
        logs = "".join(worker_log(log_dir, n) for n in names)
        assert "resumed stalled billing runs" in logs  # by a worker's start-up maintenance, not by hand
    finally:
        stop(list(workers.values()))
