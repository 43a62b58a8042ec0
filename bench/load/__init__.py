"""Load test: the HTTP API in a real server process on 127.0.0.1, driven by
concurrent clients, then the money checked in the database.

    python -m bench.load --requests 600 --concurrency 8 --invoices 5000 [--database-url URL]

It seeds a provider (customers with one subscription each, ``--invoices``
invoices loaded in bulk with their ledger rows, cards for the customers whose
invoices are captured, an API token, the fake gateway enabled), starts
gunicorn (2 workers × 4 threads; werkzeug threaded if gunicorn is missing) on a
free port of 127.0.0.1, and sends a fixed, shuffled mix of requests with a
bounded asyncio + httpx client pool: invoice lists (filters, keyset pages),
single invoices, new orders, captures (each invoice captured by several clients
at once: one charge, the rest 409) and signed webhooks (every event sent twice).

The gateway is :class:`SharedGateway`, the test FakeGateway whose card charges
are kept in a SQLite file shared by all server workers, keyed by idempotency
key as a real gateway keeps them: so "money taken" can be compared with the
payments Kassa recorded. Afterwards: payments recorded == charges taken (no
lost, no duplicated), each capture target paid exactly once, every webhook
event stored once and applied once, and the ledger balanced.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta

from ..common import percentile, postgres_database
from .client import CAPTURES_PER_INVOICE, KINDS, MIX, READS, Outcome, drive, plan
from .gateway import SharedGateway, hookimpl
from .money import check_money
from .seeding import Seeded, seed
from .server import server

__all__ = ["Outcome", "Result", "Seeded", "SharedGateway", "bench", "check_money", "fresh_postgres", "hookimpl",
           "run", "seed"]


@dataclass
class Result:
    requests: int
    concurrency: int
    invoices: int
    database: str
    server: str
    seed_seconds: float
    seconds: float
    http_requests: int
    latency: dict  # kind -> (count, p50, p95, p99) in ms
    statuses: dict
    errors: list
    problems: list
    charges: int
    gateway_calls: int
    raw_list_p95_ms: float

    @property
    def ok(self) -> bool:
        return not self.errors and not self.problems

    def table(self) -> str:
        lines = [f"load: {self.requests} planned requests ({self.http_requests} HTTP), concurrency "
                 f"{self.concurrency}, {self.invoices:,} invoices, {self.database}, {self.server}",
                 f"seeded in {self.seed_seconds:.1f} s; ran {self.seconds:.1f} s, "
                 f"{self.http_requests / self.seconds:.0f} req/s",
                 "| kind | requests | p50 ms | p95 ms | p99 ms | statuses |",
                 "|---|---|---|---|---|---|"]
        for kind in KINDS:
            if kind in self.latency:
                n, p50, p95, p99 = self.latency[kind]
                statuses = ", ".join(f"{s}×{c}" for s, c in sorted(self.statuses[kind].items()))
                lines.append(f"| {kind} | {n} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {statuses} |")
        lines.append(f"raw list query (no HTTP) p95 {self.raw_list_p95_ms:.2f} ms")
        lines.append(f"gateway: {self.charges} charges taken, {self.gateway_calls} charge calls")
        lines.append(f"errors: {len(self.errors)}" + "".join(f"\n  {e}" for e in self.errors[:20]))
        lines.append(f"money invariants: {'all hold' if not self.problems else 'BROKEN'}"
                     + "".join(f"\n  {p}" for p in self.problems))
        return "\n".join(lines)


def raw_list_p95(app, seeded: Seeded, samples: int, rng: random.Random) -> float:
    """The baseline: the invoice list's keyset query run by the driver, no HTTP, no app."""
    from kassa.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        ph = "%s" if db.engine.dialect.name == "postgresql" else "?"
        times = []
        for _ in range(samples):
            org = rng.choice(seeded.org_ids)
            frm = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 600))
            t = time.perf_counter()
            cur.execute(f"SELECT * FROM invoices WHERE provider_id = {ph} AND org_id = {ph} AND issue_date >= {ph} "
                        f"AND issue_date <= {ph} ORDER BY issue_date DESC, id DESC LIMIT 51",
                        (seeded.provider_id, org, frm, frm + timedelta(days=120)))
            cur.fetchall()
            times.append(time.perf_counter() - t)
        raw.close()
    return percentile(times, 95) * 1000


def _run_async(coroutine):
    """``asyncio.run``, on a thread of its own when this one already runs an event
    loop (under pytest, Playwright's sync API keeps one running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def _quiet():
    """The load's own request logs off while it runs; the levels are given back."""
    loggers = [logging.getLogger(name) for name in ("httpx", "kassa")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run(requests: int, concurrency: int, invoices: int, database_url: str | None = None, *,
        timeout: float = 300, seed_value: int = 7, reads_only: bool = False) -> Result:
    from ..common import make_app, sqlite_url

    url = database_url or sqlite_url()
    work = tempfile.mkdtemp(prefix="kassa-load-")
    instance = os.path.join(work, "instance")
    os.makedirs(instance)
    previous_instance = os.environ.get("KASSA_INSTANCE_PATH")
    os.environ["KASSA_INSTANCE_PATH"] = instance  # make_app's, removed with the rest afterwards
    gateway = SharedGateway(os.path.join(work, "gateway.db"))
    rng = random.Random(seed_value)
    mix = READS if reads_only else MIX
    captures = max(1, int(requests * mix.get("capture", 0)) // CAPTURES_PER_INVOICE)
    quiet = contextlib.ExitStack()
    try:
        quiet.enter_context(_quiet())  # before make_app, which turns Kassa's logs down too
        app = make_app(url, KASSA_EXTRA_PLUGINS=[(gateway, "fakegateway")], KASSA_LOAD_ENTRYPOINTS=True)
        seeded = seed(app, gateway, invoices, captures)
        items = plan(requests, seeded, rng, mix)
        with server(url, gateway.path, instance, app.config["SECRET_KEY"]) as (base, kind, log):
            out = _run_async(drive(base, items, concurrency, seeded, gateway, timeout))
            time.sleep(0.5)  # let the server finish its in-process jobs (order e-mails) before it stops
            log.seek(0)
            server_log = log.read()
        if "Traceback" in server_log or " ERROR " in server_log:
            out.errors.append("server log has a traceback:\n" + server_log[-2000:])
        problems = check_money(app, gateway, seeded, out, {a for k, a in items if k == "capture"})
        raw95 = raw_list_p95(app, seeded, 200, rng)
        latency = {k: (len(v), percentile(v, 50) * 1000, percentile(v, 95) * 1000, percentile(v, 99) * 1000)
                   for k, v in out.times.items()}
        result = Result(requests=requests, concurrency=concurrency, invoices=invoices,
                        database=url.split(":", 1)[0].split("+")[0], server=kind, seed_seconds=seeded.seconds,
                        seconds=out.seconds, http_requests=sum(len(v) for v in out.times.values()), latency=latency,
                        statuses={k: dict(v) for k, v in out.statuses.items()}, errors=out.errors,
                        problems=problems, charges=len(gateway.taken()), gateway_calls=gateway.charge_calls(),
                        raw_list_p95_ms=raw95)
        from kassa.extensions import db

        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return result
    finally:
        quiet.close()
        if previous_instance is None:
            os.environ.pop("KASSA_INSTANCE_PATH", None)
        else:
            os.environ["KASSA_INSTANCE_PATH"] = previous_instance
        shutil.rmtree(work, ignore_errors=True)


fresh_postgres = postgres_database  # the load test's own database, next to the run's


CLIENTS = 4  # about what 2 cores serve without queueing; more measures the queue, not the request


def bench(report, invoices: int) -> None:
    """``make bench``, on PostgreSQL: reads alone (list p95 over HTTP against the raw query),
    then the whole mix (throughput, errors, the money invariants)."""
    from ..common import PG_BASE

    with fresh_postgres(PG_BASE) as url:
        reads = run(2_000, CLIENTS, invoices, url, reads_only=True)
    print(reads.table(), flush=True)
    n, p50, p95, p99 = reads.latency["list"]
    report.add(f"load: invoice list over HTTP, p95, {invoices:,} invoices, {CLIENTS} clients, reads only "
               f"(PostgreSQL, {reads.server})", f"{p95:.1f} ms (p50 {p50:.1f}, p99 {p99:.1f})",
               f"raw query p95 {reads.raw_list_p95_ms:.1f} ms", f"{p95 / reads.raw_list_p95_ms:.1f}×")
    with fresh_postgres(PG_BASE) as url:
        mixed = run(2_000, CLIENTS, invoices, url)
    print(mixed.table(), flush=True)
    n, p50, p95, p99 = mixed.latency["list"]
    report.add(f"load: {mixed.http_requests} mixed requests (lists, orders, captures, webhooks), {CLIENTS} clients",
               f"{mixed.http_requests / mixed.seconds:.0f} req/s, list p95 {p95:.0f} ms, {len(mixed.errors)} errors, "
               f"{'money invariants hold' if not mixed.problems else 'MONEY INVARIANTS BROKEN'}")
