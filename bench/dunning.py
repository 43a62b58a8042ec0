"""Dunning sweep benchmark: 100,000 organisations on PostgreSQL, 10 % of them
overdue (one unpaid invoice each, due 1 to 30 days ago, so they land in every
phase; each with a subscription that suspension suspends), the others paid or not
yet due. Seeded with COPY.

Measured: the first sweep (every overdue organisation enters dunning: states,
history, audit, e-mails, suspensions), the next day's sweep (steady state: a few
transitions and the warning e-mails due), and a second sweep the same day (no
change at all). Baseline, in the same run: the raw driver query that finds the
overdue organisations — the one set-based read the sweep cannot do without.

Run alone: ``python -m bench.dunning`` (BENCH_SCALE=0.1 for a quick look).
"""
from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from .common import Report, Timer, make_app, postgres_database

TODAY = date(2026, 2, 10)  # make_app's frozen clock
OVERDUE_SHARE = 10  # percent
PRICE = 118_000_000  # 118.00 as a scaled integer (models.types.Amount)

RAW_OVERDUE = """
SELECT DISTINCT i.org_id FROM invoices i
JOIN ledger_transactions t ON t.invoice_id = i.id
JOIN ledger_entries e ON e.transaction_id = t.id
JOIN ledger_accounts a ON a.id = e.account_id
WHERE i.provider_id = %s AND i.cancelled_at IS NULL AND i.due_date < %s AND a.code = 'receivable'
GROUP BY i.id, i.org_id HAVING SUM(e.amount) > 0
"""


def _seed(app, count: int) -> tuple[int, int]:
    from kassa.extensions import db
    from kassa.services import plugin_settings

    from .seed import Actor, provider_with_catalogue

    rng = random.Random(11)
    with app.app_context():
        provider, actor, service_ids = provider_with_catalogue()
        plugin_settings.set_enabled(Actor(provider), "dunning", True)
        pid = provider.id
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        now = datetime(2026, 1, 1)
        with cur.copy("COPY organisations (provider_id, parent_id, kind, name, email, phone, address_line1, "
                      "address_line2, city, state, postal_code, country, tax_id, timezone, locale, status, created_at) "
                      "FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((pid, pid, "customer", f"Customer {i}", f"billing{i}@customer.example", "", "", "",
                                "", "Karnataka", "", "IN", "", "UTC", "en", "active", now))
        cur.execute("SELECT id FROM organisations WHERE kind = 'customer' AND provider_id = %s ORDER BY id", (pid,))
        org_ids = [r[0] for r in cur.fetchall()]
        cur.execute("INSERT INTO ledger_accounts (provider_id, org_id, code, kind, currency) "
                    "SELECT %s, id, 'receivable', 'asset', 'INR' FROM organisations WHERE kind = 'customer'", (pid,))
        cur.execute("INSERT INTO ledger_accounts (provider_id, org_id, code, kind, currency) VALUES "
                    "(%s, %s, 'revenue', 'income', 'INR'), (%s, %s, 'cash:offline', 'asset', 'INR') RETURNING id",
                    (pid, pid, pid, pid))
        revenue, cash = (r[0] for r in cur.fetchall())
        cur.execute("SELECT org_id, id FROM ledger_accounts WHERE code = 'receivable'")
        receivable = dict(cur.fetchall())
        snapshot = '{"org_id": 1, "kind": "customer", "name": "x", "country": "IN"}'
        overdue_every = 100 // OVERDUE_SHARE
        plan = []  # (invoice id, org id, due date, paid)
        for n, org_id in enumerate(org_ids, start=1):
            if n % overdue_every == 0:
                plan.append((n, org_id, TODAY - timedelta(days=rng.randint(1, 30)), False))
            elif n % 2:
                plan.append((n, org_id, TODAY - timedelta(days=rng.randint(1, 60)), True))
            else:
                plan.append((n, org_id, TODAY + timedelta(days=rng.randint(0, 15)), False))
        with cur.copy("COPY invoices (id, provider_id, org_id, sequence, number, kind, currency, issue_date, due_date, "
                      "subtotal, tax_total, total, tax_engine, tax_note, tax_details, notes, seller_snapshot, "
                      "buyer_snapshot, created_at, cancel_reason) FROM STDIN") as copy:
            for n, org_id, due, _ in plan:
                copy.write_row((n, pid, org_id, n, f"D-{n:07d}", "manual", "INR", due - timedelta(days=15), due,
                                100_000_000, 18_000_000, PRICE, "tax_rules", "", "{}", "", snapshot, snapshot, now, ""))
        paid = [(n, org_id) for n, org_id, _, is_paid in plan if is_paid]
        with cur.copy("COPY ledger_transactions (id, provider_id, org_id, kind, currency, amount, direction, "
                      "reference, description, invoice_id, occurred_at) FROM STDIN") as copy:
            for n, org_id, _, _ in plan:
                copy.write_row((n, pid, org_id, "invoice", "INR", PRICE, "internal", f"D-{n:07d}", "", n, now))
            for k, (n, org_id) in enumerate(paid, start=len(plan) + 1):
                copy.write_row((k, pid, org_id, "payment", "INR", PRICE, "inbound", f"P-{n}", "", n, now))
        with cur.copy("COPY ledger_entries (transaction_id, account_id, amount) FROM STDIN") as copy:
            for n, org_id, _, _ in plan:
                copy.write_row((n, receivable[org_id], PRICE))
                copy.write_row((n, revenue, -PRICE))
            for k, (n, org_id) in enumerate(paid, start=len(plan) + 1):
                copy.write_row((k, cash, PRICE))
                copy.write_row((k, receivable[org_id], -PRICE))
        overdue_orgs = [org_id for _, org_id, due, is_paid in plan if not is_paid and due < TODAY]
        with cur.copy("COPY subscriptions (provider_id, org_id, name, currency, cycle, anchor_date, next_period_start, "
                      "status, auto_deduction, created_at) FROM STDIN") as copy:
            for org_id in overdue_orgs:
                copy.write_row((pid, org_id, "Contract", "INR", "monthly", date(2026, 1, 5), date(2026, 3, 5),
                                "active", False, now))
        cur.execute("INSERT INTO subscription_items (subscription_id, service_id, units, unit_price, created_at) "
                    "SELECT id, %s, 2000000, 1450000000, %s FROM subscriptions WHERE provider_id = %s",
                    (service_ids[0], now, pid))
        for table, last in (("invoices", len(plan)), ("ledger_transactions", len(plan) + len(paid))):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
        cur.execute("UPDATE invoice_sequences SET last_number = %s", (len(plan),))
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
        raw.close()
        return pid, len(overdue_orgs)


def _raw_overdue(app, provider_id: int) -> tuple[float, int]:
    from kassa.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        best, found = None, 0
        for _ in range(3):
            with Timer() as t:
                cur.execute(RAW_OVERDUE, (provider_id, TODAY))
                found = len(cur.fetchall())
            best = t.seconds if best is None else min(best, t.seconds)
        raw.close()
        return best, found


def _sweep(app, day: date) -> tuple[float, dict]:
    from kassa.extensions import db
    from kassa.services import dunning

    with app.app_context():
        with Timer() as t:
            totals = dunning.sweep(day)
        db.session.remove()
    return t.seconds, totals


class _Workers:
    """Stands in for the job runner: in production the queued e-mails are delivered by
    workers (RQ) in other processes, not by the sweep; here they are only counted."""

    def __init__(self):
        self.jobs: list[tuple[str, tuple]] = []

    def submit(self, func_path, args, kwargs) -> None:
        self.jobs.append((func_path, args))


def run(report, count: int = 100_000) -> None:
    with postgres_database() as url:
        app = make_app(url)
        app.extensions["kassa_jobs"] = workers = _Workers()
        with Timer() as load:
            provider_id, overdue = _seed(app, count)
        print(f"  seeded {count:,} organisations ({overdue:,} overdue) in {load.seconds:.0f} s", flush=True)
        raw_seconds, found = _raw_overdue(app, provider_id)
        assert found == overdue, (found, overdue)
        first, totals = _sweep(app, TODAY)
        print(f"  first sweep: {totals}", flush=True)
        from kassa.extensions import db
        from kassa.models import DunningState

        with app.app_context():
            in_dunning = db.session.scalar(select(func.count(DunningState.org_id)))
            db.session.remove()
        assert in_dunning == overdue, (in_dunning, overdue)
        same_day, again = _sweep(app, TODAY)
        assert not again.get("entered") and not again.get("emails"), again
        next_day, steady = _sweep(app, TODAY + timedelta(days=1))
        print(f"  next day: {steady}", flush=True)
        queued = sum(len(args[0]) for path, args in workers.jobs if path.endswith("deliver_emails"))
        report.add(f"dunning sweep, {count:,} organisations, {overdue:,} overdue, all entering (PostgreSQL)",
                   f"{first:.2f} s ({overdue / first:,.0f} orgs/s, {totals.get('emails', 0):,} e-mails queued "
                   f"({queued:,} handed to the workers); goal ≤ 10 s)",
                   f"raw overdue query {raw_seconds * 1000:.0f} ms", f"{first / raw_seconds:.0f}×")
        report.add(f"dunning sweep, next day (steady state, {count:,} organisations)",
                   f"{next_day:.2f} s ({steady.get('entered', 0):,} transitions, {steady.get('emails', 0):,} e-mails)",
                   f"raw overdue query {raw_seconds * 1000:.0f} ms", f"{next_day / raw_seconds:.0f}×")
        report.add("dunning sweep, run again the same day (no change)", f"{same_day:.2f} s",
                   f"raw overdue query {raw_seconds * 1000:.0f} ms", f"{same_day / raw_seconds:.0f}×")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    rep = Report()
    run(rep, int(100_000 * float(os.environ.get("BENCH_SCALE", "1"))))
    print("\n" + rep.table())
