"""Helpers shared by the benchmarks: fresh databases, apps, timing, the report table."""
from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone

from sqlalchemy import create_engine, text

PG_BASE = os.environ.get("KASSA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
REDIS_URL = os.environ.get("KASSA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


class Report:
    """Collects result rows and prints them as one table (and writes it to a file)."""

    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, name: str, value: str, baseline: str = "", ratio: str = "") -> None:
        self.rows.append((name, value, baseline, ratio))
        print(f"  {name}: {value}" + (f"  (baseline {baseline}, ratio {ratio})" if baseline else ""), flush=True)

    def table(self) -> str:
        header = ("benchmark", "result", "baseline (same run)", "ratio")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
        return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                          *map(line, self.rows)])


def sqlite_url() -> str:
    return f"sqlite:///{tempfile.mkdtemp(prefix='kassa-bench-')}/bench.db"


@contextlib.contextmanager
def postgres_database(base_url: str = PG_BASE):
    """A fresh, empty PostgreSQL database next to ``base_url``'s, dropped afterwards."""
    name = f"kassa_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_app(url: str, **extra):
    os.environ.setdefault("KASSA_INSTANCE_PATH", tempfile.mkdtemp(prefix="kassa-bench-instance-"))
    from kassa import create_app
    from kassa.clock import FrozenClock
    from kassa.extensions import db

    config = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "KASSA_REDIS_URL": None,
              "KASSA_JOBS_SYNC": False, "KASSA_LOAD_ENTRYPOINTS": True, **extra}
    app = create_app(config)
    app.extensions["kassa_clock"] = FrozenClock(datetime(2026, 2, 10, 6, tzinfo=timezone.utc))
    with app.app_context():
        db.create_all()
    import logging

    logging.getLogger("kassa").setLevel(logging.WARNING)
    return app


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def median(values) -> float:
    return statistics.median(values)
