"""Wallet movements (seed 000 "Transaction Logs": top-ups, free credit allocations,
adjustments, refunds). Each is one balanced ledger transaction; the balance is
the ledger's sum."""
from __future__ import annotations

from decimal import Decimal

from ..models import Organisation
from . import audit, ledger, settings
from .errors import Conflict, ValidationError
from .uow import atomic
from .validate import Errors, decimal_field, text_field

#: kind -> (debit account, credit account, direction); the wallet is credited on money in
KINDS = {
    "wallet_topup": ("cash:offline", "wallet", "inbound"),
    "free_credit": ("free_credit", "wallet", "internal"),
    "wallet_refund": ("wallet", "cash:offline", "outbound"),
    "wallet_debit_adjustment": ("wallet", "writeoff", "internal"),
}
LABELS = {"wallet_topup": "Wallet top-up", "free_credit": "Free credit allocation", "wallet_refund": "Wallet refund",
          "wallet_debit_adjustment": "Wallet adjustment (debit)"}


def move(actor, org: Organisation, kind: str, amount, reference: str = "", description: str = "",
         idempotency_key: str | None = None):
    if kind not in KINDS:
        raise ValidationError("Unknown wallet operation.", {"kind": "One of " + ", ".join(KINDS) + "."})
    if org.kind == "provider":
        raise ValidationError("A provider has no wallet of its own.")
    bs = settings.billing_settings(org.provider_id)
    errors = Errors()
    value = decimal_field(errors, "amount", amount, positive=True, places=bs.precision)
    reference = text_field(errors, "reference", reference, required=False, max_length=200)
    description = text_field(errors, "description", description, required=False, max_length=500)
    errors.raise_if_any()
    debit, credit, direction = KINDS[kind]
    with atomic():
        if debit == "wallet" and ledger.wallet_balance(org.id, bs.currency) < value:
            raise Conflict(f"The wallet holds {ledger.wallet_balance(org.id, bs.currency)} {bs.currency}, "
                           f"less than {value}.", {"amount": "More than the wallet balance."})
        debit_acct = ledger.account(org.provider_id, org.id if debit == "wallet" else org.provider_id, debit,
                                    bs.currency)
        credit_acct = ledger.account(org.provider_id, org.id if credit == "wallet" else org.provider_id, credit,
                                     bs.currency)
        txn = ledger.post(provider_id=org.provider_id, kind=kind, currency=bs.currency, precision=bs.precision,
                          entries=[(debit_acct, value), (credit_acct, -value)], direction=direction, amount=value,
                          org_id=org.id, reference=reference, description=description or LABELS[kind],
                          actor=actor, idempotency_key=idempotency_key)
        audit.record(actor, f"wallet.{kind}", txn, org_id=org.id, provider_id=org.provider_id,
                     summary=f"{org.name}: {value} {bs.currency} {reference}".strip())
    return txn


def balance(org: Organisation) -> Decimal:
    return ledger.wallet_balance(org.id, settings.billing_settings(org.provider_id).currency)
