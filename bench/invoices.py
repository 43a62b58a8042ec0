"""Invoice list and CSV export with a million invoices on PostgreSQL.

The invoices (with one ledger transaction and receivable entry each, so the
derived status is real) are loaded with COPY; the list goes through the API
(Flask test client, token auth, JSON) and is compared with the same keyset
query run raw by the driver; the export is compared with a raw driver dump of
the same columns to CSV.
"""
from __future__ import annotations

import csv
import io
import random
import resource
from datetime import date, datetime, timedelta

from sqlalchemy import text

from .common import Timer, make_app, percentile, postgres_database

ORGS = 10_000
REQUESTS = 300


def _load(app, count: int):
    from kassa.extensions import db
    from kassa.services import users

    from .seed import provider_with_catalogue

    with app.app_context():
        provider, _, _ = provider_with_catalogue()
        from kassa.models import Organisation

        admin_org = db.session.get(Organisation, provider.id)
        admin = users.create_user(None, admin_org, email="bench@kassa.example", name="Bench", password="x" * 12,
                                  role="cloud_admin")
        token, _ = users.create_api_token(admin, "bench")
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        now = datetime(2026, 1, 1)
        with cur.copy("COPY organisations (provider_id, parent_id, kind, name, email, phone, address_line1, "
                      "address_line2, city, state, postal_code, country, tax_id, timezone, locale, status, created_at) "
                      "FROM STDIN") as copy:
            for i in range(ORGS):
                copy.write_row((provider.id, provider.id, "customer", f"Customer {i}", "", "", "", "", "", "", "",
                                "IN", "", "UTC", "en", "active", now))
        cur.execute("SELECT id FROM organisations WHERE kind = 'customer' ORDER BY id")
        org_ids = [r[0] for r in cur.fetchall()]
        cur.execute("INSERT INTO ledger_accounts (provider_id, org_id, code, kind, currency) "
                    "SELECT %s, id, 'receivable', 'asset', 'INR' FROM organisations WHERE kind = 'customer'",
                    (provider.id,))
        cur.execute("INSERT INTO ledger_accounts (provider_id, org_id, code, kind, currency) "
                    "VALUES (%s, %s, 'revenue', 'income', 'INR') RETURNING id", (provider.id, provider.id))
        revenue = cur.fetchone()[0]
        cur.execute("SELECT org_id, id FROM ledger_accounts WHERE code = 'receivable'")
        receivable = dict(cur.fetchall())
        start = date(2024, 1, 1)
        snapshot = '{"org_id": 1, "kind": "customer", "name": "x", "country": "IN"}'
        with cur.copy("COPY invoices (id, provider_id, org_id, sequence, number, kind, currency, issue_date, due_date, "
                      "subtotal, tax_total, total, tax_engine, tax_note, tax_details, notes, seller_snapshot, "
                      "buyer_snapshot, created_at, cancel_reason) FROM STDIN") as copy:
            for i in range(1, count + 1):
                issued = start + timedelta(days=i * 730 // count)
                copy.write_row((i, provider.id, org_ids[i % ORGS], i, f"B-{i:07d}", "recurring", "INR", issued,
                                issued + timedelta(days=15), 100_000_000, 18_000_000, 118_000_000, "tax_rules", "",
                                "{}", "", snapshot, snapshot, now, ""))
        with cur.copy("COPY ledger_transactions (id, provider_id, org_id, kind, currency, amount, direction, "
                      "reference, description, invoice_id, occurred_at) FROM STDIN") as copy:
            for i in range(1, count + 1):
                copy.write_row((i, provider.id, org_ids[i % ORGS], "invoice", "INR", 118_000_000, "internal",
                                f"B-{i:07d}", "", i, now))
        with cur.copy("COPY ledger_entries (transaction_id, account_id, amount) FROM STDIN") as copy:
            for i in range(1, count + 1):
                copy.write_row((i, receivable[org_ids[i % ORGS]], 118_000_000))
                copy.write_row((i, revenue, -118_000_000))
        for table in ("invoices", "ledger_transactions"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})")
        cur.execute("UPDATE invoice_sequences SET last_number = %s", (count,))
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
        raw.close()
        return token, org_ids


def _list_requests(app, token, org_ids):
    rng = random.Random(7)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    times, raw_times = [], []
    from kassa.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        for _ in range(REQUESTS):
            org = rng.choice(org_ids)
            frm = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 600))
            to = frm + timedelta(days=120)
            with Timer() as t:
                response = client.get(f"/api/v1/invoices?org_id={org}&date_from={frm}&date_to={to}&limit=50",
                                      headers=headers)
                assert response.status_code == 200 and response.get_json()["items"]
            times.append(t.seconds)
            with Timer() as r:
                cur.execute("SELECT * FROM invoices WHERE provider_id = %s AND org_id = %s AND issue_date >= %s "
                            "AND issue_date <= %s ORDER BY issue_date DESC, id DESC LIMIT 51",
                            (1, org, frm, to))
                cur.fetchall()
            raw_times.append(r.seconds)
        raw.close()
    return times, raw_times


def _export(app, token):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = 0
    with Timer() as t:
        response = client.get("/api/v1/invoices/export.csv", headers=headers, buffered=False)
        for chunk in response.response:
            rows += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
        response.close()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    from kassa.extensions import db

    with app.app_context():
        raw = db.engine.raw_connection()
        cur = raw.cursor()
        with Timer() as r:
            cur.execute("SELECT number, org_id, issue_date, due_date, currency, subtotal, tax_total, total "
                        "FROM invoices ORDER BY issue_date DESC, id DESC")
            out = io.StringIO()
            writer = csv.writer(out)
            while batch := cur.fetchmany(10_000):
                writer.writerows(batch)
                out.seek(0)
                out.truncate()
        raw.close()
    return rows - 1, t.seconds, grown, r.seconds


def run(report, count: int = 1_000_000) -> None:
    with postgres_database() as url:
        app = make_app(url)
        with Timer() as load:
            token, org_ids = _load(app, count)
        print(f"  loaded {count:,} invoices in {load.seconds:.0f} s", flush=True)
        times, raw_times = _list_requests(app, token, org_ids)
        p95, raw95 = percentile(times, 95) * 1000, percentile(raw_times, 95) * 1000
        report.add(f"invoice list API p95, org + date filter, {count:,} invoices (PostgreSQL)",
                   f"{p95:.1f} ms (p50 {percentile(times, 50) * 1000:.1f} ms)", f"raw query p95 {raw95:.1f} ms",
                   f"{p95 / raw95:.1f}×")
        rows, seconds, grown_kb, raw_seconds = _export(app, token)
        report.add(f"CSV export, {rows:,} invoices (PostgreSQL)",
                   f"{rows / seconds:,.0f} rows/s, max RSS +{grown_kb / 1024:.0f} MB",
                   f"raw dump {rows / raw_seconds:,.0f} rows/s", f"{seconds / raw_seconds:.1f}×")
        from kassa.extensions import db

        with app.app_context():
            db.session.remove()
            db.engine.dispose()
