"""Double-entry ledger: append-only transactions whose entries sum to zero.

Sign convention: a positive amount is a debit, a negative one a credit. Asset
accounts (receivable, cash) carry debit balances; liability and income accounts
(wallet, tax payable, revenue) carry credit balances.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import Amount

ASSET, LIABILITY, INCOME, EXPENSE = "asset", "liability", "income", "expense"

#: account code -> (kind, label); per-organisation codes are marked
ACCOUNT_CODES = {
    "receivable": (ASSET, "Accounts receivable"),
    "wallet": (LIABILITY, "Wallet"),
    "revenue": (INCOME, "Revenue"),
    "tax_payable": (LIABILITY, "Tax payable"),
    "free_credit": (EXPENSE, "Free credit allocations"),
    "writeoff": (EXPENSE, "Write-offs"),
    "cash": (ASSET, "Cash"),  # "cash:<gateway>" per gateway; "cash:offline" for cheques and transfers
}


class Account(db.Model):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("provider_id", "org_id", "code", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))


class LedgerTransaction(db.Model):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        Index("ix_ledger_transactions_provider_at", "provider_id", "occurred_at"),
        Index("ix_ledger_transactions_org_at", "org_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Amount)  # the headline amount, always >= 0
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound | internal
    reference: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)
    invoice_id: Mapped[int | None] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    occurred_at: Mapped[datetime]

    entries: Mapped[list["LedgerEntry"]] = relationship(back_populates="transaction")


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")
    account: Mapped[Account] = relationship()
