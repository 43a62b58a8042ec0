"""Seeding the load test's provider fast: bulk rows (COPY on PostgreSQL)."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .gateway import SharedGateway

WEBHOOK_SECRET = "whsec_load"


@dataclass
class Seeded:
    token: str
    provider_id: int
    org_ids: list[int]
    invoice_ids: list[int]
    capture_ids: list[int]
    service_ids: list[int]
    tag: str = ""  # unique per run: e-mails and webhook event ids do not meet an earlier run's
    seconds: float = 0.0


def _bulk(cur, postgres: bool, table: str, columns: tuple[str, ...], rows) -> None:
    """COPY on PostgreSQL, executemany in batches on SQLite (JSON columns given as dicts)."""
    rows = (tuple(json.dumps(v) if isinstance(v, dict) else v for v in row) for row in rows)
    if postgres:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 20_000:
            cur.executemany(sql, batch)
            batch.clear()
    if batch:
        cur.executemany(sql, batch)


def seed(app, gateway: SharedGateway, count: int, captures: int) -> Seeded:
    """Provider, customers with a subscription each, ``count`` invoices (bulk, with the
    ledger rows that make them due), cards for ``captures`` customers, an API token."""
    from sqlalchemy import func, select

    from kassa.extensions import db
    from kassa.models import Invoice, LedgerTransaction, Organisation, Subscription
    from kassa.services import cards, plugin_settings, users

    from ..seed import provider_with_catalogue, subscriptions

    started = time.perf_counter()
    tag = uuid.uuid4().hex[:8]
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        provider, _, service_ids = provider_with_catalogue("Load Provider")
        admin = users.create_user(None, db.session.get(Organisation, provider.id), email=f"load-{tag}@kassa.example",
                                  name="Load", password="x" * 12, role="cloud_admin")
        token, _ = users.create_api_token(admin, "load")
        plugin_settings.set_enabled(admin, "fakegateway", True)
        plugin_settings.save_settings(admin, "fakegateway", {"api_key": "good-key", "webhook_secret": WEBHOOK_SECRET})
        app.extensions["kassa_plugins"].forget_cache()
        orgs = max(captures, min(10_000, max(50, count // 100)))
        subscriptions(provider, service_ids, orgs, date(2024, 1, 1), per_org=1)
        subs = dict(db.session.execute(select(Subscription.org_id, Subscription.id)
                                       .where(Subscription.provider_id == provider.id)).all())
        org_ids = sorted(subs)
        first_invoice = (db.session.scalar(select(func.max(Invoice.id))) or 0) + 1
        first_txn = (db.session.scalar(select(func.max(LedgerTransaction.id))) or 0) + 1
        db.session.commit()

        raw = db.engine.raw_connection()
        cur = raw.cursor()
        ph = "%s" if postgres else "?"
        cur.execute(f"INSERT INTO ledger_accounts (provider_id, org_id, code, kind, currency) SELECT {ph}, id, "
                    f"'receivable', 'asset', 'INR' FROM organisations WHERE kind = 'customer' AND provider_id = {ph}",
                    (provider.id, provider.id))
        cur.execute(f"INSERT INTO ledger_accounts (provider_id, org_id, code, kind, currency) "
                    f"VALUES ({ph}, {ph}, 'revenue', 'income', 'INR')", (provider.id, provider.id))
        cur.execute(f"SELECT id FROM ledger_accounts WHERE provider_id = {ph} AND code = 'revenue'", (provider.id,))
        revenue = cur.fetchone()[0]
        cur.execute(f"SELECT org_id, id FROM ledger_accounts WHERE provider_id = {ph} AND code = 'receivable'",
                    (provider.id,))
        receivable = dict(cur.fetchall())
        start, now = date(2024, 1, 1), datetime(2026, 1, 1)
        snapshot = {"org_id": provider.id, "kind": "customer", "name": "x", "country": "IN"}
        total, subtotal, tax = 1_180_000_000, 1_000_000_000, 180_000_000  # 1180.00 INR in Amount units (10⁻⁶)

        def org_of(i):
            return org_ids[i % len(org_ids)]

        def issued(i):
            return start + timedelta(days=i * 730 // count)

        _bulk(cur, postgres, "invoices", (
            "id", "provider_id", "org_id", "subscription_id", "sequence", "number", "kind", "currency", "issue_date",
            "due_date", "subtotal", "tax_total", "total", "tax_engine", "tax_note", "tax_details", "notes",
            "seller_snapshot", "buyer_snapshot", "created_at", "cancel_reason"),
              ((first_invoice + i, provider.id, org_of(i), subs[org_of(i)], i + 1, f"L-{i + 1:07d}", "recurring", "INR",
                issued(i), issued(i) + timedelta(days=15), subtotal, tax, total, "tax_rules", "", {}, "", snapshot,
                snapshot, now, "") for i in range(count)))
        _bulk(cur, postgres, "ledger_transactions", (
            "id", "provider_id", "org_id", "kind", "currency", "amount", "direction", "reference", "description",
            "invoice_id", "occurred_at"),
              ((first_txn + i, provider.id, org_of(i), "invoice", "INR", total, "internal", f"L-{i + 1:07d}", "",
                first_invoice + i, now) for i in range(count)))
        _bulk(cur, postgres, "ledger_entries", ("transaction_id", "account_id", "amount"),
              (row for i in range(count) for row in ((first_txn + i, receivable[org_of(i)], total),
                                                     (first_txn + i, revenue, -total))))
        if postgres:
            for table in ("invoices", "ledger_transactions"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")
        cur.execute(f"DELETE FROM invoice_sequences WHERE provider_id = {ph}", (provider.id,))
        cur.execute(f"INSERT INTO invoice_sequences (provider_id, last_number) VALUES ({ph}, {ph})",
                    (provider.id, count))
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
        raw.close()

        # the capture targets: the newest invoice of the first `captures` customers, each with a card
        capture_orgs = org_ids[:captures]
        capture_ids = []
        for org_id in capture_orgs:
            org = db.session.get(Organisation, org_id)
            cards.add_card(admin, org, f"tok_visa_{4_000_000 + org_id}")
            capture_ids.append(db.session.scalar(select(Invoice.id).where(Invoice.org_id == org_id)
                                                 .order_by(Invoice.id.desc()).limit(1)))
        invoice_ids = list(range(first_invoice, first_invoice + count))
        result = Seeded(token=token, provider_id=provider.id, org_ids=org_ids, invoice_ids=invoice_ids,
                        capture_ids=capture_ids, service_ids=service_ids, tag=tag)
        db.session.remove()
    result.seconds = time.perf_counter() - started
    return result
