"""Organisations: providers, resellers, customers."""
from __future__ import annotations

import unicodedata

import pycountry
from email_validator import EmailNotValidError, validate_email

from ..clock import utcnow_naive
from ..extensions import db
from ..models import CUSTOMER, PROVIDER, RESELLER, Organisation
from . import audit
from .errors import Forbidden, ValidationError
from .uow import atomic

FIELDS = ("name", "email", "phone", "address_line1", "address_line2", "city", "state", "postal_code",
          "country", "tax_id", "timezone", "locale")


def clean_email(value: str, field: str = "email", required: bool = True) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValidationError("E-mail is required.", {field: "Required."})
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(str(exc), {field: str(exc)}) from None


def clean_country(value: str) -> str:
    code = (value or "").strip().upper()
    if not code or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError("Choose a country.", {"country": "Unknown country; use a two-letter ISO code."})
    return code


def _norm_state(value: str, country: str = "") -> str:
    """Compare state names loosely: case, accents, spacing and "&"; an ISO 3166-2 code
    ("MH", "IN-MH") stands for its subdivision's name."""
    value = (value or "").strip()
    if country and 1 < len(value) <= 6:
        code = value.upper() if "-" in value else f"{country}-{value.upper()}"
        sub = pycountry.subdivisions.get(code=code)
        if sub is not None:
            value = sub.name
    plain_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain_text.lower().replace("&", "and") if ch.isalnum())


def _check_tax_id(provider_id: int | None, out: dict, current=None) -> dict[str, str]:
    """A tax id (the seed's KYC ID) is checked by the tax engine plugin of its country
    (GSTIN for India): invalid ones are refused, valid ones stored normalised, and a
    state written in the id must be the organisation's state (filled in when empty)."""
    tax_id = out.get("tax_id")
    if not tax_id or provider_id is None:
        return {}
    from ..plugins import host

    country = out.get("country") or getattr(current, "country", "")
    check = host().hooks(provider_id).kassa_tax_id_check(country=country, tax_id=tax_id)
    if check is None:
        return {}
    if not check.valid:
        return {"tax_id": check.message or "Not a valid tax id."}
    out["tax_id"] = check.normalized or tax_id
    state = (check.details or {}).get("state", "")
    if state:
        given = out.get("state", getattr(current, "state", ""))
        if not given:
            out["state"] = state
        elif _norm_state(given, country) != _norm_state(state, country):
            message = f"The tax id is registered in {state}, not in {given}."
            return {"tax_id": message, "state": message}
    return {}


def _clean(data: dict, provider_id: int | None = None, current=None) -> dict:
    errors: dict[str, str] = {}
    out = {k: (data.get(k) or "").strip() if isinstance(data.get(k), str) or data.get(k) is None else data.get(k)
           for k in FIELDS if k in data}
    if "name" in out and not out["name"]:
        errors["name"] = "Required."
    elif len(out.get("name", "")) > 200:
        errors["name"] = "At most 200 characters."
    for key, check in (("email", lambda v: clean_email(v, required=False)), ("country", clean_country)):
        if key in out:
            try:
                out[key] = check(out[key])
            except ValidationError as exc:
                errors.update(exc.field_errors)
    if out.get("timezone"):
        from zoneinfo import available_timezones

        if out["timezone"] not in available_timezones():
            errors["timezone"] = "Unknown time zone."
    if not errors:
        errors.update(_check_tax_id(provider_id, out, current))
    if errors:
        raise ValidationError("Please correct the highlighted fields.", errors)
    return {k: v for k, v in out.items() if v is not None}


def create_provider(name: str, country: str, **fields) -> Organisation:
    """Set up a new provider (a tenant). Used by the CLI and the demo."""
    data = _clean({"name": name, "country": country, **fields})
    with atomic():
        org = Organisation(kind=PROVIDER, created_at=utcnow_naive(), **data)
        db.session.add(org)
        db.session.flush()
        org.provider_id = org.id
    return org


def create_org(actor, *, kind: str, parent: Organisation | None = None, **fields) -> Organisation:
    """Create a reseller (provider staff only) or a customer (provider or reseller)."""
    if kind not in (RESELLER, CUSTOMER):
        raise ValidationError("An organisation is a reseller or a customer.", {"kind": "Choose reseller or customer."})
    me = actor.org
    parent = parent or me
    if me.kind == PROVIDER:
        if parent.provider_id != me.id or parent.kind == CUSTOMER or (kind == RESELLER and parent.kind != PROVIDER):
            raise ValidationError("That parent organisation cannot hold this one.", {"parent_id": "Invalid parent."})
    elif me.kind == RESELLER:
        if kind != CUSTOMER or parent.id != me.id:
            raise Forbidden("A reseller can create customers of its own only.")
    else:
        raise Forbidden("Customers cannot create organisations.")
    data = _clean(fields, me.provider_id)
    if not data.get("name"):
        raise ValidationError("Please correct the highlighted fields.", {"name": "Required."})
    if "country" not in data:
        raise ValidationError("Please correct the highlighted fields.", {"country": "Required."})
    with atomic():
        org = Organisation(kind=kind, provider_id=me.provider_id, parent_id=parent.id,
                           created_at=utcnow_naive(), **data)
        db.session.add(org)
        db.session.flush()
        audit.record(actor, "org.create", org, org_id=org.id, summary=f"{kind} {org.name}")
    return org


def update_org(actor, org: Organisation, **fields) -> Organisation:
    data = _clean(fields, org.provider_id, current=org)
    with atomic():
        before = {k: getattr(org, k) for k in data}
        for key, value in data.items():
            setattr(org, key, value)
        audit.record(actor, "org.update", org, org_id=org.id, summary=org.name,
                     details={"before": before, "after": data})
    return org


def set_status(actor, org: Organisation, status: str) -> Organisation:
    if status not in ("active", "disabled"):
        raise ValidationError("Status is active or disabled.", {"status": "Invalid."})
    if org.id == actor.org_id:
        raise Forbidden("You cannot disable your own organisation.")
    with atomic():
        org.status = status
        audit.record(actor, f"org.{status}", org, org_id=org.id, summary=org.name)
    return org
