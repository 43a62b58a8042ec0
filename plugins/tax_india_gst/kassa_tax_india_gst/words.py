"""Amounts in words, Indian style: "Rupees Twelve Lakh Thirty-Four Thousand Five
Hundred Sixty-Seven and Fifty Paise Only".

The cardinal words come from ``num2words`` (lang ``en_IN``: lakh and crore). It
stops below 10^10, so larger amounts are split at the crore the Indian way
("Two Thousand Crore ..."). Its "and" and commas are dropped and each word is
capitalised, as Indian invoices print it.
"""
from __future__ import annotations

from decimal import Decimal

from kassa.money import currency_name, round_money
from num2words import num2words

CRORE = 10 ** 7


def _cardinal(n: int) -> str:
    if n >= CRORE * 1000:
        crores, rest = divmod(n, CRORE)
        return _cardinal(crores) + " crore" + (" " + _cardinal(rest) if rest else "")
    return num2words(n, lang="en_IN")


def cardinal_words(n: int) -> str:
    """12 -> "Twelve", 123456 -> "One Lakh Twenty-Three Thousand Four Hundred Fifty-Six"."""
    if n < 0:
        return "Minus " + cardinal_words(-n)
    text = _cardinal(n).replace(",", " ")
    words = [w for w in text.split() if w != "and"]
    return " ".join("-".join(part.capitalize() for part in w.split("-")) for w in words)


def amount_in_words(amount: Decimal, currency: str = "INR") -> str:
    """The amount in words for an invoice, in rupees and paise for INR."""
    value = round_money(amount, 2)
    sign = "Minus " if value < 0 else ""
    value = abs(value)
    whole = int(value)
    minor = int((value - whole) * 100)
    if currency.upper() == "INR":
        text = f"Rupees {sign}{cardinal_words(whole)}"
        if minor:
            text += f" and {cardinal_words(minor)} Paise"
        return text + " Only"
    text = f"{currency_name(currency)} {sign}{cardinal_words(whole)}"
    if minor:
        text += f" and {minor:02d}/100"
    return text + " Only"
