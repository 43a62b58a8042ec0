"""Invoice documents: the PDF (WeasyPrint) and CSV renderers, the context plugins add,
the cache, the provider's own template, Export Invoice in the console and the API,
and Factur-X / EN 16931."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from kassa.contracts import RendererInfo
from kassa.hookspecs import hookimpl
from kassa.models import AuditEvent, InvoiceDocument
from kassa.services import documents, invoicing, payments, plugin_settings
from kassa.services.invoicing import DraftLine
from kassa.testing.billing import rule

D = Decimal
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
MONEY_RE = re.compile(r"₹[\d,]+\.\d{2}")


# ------------------------------------------------------------------ helpers


def gst(admin):
    rule(admin, name="CGST", rate="9")
    rule(admin, name="SGST", rate="9")


def issue(admin, buyer, count, *, untaxed=0, notes="", prefix="Line item"):
    """An invoice of ``count`` lines (the last ``untaxed`` not taxable), January 2026."""
    lines = []
    for i in range(count):
        quantity, price = D(1 + i % 3), D("1450.50") + i
        lines.append(DraftLine(description=f"{prefix} {i + 1}", quantity=quantity, unit_price=price,
                               amount=(quantity * price).quantize(D("0.01")), tax_code="998315",
                               taxable=i < count - untaxed,
                               period_start=date(2026, 1, 1), period_end=date(2026, 2, 1)))
    return invoicing.issue(provider=admin.org, buyer=buyer, lines=lines, issue_date=date(2026, 1, 5),
                           period_start=date(2026, 1, 1), period_end=date(2026, 2, 1), notes=notes)


def configure(admin, plugin, data):
    """Save a plugin's settings and keep it enabled (saving settings first creates its state row)."""
    plugin_settings.save_settings(admin, plugin, data)
    plugin_settings.set_enabled(admin, plugin, True)


def pages(content: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def inr(amount: Decimal) -> str:
    from kassa.money import format_money

    return format_money(amount, "INR", locale="en_IN")


def snapshot(content: bytes, name: str) -> Path | None:
    """Page 1 as a PNG in test-artifacts/ (git-ignored) for a person to look at."""
    if shutil.which("pdftoppm") is None:
        return None
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / f"{name}.pdf"
    pdf.write_bytes(content)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(ARTIFACTS / name)], check=True, timeout=60)
    return ARTIFACTS / f"{name}.png"


class RenderCounter:
    """Asked first for every document; counts and lets the real renderer answer."""

    def __init__(self):
        self.calls = []

    @hookimpl(tryfirst=True)
    def kassa_render_invoice(self, renderer, invoice, context, ctx):
        self.calls.append((renderer, invoice.number, invoice.status))
        return None


# ------------------------------------------------------------------ the PDF


def test_one_line_invoice_prints_everything_on_one_page(db, admin, customer):
    gst(admin)
    inv = issue(admin, customer, 1, notes="Thank you for your business.")
    content = documents.render(inv, "pdf").content
    assert content.startswith(b"%PDF")
    text = pages(content)
    assert len(text) == 1
    page = text[0]
    for expected in ("Cloud7 Test", "Customer Direct", "billing@customer.example", inv.number,
                     "5 Jan 2026", "20 Jan 2026", "1 Jan 2026 – 31 Jan 2026", "Line item 1", "998315",
                     "Tax breakup", "CGST", "SGST", "9%", "Unpaid", "Thank you for your business.", "Page 1 of 1"):
        assert expected in page, expected
    assert "1 Feb 2026" not in page  # the period's end is exclusive: the last day printed is 31 Jan
    assert inv.subtotal == D("1450.50") and inv.tax_total == D("261.10") and inv.total == D("1711.60")
    for amount in ("₹1,450.50", "₹130.55", "₹261.10", "₹1,711.60"):
        assert amount in page, amount
    fonts = {str(f.get_object()["/BaseFont"]) for f in
             PdfReader(io.BytesIO(content)).pages[0]["/Resources"]["/Font"].values()}
    assert any("DejaVu" in f for f in fonts), fonts  # the font that has ₹
    png = snapshot(content, "invoice-1-line")
    assert png is None or png.stat().st_size > 10_000


def test_indian_grouping_and_symbol(db, admin, customer):
    lines = [DraftLine(description="Dedicated cluster", quantity=D(1), unit_price=D("2006000.50"),
                       amount=D("2006000.50"))]
    inv = invoicing.issue(provider=admin.org, buyer=customer, lines=lines, issue_date=date(2026, 1, 5))
    page = pages(documents.render(inv, "pdf").content)[0]
    assert "₹20,06,000.50" in page and "No tax charged." in page


@pytest.mark.parametrize("count, min_pages", [(40, 2), (300, 8)])
def test_long_invoices_repeat_the_table_header_and_number_pages(db, admin, customer, count, min_pages):
    gst(admin)
    inv = issue(admin, customer, count)
    content = documents.render(inv, "pdf").content
    text = pages(content)
    total = len(text)
    assert total >= min_pages
    for number, page in enumerate(text, start=1):
        assert f"Page {number} of {total}" in page
        assert f"Invoice {inv.number}" in page  # running footer
    table_pages = [p for p in text if re.search(r"Line item \d+", p)]
    assert len(table_pages) >= min_pages - 1
    for page in table_pages:
        assert "DESCRIPTION" in page and "UNIT PRICE" in page and "SAC/CODE" in page
    everything = "\n".join(text)
    found = {int(n) for n in re.findall(r"Line item (\d+)\b", everything)}
    assert found == set(range(1, count + 1))
    assert inr(inv.total) in text[-1] and inr(inv.tax_total) in text[-1]
    if count == 40:
        snapshot(content, "invoice-40-lines")


def test_payment_status_is_printed(db, admin, customer):
    inv = issue(admin, customer, 2)
    assert "Unpaid" in pages(documents.render(inv, "pdf").content)[0]
    payments.adjust_offline(admin, inv, mark_as_paid=False, reference="NEFT-1", amount="1000")
    text = "\n".join(pages(documents.render(inv, "pdf").content))
    assert "Partially paid" in text and "₹1,000.00" in text and inr(inv.total - 1000) in text
    payments.adjust_offline(admin, inv, mark_as_paid=True, reference="NEFT-2")
    text = "\n".join(pages(documents.render(inv, "pdf").content))
    assert "Paid in full" in text and "Partially paid" not in text
    other = issue(admin, customer, 1)
    invoicing.cancel(admin, other, "duplicate")
    text = "\n".join(pages(documents.render(other, "pdf").content))
    assert "Cancelled" in text and "This invoice was cancelled" in text


def test_plugin_blocks_are_concatenated(db, admin, customer, register_plugin):
    class First:
        @hookimpl
        def kassa_invoice_context(self, invoice, ctx):
            return {"seller_lines": ["GSTIN 33AAAAA0000A1Z5"], "notes": ["First note"],
                    "sections": [{"title": "Bank details", "rows": [["IFSC", "HDFC0000001"]]}],
                    "first": {"flag": 1}}

    class Second:
        @hookimpl
        def kassa_invoice_context(self, invoice, ctx):
            return {"seller_lines": ["CIN U72900TN2020PTC000000"], "buyer_lines": ["PO 4711"],
                    "notes": "Second note", "sections": [{"title": "broken"}], "second": 2}

    register_plugin(First(), "ctx_first", enable_for=admin.org.id)
    register_plugin(Second(), "ctx_second", enable_for=admin.org.id)
    inv = issue(admin, customer, 1)
    context = documents.context_for(inv, invoicing.view(inv))
    assert sorted(context["seller_lines"]) == ["CIN U72900TN2020PTC000000", "GSTIN 33AAAAA0000A1Z5"]
    assert sorted(context["notes"]) == ["First note", "Second note"]
    assert context["buyer_lines"] == ["PO 4711"]
    assert context["sections"] == [{"title": "Bank details", "rows": [["IFSC", "HDFC0000001"]]}]
    assert context["first"] == {"flag": 1} and context["second"] == 2
    content = documents.render(inv, "pdf").content
    page = pages(content)[0]
    for expected in ("GSTIN 33AAAAA0000A1Z5", "CIN U72900TN2020PTC000000", "PO 4711", "First note",
                     "Second note", "Bank details", "HDFC0000001"):
        assert expected in page, expected
    snapshot(content, "invoice-plugin-blocks")


# ------------------------------------------------------------------ CSV = PDF


def test_csv_shows_the_numbers_of_the_pdf(db, admin, customer):
    gst(admin)
    inv = issue(admin, customer, 5, untaxed=1)
    pdf_text = "\n".join(pages(documents.render(inv, "pdf").content))
    pdf_amounts = {D(m[1:].replace(",", "")) for m in MONEY_RE.findall(pdf_text)}
    document = documents.render(inv, "csv")
    assert document.media_type.startswith("text/csv") and document.filename == f"{inv.number}.csv"
    rows = list(csv.DictReader(io.StringIO(document.content.decode())))
    lines = [r for r in rows if r["record"] == "line"]
    taxes = [r for r in rows if r["record"] == "tax"]
    totals = {r["description"]: D(r["amount"]) for r in rows if r["record"] == "total"}
    assert len(lines) == 5 and [r["name"] if "name" in r else r["description"] for r in taxes] == ["CGST", "SGST"]
    for r in lines:
        assert D(r["amount"]) in pdf_amounts and D(r["tax"]) in pdf_amounts and D(r["unit_price"]) in pdf_amounts
        assert r["period_end"] == "2026-01-31"
    for r in taxes:
        assert D(r["tax"]) in pdf_amounts
    assert totals == {"Subtotal": inv.subtotal, "Tax": inv.tax_total, "Total": inv.total,
                      "Amount paid": D(0), "Amount due": inv.total}
    assert set(totals.values()) - {D(0)} <= pdf_amounts
    assert sum(D(r["amount"]) for r in lines) == totals["Subtotal"]
    assert sum(D(r["tax"]) for r in lines) == sum(D(r["tax"]) for r in taxes) == totals["Tax"]
    assert lines[-1]["tax"] == "0.00"


def test_csv_neutralises_formulas(db, admin, make_org):
    evil = make_org("customer", parent=admin.org, name="Evil")
    lines = [DraftLine(description="=HYPERLINK(\"http://evil.example\")", quantity=D(1), unit_price=D(5),
                       amount=D("5.00"))]
    inv = invoicing.issue(provider=admin.org, buyer=evil, lines=lines, issue_date=date(2026, 1, 5))
    rows = list(csv.DictReader(io.StringIO(documents.render(inv, "csv").content.decode())))
    assert rows[0]["description"].startswith("'=")


# ------------------------------------------------------------------ the cache


def test_a_document_is_rendered_once_per_status_and_template(db, admin, customer, register_plugin, console):
    counter = RenderCounter()
    register_plugin(counter, "render_counter", enable_for=admin.org.id)
    inv = issue(admin, customer, 3)
    counter.calls.clear()  # the invoice e-mail attached the PDF already: that render is cached too
    db.session.execute(InvoiceDocument.__table__.delete())
    db.session.commit()

    first = console(admin).get(f"/billing/invoices/{inv.id}/export?format=pdf")
    second = console(admin).get(f"/billing/invoices/{inv.id}/export?format=pdf")
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert counter.calls == [("pdf", inv.number, "unpaid")]
    assert db.session.scalar(select(func.count(InvoiceDocument.id))) == 1

    payments.adjust_offline(admin, inv, mark_as_paid=False, reference="CHQ-1", amount="10")
    documents.render(inv, "pdf")
    documents.render(inv, "pdf")
    assert counter.calls[-1] == ("pdf", inv.number, "partially_paid") and len(counter.calls) == 2
    payments.adjust_offline(admin, inv, mark_as_paid=False, reference="CHQ-2", amount="10")
    documents.render(inv, "pdf")  # another partial payment prints another amount paid
    assert len(counter.calls) == 3

    documents.save_template(admin, html=b"<p>Own template {{ invoice.number }}</p>")
    assert "Own template" in pages(documents.render(inv, "pdf").content)[0]
    documents.render(inv, "pdf")
    assert len(counter.calls) == 4
    documents.render(inv, "csv")
    documents.render(inv, "csv")
    assert [c[0] for c in counter.calls].count("csv") == 1
    kept = db.session.execute(select(InvoiceDocument.renderer, InvoiceDocument.status)).all()
    assert sorted(kept) == [("csv", "partially_paid:20.00"), ("pdf", "partially_paid:20.00")]  # one per renderer


def test_template_version_changes_with_template_and_settings(db, admin):
    before = documents.template_version(admin.org.id, "pdf")
    documents.save_template(admin, html=b"<p>{{ invoice.number }}</p>")
    after_upload = documents.template_version(admin.org.id, "pdf")
    documents.reset_template(admin)
    after_reset = documents.template_version(admin.org.id, "pdf")
    assert len({before, after_upload, after_reset}) == 3
    assert after_reset.startswith("t2-")
    configure(admin, "builtin.pdf", {"facturx": "y", "facturx_profile": "basic"})
    assert documents.template_version(admin.org.id, "pdf") != after_reset


# ------------------------------------------------------------------ Export Invoice: console and API


def test_export_from_the_console(db, admin, customer, customer_admin, make_org, make_user, console):
    inv = issue(admin, customer, 2)
    page = console(admin).get(f"/billing/invoices/{inv.id}").get_data(as_text=True)
    assert "Export Invoice" in page and f"/billing/invoices/{inv.id}/export?format=pdf" in page
    assert f"/billing/invoices/{inv.id}/export?format=csv" in page
    response = console(admin).get(f"/billing/invoices/{inv.id}/export?format=pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert f'filename="{inv.number}.pdf"' in response.headers["Content-Disposition"]
    mine = console(customer_admin).get(f"/billing/invoices/{inv.id}/export?format=csv")
    assert mine.status_code == 200 and mine.mimetype == "text/csv" and inv.number in mine.get_data(as_text=True)
    assert "Export Invoice" in console(customer_admin).get(f"/billing/invoices/{inv.id}").get_data(as_text=True)

    other = make_org("customer", parent=admin.org, name="Other Ltd")
    other_admin = make_user(other, "customer_admin", actor=admin)
    assert console(other_admin).get(f"/billing/invoices/{inv.id}/export?format=pdf").status_code == 404
    assert console(admin).get(f"/billing/invoices/{inv.id}/export?format=docx").status_code == 404
    assert console(admin).get("/billing/invoices/999999/export").status_code == 404
    anonymous = console().get(f"/billing/invoices/{inv.id}/export")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_export_through_the_api(db, admin, customer, customer_admin, make_org, make_user, api):
    inv = issue(admin, customer, 2)
    response = api(admin).get(f"/api/v1/invoices/{inv.id}/document?format=pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    default = api(customer_admin).get(f"/api/v1/invoices/{inv.id}/document")
    assert default.status_code == 200 and default.data == response.data
    as_csv = api(customer_admin).get(f"/api/v1/invoices/{inv.id}/document?format=csv")
    assert as_csv.status_code == 200 and as_csv.get_data(as_text=True).startswith("record,invoice_number")
    bad = api(admin).get(f"/api/v1/invoices/{inv.id}/document?format=xml")
    assert bad.status_code == 422 and "pdf" in bad.get_json()["error"]["fields"]["format"]
    other = make_org("customer", parent=admin.org, name="Other Ltd")
    outsider = api(make_user(other, "customer_admin", actor=admin)).get(f"/api/v1/invoices/{inv.id}/document")
    assert outsider.status_code == 404 and outsider.is_json


def test_a_disabled_renderer_cannot_be_exported(db, admin, customer, console, api):
    inv = issue(admin, customer, 1)
    plugin_settings.set_enabled(admin, "builtin.csv", False)
    assert console(admin).get(f"/billing/invoices/{inv.id}/export?format=csv").status_code == 404
    assert api(admin).get(f"/api/v1/invoices/{inv.id}/document?format=csv").status_code == 422
    assert "format=csv" not in console(admin).get(f"/billing/invoices/{inv.id}").get_data(as_text=True)


def test_a_plugin_renderer_is_exported_too(db, admin, customer, register_plugin, console):
    class Text:
        @hookimpl
        def kassa_renderers(self):
            return [RendererInfo(id="txt", name="Plain text", media_type="text/plain", extension="txt")]

        @hookimpl
        def kassa_render_invoice(self, renderer, invoice, context, ctx):
            if renderer != "txt":
                return None
            from kassa.contracts import RenderedDocument

            return RenderedDocument(content=f"{invoice.number} {invoice.total}".encode(), media_type="text/plain",
                                    filename="x.txt")

    register_plugin(Text(), "txt_renderer", enable_for=admin.org.id)
    inv = issue(admin, customer, 1)
    response = console(admin).get(f"/billing/invoices/{inv.id}/export?format=txt")
    assert response.status_code == 200 and response.get_data(as_text=True).startswith(inv.number)
    assert "Plain text" in console(admin).get(f"/billing/invoices/{inv.id}").get_data(as_text=True)


# ------------------------------------------------------------------ the provider's template


def _upload(console_client, **files):
    data = {}
    for name, (content, filename) in files.items():
        data[name] = (io.BytesIO(content), filename)
    return console_client.post("/billing/invoice-template", data=data, content_type="multipart/form-data")


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (120, 40), (20, 90, 200)).save(out, format="PNG")
    return out.getvalue()


def test_upload_a_valid_template_and_a_logo_then_reset(db, admin, customer, console):
    inv = issue(admin, customer, 1)
    c = console(admin)
    assert "built-in template" in c.get("/billing/invoice-template").get_data(as_text=True)
    template = (b"<html><body><h1>OWN LAYOUT {{ invoice.number }}</h1>"
                b"{% if logo %}<img src=\"{{ logo }}\" style=\"width:30mm\">{% endif %}"
                b"{% for line in lines %}<p>{{ line.description }}: {{ line.amount }}</p>{% endfor %}"
                b"<p>Total {{ invoice.total }}</p></body></html>")
    response = _upload(c, template=(template, "mine.html"), logo=(_png(), "logo.png"))
    assert response.status_code == 302, response.get_data(as_text=True)
    page = pages(documents.render(inv, "pdf").content)[0]
    assert f"OWN LAYOUT {inv.number}" in page and "Line item 1: ₹1,450.50" in page
    reader = PdfReader(io.BytesIO(documents.render(inv, "pdf").content))
    assert any(x.get_object()["/Subtype"] == "/Image"
               for x in reader.pages[0]["/Resources"].get("/XObject", {}).values())
    assert db.session.scalar(select(AuditEvent).filter_by(action="invoice_template.update")) is not None
    snapshot(documents.render(inv, "pdf").content, "invoice-own-template")
    preview = c.get("/billing/invoice-template/preview.pdf")
    assert preview.status_code == 200 and "OWN LAYOUT" in pages(preview.data)[0]

    assert c.post("/billing/invoice-template/reset").status_code == 302
    page = pages(documents.render(inv, "pdf").content)[0]
    assert "OWN LAYOUT" not in page and "Tax breakup" in page
    reader = PdfReader(io.BytesIO(documents.render(inv, "pdf").content))
    assert reader.pages[0]["/Resources"].get("/XObject")  # the logo stays with the built-in template
    assert documents.template_row(admin.org.id).version == 2
    default = c.get("/billing/invoice-template/default.html")
    assert default.mimetype == "text/plain" and "seller_lines" in default.get_data(as_text=True)


@pytest.mark.parametrize("source, message", [
    (b"<p>{% for line in lines %}{{ line.description }}</p>", "Line 1"),
    (b"<p>{{ ''.__class__.__mro__[1].__subclasses__() }}</p>", "may not do"),
    (b"<p>{{ invoice.number.__class__.__base__.__subclasses__()[0] }}</p>", "may not do"),
    (b"<p>{{ lipsum.__globals__['os'].popen('id').read() }}</p>", "may not do"),
    (b"{% include '/etc/passwd' %}", "failed on a sample invoice"),
    (b"<p>{{ view.lines[99].description }}</p>", "failed on a sample invoice"),
])
def test_a_bad_template_is_refused_with_a_form_error(db, admin, customer, console, source, message):
    response = _upload(console(admin), template=(source, "bad.html"))
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and 'class="error"' in body
    assert documents.template_row(admin.org.id) is None
    inv = issue(admin, customer, 1)
    assert "Tax breakup" in pages(documents.render(inv, "pdf").content)[0]


def test_a_template_cannot_read_files_or_the_network(db, admin, customer, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    source = (f'<html><head><link rel="attachment" href="file://{secret}">'
              f'<link rel="stylesheet" href="file://{secret}"></head><body>'
              f'<img src="file://{secret}"><img src="http://127.0.0.1:1/x.png">'
              f'<object data="file://{secret}"></object>'
              f'<p>{{{{ invoice.number }}}}</p></body></html>').encode()
    documents.save_template(admin, html=source)
    inv = issue(admin, customer, 1)
    content = documents.render(inv, "pdf").content
    reader = PdfReader(io.BytesIO(content))
    assert not reader.attachments
    assert b"TOP-SECRET" not in content
    assert "TOP-SECRET" not in pages(content)[0] and inv.number in pages(content)[0]


def test_template_values_are_escaped(db, admin, make_org):
    org = make_org("customer", parent=admin.org, name="<b>Bold & Co</b>")
    documents.save_template(admin, html=b"<p>Buyer: {{ buyer.name }}</p>")
    lines = [DraftLine(description="<i>not italic</i>", quantity=D(1), unit_price=D(1), amount=D("1.00"))]
    inv = invoicing.issue(provider=admin.org, buyer=org, lines=lines, issue_date=date(2026, 1, 5))
    assert "Buyer: <b>Bold & Co</b>" in pages(documents.render(inv, "pdf").content)[0]


def test_bad_logo_and_permissions(db, admin, customer_admin, console, make_user):
    response = _upload(console(admin), logo=(b"GIF89 not really", "logo.gif"))
    assert response.status_code == 422 and "PNG, JPEG or GIF" in response.get_data(as_text=True)
    empty = console(admin).post("/billing/invoice-template", data={}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose an HTML template" in empty.get_data(as_text=True)
    no_csrf = console(admin).raw_post("/billing/invoice-template", data={"template": (io.BytesIO(b"x"), "t.html")},
                                      content_type="multipart/form-data")
    assert no_csrf.status_code in (400, 422) and documents.template_row(admin.org.id) is None
    assert console(customer_admin).get("/billing/invoice-template").status_code == 404
    viewer = make_user(admin.org, "cloud_admin", privileges=(), actor=admin)
    from kassa.permissions import can

    if not can(viewer, "billing.configure"):
        assert console(viewer).get("/billing/invoice-template").status_code == 403


# ------------------------------------------------------------------ Factur-X / EN 16931


@pytest.mark.parametrize("profile", ["en16931", "basic"])
def test_facturx_pdf_carries_valid_cii_xml(db, admin, make_org, profile):
    import facturx
    from lxml import etree

    gst(admin)
    buyer = make_org("customer", parent=admin.org, name="Acme Pvt Ltd", email="ap@acme.example", city="Chennai",
                     address_line1="1 Mount Road", postal_code="600002", tax_id="33ABCDE1234F1Z5")
    configure(admin, "builtin.pdf", {"facturx": "y", "facturx_profile": profile})
    inv = issue(admin, buyer, 4, untaxed=1, notes="PO 4711")
    content = documents.render(inv, "pdf").content
    filename, xml = facturx.get_facturx_xml_from_pdf(content, check_xsd=True)
    assert filename == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level=profile)
    tree = etree.fromstring(xml)
    ns = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
          "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}

    def one(path):
        found = tree.xpath(path, namespaces=ns)
        assert len(found) == 1, path
        return found[0].text

    sums = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert D(one(sums + "ram:TaxBasisTotalAmount")) == inv.subtotal
    assert D(one(sums + "ram:TaxTotalAmount")) == inv.tax_total
    assert D(one(sums + "ram:GrandTotalAmount")) == inv.total
    assert D(one(sums + "ram:DuePayableAmount")) == inv.total
    assert one("//ram:InvoiceCurrencyCode") == "INR" and one("//rsm:ExchangedDocument/ram:ID") == inv.number
    assert one("//ram:BuyerTradeParty/ram:Name") == "Acme Pvt Ltd"
    breakdown = {(t.findtext("ram:CategoryCode", namespaces=ns), D(t.findtext("ram:RateApplicablePercent",
                                                                                namespaces=ns))):
                 (D(t.findtext("ram:BasisAmount", namespaces=ns)), D(t.findtext("ram:CalculatedAmount", namespaces=ns)))
                 for t in tree.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=ns)}
    taxed = [l for l in inv.lines if l.taxable]
    assert breakdown[("S", D(18))] == (sum(l.amount for l in taxed), inv.tax_total)
    assert breakdown[("E", D(0))] == (inv.lines[-1].amount, D(0))
    assert len(tree.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=ns)) == 4
    period_end = tree.xpath("//ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod/ram:EndDateTime/*",
                            namespaces=ns)[0].text
    assert period_end == "20260131"
    xmp = PdfReader(io.BytesIO(content)).trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert re.search(r'pdfaid:part(>|=")3', xmp) and re.search(r'pdfaid:conformance(>|=")B', xmp)
    assert re.search(r'fx:ConformanceLevel(>|=")' + ("EN 16931" if profile == "en16931" else "BASIC"), xmp)
    assert "Page 1 of 1" in pages(content)[0]


def test_the_xsd_check_is_real(db, admin, customer):
    import facturx
    from lxml import etree

    from kassa.builtin.pdf_renderer import facturx_xml

    inv = issue(admin, customer, 1)
    xml = facturx_xml(invoicing.view(inv), "en16931")
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = etree.fromstring(xml)
    node = tree.xpath("//*[local-name()='InvoiceCurrencyCode']")[0]
    node.getparent().remove(node)
    with pytest.raises(Exception, match="not valid"):
        facturx.xml_check_xsd(etree.tostring(tree), flavor="factur-x", level="en16931")


def test_line_rates_from_split_taxes(db, admin, customer):
    from kassa.builtin.pdf_renderer import line_categories

    gst(admin)
    inv = issue(admin, customer, 3, untaxed=1)
    assert line_categories(invoicing.view(inv)) == [("S", D(18)), ("S", D(18)), ("E", D(0))]


def test_facturx_off_by_default(db, admin, customer):
    inv = issue(admin, customer, 1)
    content = documents.render(inv, "pdf").content
    assert not PdfReader(io.BytesIO(content)).attachments


def test_facturx_switch_in_the_plugin_settings_form(db, admin, customer, console):
    page = console(admin).get("/plugins/builtin.pdf/settings").get_data(as_text=True)
    assert "Embed Factur-X XML (PDF/A-3b)" in page and "EN 16931" in page and "BASIC" in page
    response = console(admin).post("/plugins/builtin.pdf/settings", data={"facturx": "y", "facturx_profile": "basic"})
    assert response.status_code == 302
    assert plugin_settings.settings_for(admin.org.id, "builtin.pdf") == {"facturx": True, "facturx_profile": "basic"}
    refused = console(admin).post("/plugins/builtin.pdf/settings", data={"facturx": "y", "facturx_profile": "xrechnung"})
    assert refused.status_code == 422
    plugin_settings.set_enabled(admin, "builtin.pdf", True)
    inv = issue(admin, customer, 1)
    assert PdfReader(io.BytesIO(documents.render(inv, "pdf").content)).attachments.keys() == {"factur-x.xml"}
