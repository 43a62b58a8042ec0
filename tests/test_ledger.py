from decimal import Decimal

import pytest
from sqlalchemy import select

from kassa.models import LedgerEntry, LedgerTransaction
from kassa.services import ledger
from kassa.services.errors import Conflict, ServiceError
from kassa.services.ledger import UnbalancedTransaction


def _top_up(provider, customer, amount, key=None):
    cash = ledger.account(provider.id, provider.id, "cash:offline", "INR")
    wallet = ledger.account(provider.id, customer.id, "wallet", "INR")
    return ledger.post(provider_id=provider.id, kind="wallet_topup", currency="INR", precision=2,
                       entries=[(cash, amount), (wallet, -amount)], direction="inbound", amount=amount,
                       org_id=customer.id, idempotency_key=key)


def test_balanced_transaction_and_derived_wallet(db, provider, customer):
    _top_up(provider, customer, Decimal("100.25"))
    _top_up(provider, customer, Decimal("0.75"))
    db.session.commit()
    assert ledger.wallet_balance(customer.id, "INR") == Decimal("101.00")
    assert ledger.balance(ledger.account(provider.id, provider.id, "cash:offline", "INR").id) == Decimal("101.00")
    assert ledger.unbalanced_transactions() == []


def test_unbalanced_refused_and_nothing_written(db, provider, customer):
    cash = ledger.account(provider.id, provider.id, "cash:offline", "INR")
    wallet = ledger.account(provider.id, customer.id, "wallet", "INR")
    db.session.commit()
    with pytest.raises(UnbalancedTransaction, match="sum to"):
        ledger.post(provider_id=provider.id, kind="x", currency="INR", precision=2,
                    entries=[(cash, Decimal("10")), (wallet, Decimal("-9.99"))], direction="inbound",
                    amount=Decimal("10"))
    db.session.rollback()
    assert db.session.scalar(select(LedgerTransaction.id)) is None


@pytest.mark.parametrize("bad", [10.0, Decimal("10.001")])
def test_float_and_unrounded_amounts_refused(db, provider, customer, bad):
    cash = ledger.account(provider.id, provider.id, "cash:offline", "INR")
    wallet = ledger.account(provider.id, customer.id, "wallet", "INR")
    with pytest.raises(UnbalancedTransaction):
        ledger.post(provider_id=provider.id, kind="x", currency="INR", precision=2,
                    entries=[(cash, bad), (wallet, -bad)], direction="inbound", amount=Decimal("10"))
    db.session.rollback()


def test_currency_mismatch_refused(db, provider, customer):
    cash = ledger.account(provider.id, provider.id, "cash:offline", "USD")
    wallet = ledger.account(provider.id, customer.id, "wallet", "INR")
    with pytest.raises(UnbalancedTransaction, match="currency"):
        ledger.post(provider_id=provider.id, kind="x", currency="INR", precision=2,
                    entries=[(cash, Decimal("1")), (wallet, Decimal("-1"))], direction="inbound",
                    amount=Decimal("1"))
    db.session.rollback()


def test_idempotency_key_posts_once(db, provider, customer):
    first = _top_up(provider, customer, Decimal("5"), key="topup-1")
    second = _top_up(provider, customer, Decimal("5"), key="topup-1")
    db.session.commit()
    assert first.id == second.id
    assert ledger.wallet_balance(customer.id, "INR") == Decimal("5.00")


def test_append_only_and_reversal_once(db, provider, customer):
    txn = _top_up(provider, customer, Decimal("40"))
    db.session.commit()
    entry = db.session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == txn.id)).first()
    entry.amount = Decimal("41")
    with pytest.raises(ServiceError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(LedgerTransaction, txn.id))
    with pytest.raises(ServiceError, match="append-only"):
        db.session.flush()
    db.session.rollback()

    ledger.reverse(db.session.get(LedgerTransaction, txn.id), precision=2, kind="wallet_topup_reversal")
    db.session.commit()
    assert ledger.wallet_balance(customer.id, "INR") == Decimal("0")
    with pytest.raises(Conflict):
        ledger.reverse(db.session.get(LedgerTransaction, txn.id), precision=2, kind="wallet_topup_reversal")


def test_large_amounts_stay_exact(db, provider, customer):
    big = Decimal("9999999999.99")
    _top_up(provider, customer, big)
    _top_up(provider, customer, Decimal("0.01"))
    db.session.commit()
    assert ledger.wallet_balance(customer.id, "INR") == Decimal("10000000000.00")
