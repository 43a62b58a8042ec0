from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db

PROVIDER, RESELLER, CUSTOMER = "provider", "reseller", "customer"
ORG_KINDS = (PROVIDER, RESELLER, CUSTOMER)


class Organisation(db.Model):
    """A provider, a reseller under it, or a customer of either.

    ``provider_id`` is the root of the tenant (a provider's own id for itself), so
    every tenant-scoped query filters on one indexed column.
    """

    __tablename__ = "organisations"
    __table_args__ = (
        Index("ix_organisations_provider_kind", "provider_id", "kind"),
        Index("ix_organisations_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    address_line1: Mapped[str] = mapped_column(String(200), default="")
    address_line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2))
    tax_id: Mapped[str] = mapped_column(String(40), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]

    parent: Mapped["Organisation | None"] = relationship(
        remote_side="Organisation.id", foreign_keys=[parent_id]
    )

    @property
    def is_provider(self) -> bool:
        return self.kind == PROVIDER

    @property
    def is_reseller(self) -> bool:
        return self.kind == RESELLER

    @property
    def is_customer(self) -> bool:
        return self.kind == CUSTOMER

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name!r}>"
