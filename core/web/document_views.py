"""Console: invoice documents (Export Invoice as PDF or CSV) and the provider's invoice template."""
from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField

from ..builtin import pdf_renderer
from ..extensions import db
from ..services import documents, invoice_queries
from ..services.errors import NotFound, ServiceError
from .forms import EmptyForm
from .guard import require

bp = Blueprint("documents", __name__, url_prefix="/billing")


def download(document, *, inline: bool = False) -> Response:
    disposition = "inline" if inline else "attachment"
    return Response(document.content, mimetype=document.media_type, headers={
        "Content-Disposition": f'{disposition}; filename="{document.filename}"',
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


@bp.app_template_global()
def invoice_renderers() -> dict:
    """Renderers enabled for the signed-in user's provider (the invoice page's export buttons)."""
    if not current_user or not current_user.is_authenticated:
        return {}
    return documents.renderers(current_user.org.provider_id)


@bp.get("/invoices/<int:invoice_id>/export")
@require("billing.view")
def export(invoice_id: int):
    invoice = invoice_queries.get(current_user, invoice_id)
    renderer = request.args.get("format", "pdf")
    if renderer not in documents.renderers(invoice.provider_id):
        raise NotFound(f"No document format {renderer!r}.")
    return download(documents.render(invoice, renderer))


# ------------------------------------------------------------ the provider's invoice template


class InvoiceTemplateForm(FlaskForm):
    template = FileField("HTML template")
    logo = FileField("Logo (PNG, JPEG or GIF, at most 1 MB)")
    remove_logo = BooleanField("Remove the current logo")


@bp.route("/invoice-template", methods=["GET", "POST"])
@require("billing.configure", kinds=("provider",))
def template_settings():
    form = InvoiceTemplateForm()
    status = 200
    if form.validate_on_submit():
        html = form.template.data.read() if form.template.data else None
        logo = form.logo.data.read() if form.logo.data else None
        try:
            documents.save_template(current_user, html=html, logo=logo, remove_logo=form.remove_logo.data)
            flash("Invoice template saved. New documents use it; documents already sent are unchanged.", "success")
            return redirect(url_for("documents.template_settings"))
        except ServiceError as exc:
            db.session.rollback()
            for name, message in exc.field_errors.items():
                field = getattr(form, name, form.template)
                field.errors = list(field.errors) + [message]
            flash(exc.message, "error")
            status = exc.status
    elif request.method == "POST":
        status = 422
    row = documents.template_row(current_user.org_id)
    return render_template("documents/template.html", form=form, row=row, reset_form=EmptyForm(),
                           keys_doc=pdf_renderer.__doc__), status


@bp.post("/invoice-template/reset")
@require("billing.configure", kinds=("provider",))
def template_reset():
    EmptyForm().validate_on_submit()
    documents.reset_template(current_user)
    flash("The built-in invoice template is back in use.", "success")
    return redirect(url_for("documents.template_settings"))


@bp.get("/invoice-template/default.html")
@require("billing.configure", kinds=("provider",))
def template_default():
    return Response(pdf_renderer.DEFAULT_TEMPLATE, mimetype="text/plain", headers={
        "Content-Disposition": 'attachment; filename="kassa-invoice-template.html"'})


@bp.get("/invoice-template/current.html")
@require("billing.configure", kinds=("provider",))
def template_current():
    source, _, _ = documents.provider_template(current_user.org_id)
    return Response(source or pdf_renderer.DEFAULT_TEMPLATE, mimetype="text/plain", headers={
        "Content-Disposition": 'attachment; filename="invoice-template.html"'})


@bp.get("/invoice-template/preview.pdf")
@require("billing.configure", kinds=("provider",))
def template_preview():
    return download(documents.preview(current_user.org_id), inline=True)


__all__ = ["bp"]
