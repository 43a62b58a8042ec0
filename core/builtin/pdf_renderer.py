"""PDF invoices (WeasyPrint, A4), optionally Factur-X / EN 16931 (PDF/A-3b with the CII XML).

The document is an HTML template rendered in a Jinja sandbox with autoescaping:
the built-in ``web/templates/documents/invoice.html`` or the provider's own
(Billing » Invoice template), which may use the same values. Images and
stylesheets can only come from the provider's logo (``kassa:logo``) or
``data:`` URLs; a template cannot read files or reach the network.

What a template sees (the built-in template's header lists the same):

``invoice``       number, title, kind, currency, issue_date, due_date, period, status,
                  status_label, cancelled, subtotal, tax_total, total, amount_paid,
                  amount_due (money formatted in the invoice currency), notes, tax_note
``seller``, ``buyer``  name, address (list of str), tax_id, email, country, country_name
``lines``         position, description, period ("" when it is the invoice's), quantity, unit_price,
                  amount, tax, tax_code
``tax_breakup``   name, rate ("9%"), amount
``logo``          image URL of the provider's logo, or ""
``locale``, ``view`` (the raw InvoiceView), ``context`` (every plugin block as merged)

Keys plugins add through ``kassa_invoice_context`` (concatenated across plugins,
see services.documents):

``seller_lines``  list of str under the seller's address
``buyer_lines``   list of str under the buyer's address
``notes``         list of str after the totals
``sections``      list of ``{"title": str, "rows": [[label, value], ...]}`` after the notes

Settings: "Embed Factur-X XML (PDF/A-3b)" with the profile EN 16931 or BASIC.
"""
from __future__ import annotations

import hashlib
import threading
from decimal import Decimal
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import pycountry
from babel.dates import format_date
from jinja2 import TemplateSyntaxError, pass_context
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from wtforms import BooleanField, Form, SelectField

from ..contracts import RendererInfo
from ..hookspecs import hookimpl
from ..money import format_money, plain

PLUGIN = "builtin.pdf"
RENDERER = RendererInfo(id="pdf", name="PDF", media_type="application/pdf", extension="pdf")
TEMPLATE_FILE = Path(__file__).resolve().parent.parent / "web" / "templates" / "documents" / "invoice.html"
DEFAULT_TEMPLATE = TEMPLATE_FILE.read_text(encoding="utf-8")
#: part of the cache key of every PDF: changes when the built-in template or this renderer changes
DOCUMENT_VERSION = "1-" + hashlib.sha256(DEFAULT_TEMPLATE.encode() + Path(__file__).read_bytes()).hexdigest()[:16]
LOGO_URL = "kassa:logo"
PROFILES = (("en16931", "EN 16931"), ("basic", "BASIC"))


class PdfSettingsForm(Form):
    facturx = BooleanField("Embed Factur-X XML (PDF/A-3b)",
                           description="Invoices become PDF/A-3b files carrying the EN 16931 Cross-Industry-Invoice "
                                       "XML, readable by accounting software.")
    facturx_profile = SelectField("Factur-X profile", choices=list(PROFILES), default="en16931")


# ------------------------------------------------------------------ hooks


@hookimpl(trylast=True)
def kassa_renderers():
    return [RENDERER]


@hookimpl(trylast=True)
def kassa_settings_form():
    return PdfSettingsForm


@hookimpl(trylast=True)
def kassa_render_invoice(renderer, invoice, context, ctx):
    if renderer != RENDERER.id:
        return None
    from ..contracts import RenderedDocument
    from ..services.documents import safe_filename

    return RenderedDocument(content=render_pdf(invoice, context, ctx), media_type=RENDERER.media_type,
                            filename=safe_filename(invoice.number, RENDERER.extension))


# ------------------------------------------------------------------ rendering


def render_pdf(invoice, context, ctx, template: tuple | None = None) -> bytes:
    """``template``: (HTML or None for the built-in one, logo bytes or None, logo media type);
    by default the provider's current template."""
    from ..services import documents

    if template is None:
        template = documents.provider_template(ctx.provider_id)
    source, logo, logo_type = template
    settings = ctx.plugin_settings(PLUGIN)
    facturx_on = bool(settings.get("facturx"))
    locale = documents.document_locale(invoice)
    html = render_html(source or None, invoice, context, locale, logo=bool(logo))
    pdf = html_to_pdf(html, {LOGO_URL: (logo, logo_type)} if logo else {},
                      pdf_variant="pdf/a-3b" if facturx_on else None)
    if facturx_on:
        profile = settings.get("facturx_profile") or "en16931"
        pdf = embed_facturx(pdf, invoice, profile, lang=locale.replace("_", "-"))
    return pdf


def render_html(source: str | None, invoice, context, locale: str, logo: bool = False) -> str:
    return compiled(source or DEFAULT_TEMPLATE).render(template_model(invoice, context, locale, logo))


_local = threading.local()


def _font_config():
    from weasyprint.text.fonts import FontConfiguration

    if getattr(_local, "fonts", None) is None:
        _local.fonts = FontConfiguration()
    return _local.fonts


def html_to_pdf(html: str, resources: dict, pdf_variant: str | None = None) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=safe_fetcher(resources)).write_pdf(
        font_config=_font_config(), pdf_variant=pdf_variant)


def safe_fetcher(resources: dict):
    """A URL fetcher that serves ``resources`` ({url: (bytes, media type)}) and ``data:``
    URLs and refuses everything else: no files, no network."""
    from weasyprint import urls

    if hasattr(urls, "URLFetcher"):  # WeasyPrint >= 68
        class Fetcher(urls.URLFetcher):
            def __init__(self):
                super().__init__(allowed_protocols=("data",), allow_redirects=False)

            def fetch(self, url, headers=None):
                if url in resources:
                    body, media_type = resources[url]
                    return urls.URLFetcherResponse(url, body, {"Content-Type": media_type})
                if url.startswith("data:"):
                    return super().fetch(url, headers)
                raise ValueError(f"Invoice templates cannot load {url[:80]!r}")

        return Fetcher()

    def fetch(url, timeout=10, ssl_context=None):  # WeasyPrint 62-67: a function returning a dict
        if url in resources:
            body, media_type = resources[url]
            return {"string": body, "mime_type": media_type}
        if url.startswith("data:"):
            return urls.default_url_fetcher(url)
        raise ValueError(f"Invoice templates cannot load {url[:80]!r}")

    return fetch


# ------------------------------------------------------------------ the sandboxed template


@pass_context
def _money_filter(context, amount, places=None):
    if amount is None or amount == "":
        return ""
    return format_money(Decimal(amount), context["invoice"]["currency"], locale=context["locale"],
                        places=places if places is not None else context["_places"])


@pass_context
def _date_filter(context, value):
    return format_date(value, "medium", locale=context["locale"]) if value else ""


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=True)
    env.filters["money"] = _money_filter
    env.filters["date"] = _date_filter
    env.filters["plain"] = plain
    return env


@lru_cache(maxsize=32)
def compiled(source: str):
    return environment().from_string(source)


def template_model(invoice, context, locale: str, logo: bool = False) -> dict:
    from ..services import documents
    from ..services.invoicing import STATUS_LABELS

    places = documents.amount_places(invoice)

    def money(amount, p=places):
        return format_money(amount, invoice.currency, locale=locale, places=p)

    def day(value):
        return format_date(value, "medium", locale=locale) if value else ""

    def period(start, end):
        return f"{day(start)} – {day(documents.last_day(end))}" if start and end else ""

    def party(p, extra):
        country = pycountry.countries.get(alpha_2=p.country)
        country_name = country.name if country else p.country
        address = [line for line in (p.address_line1, p.address_line2,
                                     " ".join(x for x in (p.city, p.postal_code) if x),
                                     ", ".join(x for x in (p.state, country_name) if x)) if line]
        return {"name": p.name, "address": address, "tax_id": p.tax_id, "email": p.email, "country": p.country,
                "country_name": country_name, "lines": list(extra)}

    status = "cancelled" if invoice.cancelled else invoice.status
    return {
        "invoice": {
            "number": invoice.number, "title": "Invoice", "kind": invoice.kind, "currency": invoice.currency,
            "issue_date": day(invoice.issue_date), "due_date": day(invoice.due_date),
            "period": period(invoice.period_start, invoice.period_end),
            "status": status, "status_label": STATUS_LABELS.get(status, status.replace("_", " ").capitalize()),
            "cancelled": invoice.cancelled,
            "subtotal": money(invoice.subtotal), "tax_total": money(invoice.tax_total), "total": money(invoice.total),
            "amount_paid": money(invoice.amount_paid), "amount_due": money(documents.amount_due(invoice)),
            "notes": invoice.notes, "tax_note": invoice.tax_note,
        },
        "seller": party(invoice.seller, context.get("seller_lines", ())),
        "buyer": party(invoice.buyer, context.get("buyer_lines", ())),
        "lines": [{"position": i, "description": line.description,
                   "period": "" if (line.period_start, line.period_end) == (invoice.period_start, invoice.period_end)
                   else period(line.period_start, line.period_end),
                   "quantity": plain(line.quantity, 0),
                   "unit_price": money(line.unit_price, documents.price_places(line.unit_price, places)),
                   "amount": money(line.amount), "tax": money(line.tax), "tax_code": line.tax_code}
                  for i, line in enumerate(invoice.lines, start=1)],
        "tax_breakup": [{"name": c.name, "rate": f"{plain(c.rate, 0)}%", "amount": money(c.amount)}
                        for c in invoice.tax_breakup],
        "logo": LOGO_URL if logo else "",
        "seller_lines": list(context.get("seller_lines", ())),
        "buyer_lines": list(context.get("buyer_lines", ())),
        "notes": list(context.get("notes", ())),
        "sections": list(context.get("sections", ())),
        "context": context,
        "view": invoice,
        "locale": locale,
        "_places": places,
    }


def check_template(source: str | None, invoice, logo: bytes | None, logo_type: str, *,
                   provider_id: int) -> str | None:
    """Why ``source`` cannot be used as an invoice template, or None when it compiles
    and renders ``invoice`` (a sample) to a PDF."""
    from ..services import documents

    if source is not None:
        try:
            environment().parse(source)
        except TemplateSyntaxError as exc:
            return f"Line {exc.lineno}: {exc.message}"
    try:
        context = documents.merged_context(provider_id, invoice)
        locale = documents.document_locale(invoice)
        html = render_html(source, invoice, context, locale, logo=bool(logo))
    except SecurityError as exc:
        return f"The template tried something templates may not do: {exc}"
    except Exception as exc:  # any error of the provider's template, shown on the form
        return f"The template failed on a sample invoice: {type(exc).__name__}: {exc}"
    try:
        html_to_pdf(html, {LOGO_URL: (logo, logo_type)} if logo else {})
    except Exception as exc:
        return f"The template's HTML could not be laid out as a PDF: {type(exc).__name__}: {exc}"
    return None


# ------------------------------------------------------------------ Factur-X / EN 16931 (CII)


NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
GUIDELINES = {
    "en16931": "urn:cen.eu:en16931:2017",
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
}
STANDARD, EXEMPT, EXPORT = "S", "E", "G"  # UNTDID 5305 VAT category codes


def embed_facturx(pdf: bytes, invoice, profile: str, lang: str = "en") -> bytes:
    import facturx

    xml = facturx_xml(invoice, profile)
    return facturx.generate_from_binary(
        pdf, xml, flavor="factur-x", level=profile, check_xsd=True, lang=lang,
        pdf_metadata={"author": invoice.seller.name, "keywords": "Invoice, Factur-X",
                      "title": f"{invoice.seller.name}: Invoice {invoice.number}",
                      "subject": f"Invoice {invoice.number} dated {invoice.issue_date.isoformat()} "
                                 f"issued by {invoice.seller.name}"})


def line_categories(invoice) -> list[tuple[str, Decimal]]:
    """(VAT category, rate) of each line. Lines carry their tax, not its components;
    a taxed line's rate is the sum of the breakup's rates closest to its tax
    (CGST 9 % + SGST 9 % -> 18 %); an untaxed line is exempt, or an export when
    the buyer is abroad and the tax engine left a note (an export under LUT)."""
    rates = [c.rate for c in invoice.tax_breakup]
    candidates = sorted({sum(combo, Decimal(0)) for n in range(1, len(rates) + 1)
                         for combo in combinations(rates, n)} - {Decimal(0)})
    abroad = invoice.buyer.country != invoice.seller.country
    result = []
    for line in invoice.lines:
        if line.tax == 0 or not candidates:
            result.append((EXPORT if abroad and invoice.tax_note else EXEMPT, Decimal(0)))
            continue
        best = min(candidates, key=lambda r: (abs(line.amount * r / 100 - line.tax), r))
        result.append((STANDARD, best))
    return result


def facturx_xml(invoice, profile: str = "en16931") -> bytes:
    """The invoice as a Cross-Industry-Invoice XML of the Factur-X ``profile`` (en16931 or basic)."""
    from lxml import etree

    from ..services.documents import amount_due, amount_places, last_day

    if profile not in GUIDELINES:
        raise ValueError(f"Unknown Factur-X profile {profile!r}")
    places = amount_places(invoice)

    def el(parent, tag, text=None, **attrs):
        prefix, name = tag.split(":")
        node = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs) if parent is not None else \
            etree.Element(f"{{{NS[prefix]}}}{name}", attrs, nsmap=NS)
        if text is not None:
            node.text = text
        return node

    def amount(value):
        return plain(value, places)

    def when(parent, tag, day):
        el(el(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")

    def trade_party(parent, tag, p):
        node = el(parent, tag)
        el(node, "ram:Name", p.name)
        address = el(node, "ram:PostalTradeAddress")
        if p.postal_code:
            el(address, "ram:PostcodeCode", p.postal_code)
        if p.address_line1:
            el(address, "ram:LineOne", p.address_line1)
        if p.address_line2:
            el(address, "ram:LineTwo", p.address_line2)
        if p.city:
            el(address, "ram:CityName", p.city)
        el(address, "ram:CountryID", p.country)
        if p.state:
            el(address, "ram:CountrySubDivisionName", p.state)
        if p.email:
            el(el(node, "ram:URIUniversalCommunication"), "ram:URIID", p.email, schemeID="EM")
        if p.tax_id:
            el(el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", p.tax_id, schemeID="VA")

    root = el(None, "rsm:CrossIndustryInvoice")
    el(el(el(root, "rsm:ExchangedDocumentContext"), "ram:GuidelineSpecifiedDocumentContextParameter"),
       "ram:ID", GUIDELINES[profile])
    document = el(root, "rsm:ExchangedDocument")
    el(document, "ram:ID", invoice.number)
    el(document, "ram:TypeCode", "380")
    when(document, "ram:IssueDateTime", invoice.issue_date)
    for note in (invoice.notes, invoice.tax_note, "Cancelled" if invoice.cancelled else ""):
        if note:
            el(el(document, "ram:IncludedNote"), "ram:Content", note)

    transaction = el(root, "rsm:SupplyChainTradeTransaction")
    categories = line_categories(invoice)
    for position, (line, (category, rate)) in enumerate(zip(invoice.lines, categories), start=1):
        item = el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        el(el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(position))
        product = el(item, "ram:SpecifiedTradeProduct")
        el(product, "ram:Name", line.description)
        if profile == "en16931" and line.tax_code:
            el(el(product, "ram:DesignatedProductClassification"), "ram:ClassCode", line.tax_code, listID="ZZZ")
        el(el(el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice"),
           "ram:ChargeAmount", plain(line.unit_price, places))
        el(el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", plain(line.quantity, 0),
           unitCode="C62")
        settlement = el(item, "ram:SpecifiedLineTradeSettlement")
        tax = el(settlement, "ram:ApplicableTradeTax")
        el(tax, "ram:TypeCode", "VAT")
        el(tax, "ram:CategoryCode", category)
        el(tax, "ram:RateApplicablePercent", plain(rate, 0))
        if line.period_start and line.period_end:
            period = el(settlement, "ram:BillingSpecifiedPeriod")
            when(period, "ram:StartDateTime", line.period_start)
            when(period, "ram:EndDateTime", last_day(line.period_end))
        el(el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount",
           amount(line.amount))

    agreement = el(transaction, "ram:ApplicableHeaderTradeAgreement")
    trade_party(agreement, "ram:SellerTradeParty", invoice.seller)
    trade_party(agreement, "ram:BuyerTradeParty", invoice.buyer)
    el(transaction, "ram:ApplicableHeaderTradeDelivery")
    settlement = el(transaction, "ram:ApplicableHeaderTradeSettlement")
    el(settlement, "ram:PaymentReference", invoice.number)
    el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    groups: dict[tuple[str, Decimal], list[Decimal]] = {}
    for line, key in zip(invoice.lines, categories):
        basis_tax = groups.setdefault(key, [Decimal(0), Decimal(0)])
        basis_tax[0] += line.amount
        basis_tax[1] += line.tax
    for (category, rate), (basis, tax_amount) in groups.items():
        tax = el(settlement, "ram:ApplicableTradeTax")
        el(tax, "ram:CalculatedAmount", amount(tax_amount))
        el(tax, "ram:TypeCode", "VAT")
        if category != STANDARD:
            el(tax, "ram:ExemptionReason", invoice.tax_note or "Not subject to tax")
        el(tax, "ram:BasisAmount", amount(basis))
        el(tax, "ram:CategoryCode", category)
        el(tax, "ram:RateApplicablePercent", plain(rate, 0))
    if invoice.period_start and invoice.period_end:
        period = el(settlement, "ram:BillingSpecifiedPeriod")
        when(period, "ram:StartDateTime", invoice.period_start)
        when(period, "ram:EndDateTime", last_day(invoice.period_end))
    when(el(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime", invoice.due_date)
    sums = el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    el(sums, "ram:LineTotalAmount", amount(sum((l.amount for l in invoice.lines), Decimal(0))))
    el(sums, "ram:TaxBasisTotalAmount", amount(invoice.subtotal))
    el(sums, "ram:TaxTotalAmount", amount(invoice.tax_total), currencyID=invoice.currency)
    el(sums, "ram:GrandTotalAmount", amount(invoice.total))
    paid = invoice.total - amount_due(invoice) if not invoice.cancelled else Decimal(0)
    el(sums, "ram:TotalPrepaidAmount", amount(paid))
    el(sums, "ram:DuePayableAmount", amount(invoice.total - paid))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
