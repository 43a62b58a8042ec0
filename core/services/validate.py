"""Small input checks shared by services; each raises ValidationError with the field."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from ..money import MoneyError, to_decimal
from .errors import ValidationError


class Errors(dict):
    """Collects field errors; ``raise_if_any`` raises them all at once."""

    def raise_if_any(self, message: str = "Please correct the highlighted fields.") -> None:
        if self:
            raise ValidationError(message, dict(self))


def decimal_field(errors: Errors, field: str, value, *, minimum: Decimal | None = Decimal(0),
                  maximum: Decimal | None = None, places: int = 6, positive: bool = False) -> Decimal | None:
    try:
        number = to_decimal(value)
    except MoneyError:
        errors[field] = "Enter a number."
        return None
    if positive and number <= 0:
        errors[field] = "Must be more than zero."
    elif minimum is not None and number < minimum:
        errors[field] = f"Must be at least {minimum}."
    elif maximum is not None and number > maximum:
        errors[field] = f"Must be at most {maximum}."
    elif number != number.quantize(Decimal(1).scaleb(-places)):
        errors[field] = f"At most {places} decimal places."
    return number


def date_field(errors: Errors, field: str, value, required: bool = True) -> date | None:
    if isinstance(value, date):
        return value
    if value in (None, ""):
        if required:
            errors[field] = "Required."
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[field] = "Use a date like 2026-01-31."
        return None


def text_field(errors: Errors, field: str, value, *, required: bool = True, max_length: int = 200) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if required and not text:
        errors[field] = "Required."
    elif len(text) > max_length:
        errors[field] = f"At most {max_length} characters."
    return text
