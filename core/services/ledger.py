"""The ledger: the only writer of ledger rows.

Every movement of money is one balanced transaction. Balances (wallet,
receivable, what an invoice has been paid) are sums over entries, never stored.
Rows are append-only: a mistake is corrected by :func:`reverse`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..clock import utcnow_naive
from ..extensions import db
from ..models import Account, LedgerEntry, LedgerTransaction
from ..models.ledger import ACCOUNT_CODES, LIABILITY, INCOME
from ..money import is_rounded
from .cache import peek, put
from .errors import Conflict, ServiceError
from .uow import after_commit


class UnbalancedTransaction(ServiceError):
    pass


def account_kind(code: str) -> str:
    base = code.split(":", 1)[0]
    if base not in ACCOUNT_CODES:
        raise ServiceError(f"Unknown ledger account code {code!r}.")
    return ACCOUNT_CODES[base][0]


@dataclass(frozen=True)
class AccountRef:
    """What posting needs of an account, without loading the row."""

    id: int
    provider_id: int
    currency: str


def account(provider_id: int, org_id: int, code: str, currency: str) -> AccountRef:
    """Get or create an account; safe against two writers creating it at once.
    Committed accounts are memoised for the request or job (accounts are never deleted)."""
    key = ("account", provider_id, org_id, code, currency)
    known = peek(key)
    if known is not None:
        return AccountRef(known, provider_id, currency)
    query = select(Account).filter_by(provider_id=provider_id, org_id=org_id, code=code, currency=currency)
    found = db.session.scalar(query)
    if found:
        put(key, found.id)
        return AccountRef(found.id, provider_id, currency)
    acct = Account(provider_id=provider_id, org_id=org_id, code=code, kind=account_kind(code), currency=currency)
    try:
        with db.session.begin_nested():
            db.session.add(acct)
    except IntegrityError:
        found = db.session.scalar(query)
        if found is None:
            raise
        return AccountRef(found.id, provider_id, currency)
    account_id = acct.id
    after_commit(lambda: put(key, account_id))
    return AccountRef(account_id, provider_id, currency)


def ensure_accounts(provider_id: int, org_ids, code: str, currency: str) -> dict[int, AccountRef]:
    """Get or create one account per organisation with two statements (billing runs):
    an INSERT that skips existing ones (ON CONFLICT DO NOTHING) and a SELECT."""
    wanted = set(org_ids)
    found = {o: peek(("account", provider_id, o, code, currency)) for o in wanted}
    missing = {o for o, known in found.items() if known is None}
    if missing:
        dialect = db.session.get_bind().dialect.name
        if dialect in ("postgresql", "sqlite"):
            module = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
            db.session.execute(module.insert(Account).on_conflict_do_nothing(), [
                dict(provider_id=provider_id, org_id=o, code=code, kind=account_kind(code), currency=currency)
                for o in sorted(missing)])
        else:  # pragma: no cover - other databases go one by one
            for o in missing:
                account(provider_id, o, code, currency)
        for org_id, account_id in db.session.execute(select(Account.org_id, Account.id).where(
                Account.provider_id == provider_id, Account.code == code, Account.currency == currency,
                Account.org_id.in_(missing))):
            found[org_id] = account_id
            after_commit(lambda key=("account", provider_id, org_id, code, currency), value=account_id:
                         put(key, value))
    return {o: AccountRef(found[o], provider_id, currency) for o in wanted}


def existing_account_id(provider_id: int, org_id: int, code: str, currency: str) -> int | None:
    """The account's id if it exists, without creating it."""
    key = ("account", provider_id, org_id, code, currency)
    known = peek(key)
    if known is None:
        known = db.session.scalar(select(Account.id).filter_by(provider_id=provider_id, org_id=org_id, code=code,
                                                               currency=currency))
        if known is not None:
            put(key, known)
    return known


def _check(entries, *, provider_id: int, currency: str, precision: int, amount: Decimal) -> list:
    entries = [(acct, value) for acct, value in entries if value != 0]
    if len(entries) < 2:
        raise UnbalancedTransaction("A ledger transaction needs at least two non-zero entries.")
    total = Decimal(0)
    for acct, value in entries:
        if not isinstance(value, Decimal):
            raise UnbalancedTransaction(f"Ledger amounts are Decimal, got {type(value).__name__}.")
        if not is_rounded(value, precision):
            raise UnbalancedTransaction(f"{value} is not rounded to {precision} places.")
        if acct.currency != currency or acct.provider_id != provider_id:
            raise UnbalancedTransaction("All entries of a transaction share its provider and currency.")
        total += value
    if total != 0:
        raise UnbalancedTransaction(f"Entries sum to {total}, not zero.")
    if amount < 0:
        raise UnbalancedTransaction("The headline amount of a transaction is never negative.")
    return entries


@dataclass(frozen=True)
class TransactionSpec:
    kind: str
    entries: tuple
    amount: Decimal
    direction: str
    org_id: int | None = None
    reference: str = ""
    description: str = ""
    invoice_id: int | None = None
    actor_id: int | None = None


def post_many(*, provider_id: int, currency: str, precision: int, specs: list[TransactionSpec]) -> list[int]:
    """Post many balanced transactions with two multi-row INSERTs (billing runs)."""
    if not specs:
        return []
    checked = [_check(s.entries, provider_id=provider_id, currency=currency, precision=precision, amount=s.amount)
               for s in specs]
    from .issuing import bulk_insert

    now = utcnow_naive()
    ids = bulk_insert(LedgerTransaction, [
        dict(provider_id=provider_id, org_id=s.org_id, kind=s.kind, currency=currency, amount=s.amount,
             direction=s.direction, reference=s.reference[:200], description=s.description[:500],
             invoice_id=s.invoice_id, actor_id=s.actor_id, occurred_at=now) for s in specs])
    bulk_insert(LedgerEntry, [dict(transaction_id=txn_id, account_id=acct.id, amount=value)
                              for txn_id, entries in zip(ids, checked) for acct, value in entries])
    return ids


def post(*, provider_id: int, kind: str, currency: str, precision: int,
         entries: Iterable[tuple[AccountRef | Account, Decimal]], direction: str, amount: Decimal,
         org_id: int | None = None, reference: str = "", description: str = "",
         idempotency_key: str | None = None, invoice_id: int | None = None, actor=None,
         reverses_id: int | None = None) -> LedgerTransaction:
    """Post one balanced transaction. With an ``idempotency_key`` already posted,
    the earlier transaction is returned and nothing is written."""
    if idempotency_key:
        existing = db.session.scalar(select(LedgerTransaction).filter_by(idempotency_key=idempotency_key))
        if existing is not None:
            return existing
    entries = _check(entries, provider_id=provider_id, currency=currency, precision=precision, amount=amount)
    txn = LedgerTransaction(
        provider_id=provider_id, org_id=org_id, kind=kind, currency=currency, amount=amount,
        direction=direction, reference=reference[:200], description=description[:500],
        idempotency_key=idempotency_key, invoice_id=invoice_id, actor_id=getattr(actor, "id", None),
        reverses_id=reverses_id, occurred_at=utcnow_naive(),
    )
    db.session.add(txn)
    for acct, value in entries:
        db.session.add(LedgerEntry(transaction=txn, account_id=acct.id, amount=value))
    db.session.flush()
    return txn


def reverse(txn: LedgerTransaction, *, precision: int, kind: str, actor=None, description: str = "") -> LedgerTransaction:
    """Post the mirror image of ``txn``. A transaction can be reversed once."""
    if db.session.scalar(select(LedgerTransaction.id).filter_by(reverses_id=txn.id)):
        raise Conflict("This transaction has already been reversed.")
    return post(
        provider_id=txn.provider_id, kind=kind, currency=txn.currency, precision=precision,
        entries=[(e.account, -e.amount) for e in txn.entries], direction="internal",
        amount=txn.amount, org_id=txn.org_id, reference=txn.reference,
        description=description or f"Reversal of transaction {txn.id}", invoice_id=txn.invoice_id,
        actor=actor, reverses_id=txn.id,
    )


def balance(account_id: int) -> Decimal:
    """Debit-positive balance of an account."""
    value = db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_id == account_id))
    return value if value is not None else Decimal(0)


def org_balance(org_id: int, code: str, currency: str) -> Decimal:
    """Balance of an organisation's account in its natural sign (credit-normal
    accounts such as the wallet come back positive when they hold money)."""
    value = db.session.scalar(
        select(func.sum(LedgerEntry.amount))
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.org_id == org_id, Account.code == code, Account.currency == currency)
    )
    value = value if value is not None else Decimal(0)
    return -value if account_kind(code) in (LIABILITY, INCOME) else value


def wallet_balance(org_id: int, currency: str) -> Decimal:
    return org_balance(org_id, "wallet", currency)


def has_wallet(provider_id: int, org_id: int, currency: str) -> bool:
    return existing_account_id(provider_id, org_id, "wallet", currency) is not None


def receivable_balance(org_id: int, currency: str) -> Decimal:
    return org_balance(org_id, "receivable", currency)


def unbalanced_transactions() -> list[int]:
    """Ids of transactions whose entries do not sum to zero (should always be empty)."""
    return list(db.session.scalars(
        select(LedgerEntry.transaction_id).group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
    ))


@event.listens_for(Session, "before_flush")
def _append_only(session, flush_context, instances):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, (LedgerEntry, LedgerTransaction)) and (obj in session.deleted or session.is_modified(obj)):
            raise ServiceError("Ledger rows are append-only: post a reversal instead of editing.")
