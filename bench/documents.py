"""Invoice documents: PDF render time of a one-page invoice (median of 25 renders,
one process) and of a batch of 1,000 invoices rendered and cached one after the
other (as the e-mail job does after a billing run).

Baselines from the same run: WeasyPrint rendering a bare one-line HTML page (the
fixed cost of the library on this machine) for the single render, and 1,000 ×
that median for the batch (so the ratio shows what the database and the cache add).
Goal: ≤ 150 ms per one-page invoice.
"""
from __future__ import annotations

import os
from datetime import date
from decimal import Decimal

from .common import Timer, make_app, median, sqlite_url

SINGLE_RUNS = 25
WARM_UP = 3
BATCH = 1_000
LINES = 5
GOAL_MS = 150


def _setup(count: int):
    """A provider with GST 18 %, customers without a contact (so no e-mail job renders
    in the background), and ``count`` issued invoices of ``LINES`` lines each."""
    from kassa.extensions import db
    from kassa.models import Organisation
    from kassa.services import invoicing, orgs
    from kassa.services.invoicing import DraftLine

    from .seed import Actor, provider_with_catalogue

    provider, actor, _ = provider_with_catalogue("Bench Documents")
    customers = [orgs.create_org(actor, kind="customer", parent=provider, name=f"Bench Customer {i}", country="IN",
                                 state="Karnataka", city="Bengaluru", address_line1=f"{i} MG Road",
                                 postal_code="560001") for i in range(10)]
    provider = db.session.get(Organisation, provider.id)
    invoices = []
    for i in range(count):
        lines = [DraftLine(description=f"Virtual machine {j + 1}, 4 vCPU / 16 GB", quantity=Decimal(j + 1),
                           unit_price=Decimal("1450.50"), amount=Decimal("1450.50") * (j + 1), tax_code="998315",
                           period_start=date(2026, 1, 1), period_end=date(2026, 2, 1)) for j in range(LINES)]
        invoices.append(invoicing.issue(provider=provider, buyer=customers[i % len(customers)], lines=lines,
                                        issue_date=date(2026, 2, 1), period_start=date(2026, 1, 1),
                                        period_end=date(2026, 2, 1)).id)
    return provider.id, invoices, Actor


def _baseline_ms() -> float:
    from kassa.builtin.pdf_renderer import html_to_pdf

    html = "<html><body><p>Invoice ₹1,00,000.00</p></body></html>"
    for _ in range(WARM_UP):
        html_to_pdf(html, {})
    times = []
    for _ in range(SINGLE_RUNS):
        with Timer() as t:
            html_to_pdf(html, {})
        times.append(t.seconds * 1000)
    return median(times)


def run(report, batch: int | None = None) -> dict:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    batch = batch if batch is not None else max(1, int(BATCH * scale))
    app = make_app(sqlite_url())
    from kassa.extensions import db
    from kassa.models import Invoice
    from kassa.services import documents, invoicing

    with app.app_context():
        provider_id, invoice_ids, _ = _setup(batch + 1)
        single = db.session.get(Invoice, invoice_ids[0])
        view = invoicing.view(single)
        pages = None
        for _ in range(WARM_UP):
            content = documents.render_view(provider_id, view, "pdf").content
        from io import BytesIO

        from pypdf import PdfReader

        pages = len(PdfReader(BytesIO(content)).pages)
        times = []
        for _ in range(SINGLE_RUNS):
            with Timer() as t:
                documents.render_view(provider_id, view, "pdf")
            times.append(t.seconds * 1000)
        one = median(times)
        base = _baseline_ms()
        report.add(f"PDF of a one-page invoice ({LINES} lines, {pages} page), median of {SINGLE_RUNS}",
                   f"{one:.0f} ms (goal ≤ {GOAL_MS} ms: {'met' if one <= GOAL_MS else 'NOT met'})",
                   f"{base:.0f} ms bare WeasyPrint page", f"{one / base:.1f}×")

        with Timer() as cached:
            documents.render(single, "pdf")  # renders and stores
        with Timer() as hit:
            documents.render(single, "pdf")
        report.add("Export of an already rendered invoice (cache hit)", f"{hit.seconds * 1000:.1f} ms",
                   f"{cached.seconds * 1000:.0f} ms first export", f"{hit.seconds / cached.seconds:.2f}×")

        db.session.expire_all()
        with Timer() as total:
            for invoice_id in invoice_ids[1:]:
                documents.render(db.session.get(Invoice, invoice_id), "pdf")
                db.session.expunge_all()
        per = total.seconds * 1000 / batch
        report.add(f"Batch of {batch:,} invoice PDFs rendered and cached, one process",
                   f"{total.seconds:.1f} s ({per:.0f} ms each)", f"{one * batch / 1000:.1f} s = {batch:,} × median",
                   f"{total.seconds / (one * batch / 1000):.2f}×")
    return {"one_ms": one, "baseline_ms": base, "batch_s": total.seconds, "batch": batch}


if __name__ == "__main__":
    from .common import Report

    r = Report()
    run(r)
    print("\n" + r.table())
