"""Invoice documents: the cache of rendered documents and a provider's own invoice template.

An issued invoice never changes, so a document is rendered once per invoice,
renderer, printed payment status and template version, and kept (see
services.documents).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class InvoiceDocument(db.Model):
    """A rendered document of an issued invoice (a PDF, a CSV, a plugin's format)."""

    __tablename__ = "invoice_documents"
    __table_args__ = (UniqueConstraint("invoice_id", "renderer", "status", "template_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    renderer: Mapped[str] = mapped_column(String(60))
    # the payment status printed on the document ("partially_paid:40.00" carries the amount paid)
    status: Mapped[str] = mapped_column(String(60))
    # what else decides the output: the template (built-in or the provider's), the renderer's settings
    template_version: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class DocumentTemplate(db.Model):
    """A provider's own invoice template (HTML, rendered in a sandbox) and logo.

    ``html`` empty means the built-in template. ``version`` goes up on every
    change, reset included, so cached documents of the old template are not reused.
    """

    __tablename__ = "document_templates"

    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    html: Mapped[str] = mapped_column(Text, default="")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_media_type: Mapped[str] = mapped_column(String(60), default="")
    version: Mapped[int] = mapped_column(default=0)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime]
