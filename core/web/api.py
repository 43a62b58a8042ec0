"""JSON API /api/v1 with personal bearer tokens. Errors are JSON with a message and
field errors; anything outside the caller's scope is 404."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import wraps

from flask import Blueprint, abort, current_app, g, jsonify, request
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.exc import DataError

from ..extensions import db
from ..models import AuditEvent, Organisation
from ..permissions import can, effective_privileges
from ..plugins import host
from ..services import ledger, orgs, plugin_health, plugin_settings, scope, settings, users
from ..services.errors import ValidationError
from . import openapi
from .openapi import doc

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 200

ORG_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "kind": {"type": "string"}, "name": {"type": "string"},
    "parent_id": {"type": "integer", "nullable": True}, "country": {"type": "string"},
    "state": {"type": "string"}, "email": {"type": "string"}, "status": {"type": "string"}}}
ORG_INPUT = {"type": "object", "properties": {k: {"type": "string"} for k in orgs.FIELDS} | {
    "kind": {"type": "string", "enum": ["customer", "reseller"]}, "parent_id": {"type": "integer"}},
    "required": ["name", "country"]}
PAGE = {"page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1, "maximum": 200}}


#: what an id or count column holds on every database (PostgreSQL's INTEGER is 32 bits); a
#: larger whole number names nothing and counts nothing here (amounts are decimal strings)
WHOLE = range(-2**31, 2**31)


@bp.url_value_preprocessor
def bounded_path_ids(endpoint, values):
    """An id in the path beyond the id columns' range cannot exist (the database cannot even compare it): 404."""
    if values and any(isinstance(v, int) and v not in WHOLE for v in values.values()):
        abort(404)


@bp.before_request
def bounded_query_numbers():
    """Integer query parameters (as the operation documents them) beyond the columns' range: 422."""
    view = current_app.view_functions.get(request.endpoint)
    for name, schema in (getattr(view, "openapi", None) or {}).get("query", {}).items():
        value = request.args.get(name, "").strip()
        if schema.get("type") == "integer" and value.lstrip("-").isdigit() and int(value) not in WHOLE:
            return _error(422, f"{name} is out of range.", {name: f"A whole number up to {WHOLE.stop - 1}."})
    return None


@bp.before_request
def authenticate():
    if request.endpoint == "api.openapi_json":
        return None
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    user = users.user_for_token(token) if token else None
    if user is None:
        return _error(401, "Missing or invalid API token: send 'Authorization: Bearer <token>'.")
    g._login_user = user  # Flask-Login's current_user for this request; the session is ignored
    if user.org.kind != "provider" and request.endpoint not in CARD_FREE:
        from ..services import cards

        if cards.card_required(user.org):
            return _error(403, "A credit or debit card is required: add one with PUT "
                               f"/api/v1/organisations/{user.org_id}/card.")
    return None


CARD_FREE = {"api.me", "api.card_get", "api.card_put"}


@bp.errorhandler(OverflowError)
@bp.errorhandler(InvalidOperation)
@bp.errorhandler(DataError)
def out_of_range(exc):
    """A number too large for the exact arithmetic or the 64-bit columns (an amount times a
    quantity, say) reaches here as one of these; the unit of work has rolled back."""
    db.session.rollback()
    return _error(422, "A number in the request is out of range.")


def _error(status, message, fields=None):
    body = {"error": {"status": status, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return jsonify(body), status


def allow(privilege: str | None = None, kinds: tuple[str, ...] | None = None):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if kinds and current_user.org.kind not in kinds:
                abort(404)
            if privilege and not can(current_user, privilege):
                return _error(403, f"Your role lacks the privilege {privilege!r}.")
            return view(*args, **kwargs)

        wrapped.kassa_privilege = privilege
        wrapped.kassa_kinds = kinds
        return wrapped

    return decorator


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("Send a JSON object with Content-Type: application/json.")
    if not _numbers_fit(data):
        raise ValidationError(f"A number in the request is out of range: whole numbers go up to {WHOLE.stop - 1}.")
    view = current_app.view_functions.get(request.endpoint)
    errors = _type_errors(data, (getattr(view, "openapi", None) or {}).get("body") or {})
    if errors:
        raise ValidationError("Some fields have the wrong JSON type.", errors)
    return data


AMOUNT_PATTERN = r"^-?\d+(\.\d+)?$"  # a decimal amount as a string (the API's MONEY schemas)
MAX_AMOUNT_DIGITS = 12  # amounts are stored in 10⁻⁶ units in 64 bits: below 9.2 × 10¹²


def _too_large(value) -> bool:
    try:
        return abs(Decimal(str(value))) >= Decimal(10) ** MAX_AMOUNT_DIGITS
    except (InvalidOperation, ValueError):
        return False  # not a number: the service says what is wrong with it


SCALARS = (str, int, float, bool)
#: what each documented type lets through to the services, which parse and check the values
#: (numbers may come as strings, as forms send them; a decimal amount may come as a whole number)
ACCEPTED = {"string": lambda v, schema: isinstance(v, str) or (
                schema.get("pattern") == AMOUNT_PATTERN and isinstance(v, int) and not isinstance(v, bool)),
            "integer": lambda v, schema: isinstance(v, (int, float, str)) and not isinstance(v, bool),
            "number": lambda v, schema: isinstance(v, (int, float, str)) and not isinstance(v, bool),
            "boolean": lambda v, schema: isinstance(v, SCALARS),
            "array": lambda v, schema: isinstance(v, list),
            "object": lambda v, schema: isinstance(v, dict)}


def _type_errors(value, schema: dict, path: str = "") -> dict[str, str]:
    """Fields whose JSON type cannot be what the operation documents (a list where a
    string belongs, a string where a list belongs): refused here, before a service
    trips over them. ``null`` is "not given", as an omitted field."""
    kind = schema.get("type")
    if value is not None and kind in ACCEPTED and not ACCEPTED[kind](value, schema):
        return {path or "body": f"Expected a JSON {kind}."}
    if kind == "string" and schema.get("pattern") == AMOUNT_PATTERN and _too_large(value):
        return {path: f"At most {MAX_AMOUNT_DIGITS} digits before the decimal point."}
    errors: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub:
                errors |= _type_errors(item, sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors |= _type_errors(item, schema["items"], f"{path}.{i}")
    return errors


def _numbers_fit(value) -> bool:
    """Every whole number in a JSON document fits the columns it may be compared with."""
    if isinstance(value, dict):
        return all(_numbers_fit(v) for v in value.values())
    if isinstance(value, list):
        return all(_numbers_fit(v) for v in value)
    return not isinstance(value, int) or isinstance(value, bool) or value in WHOLE


def page_args() -> tuple[int, int]:
    try:
        page = max(1, int(request.args.get("page", 1)))
        per_page = min(MAX_PER_PAGE, max(1, int(request.args.get("per_page", 50))))
    except ValueError:
        raise ValidationError("page and per_page are whole numbers.") from None
    return page, per_page


def paged(query, serialise):
    page, per_page = page_args()
    result = db.paginate(query, page=page, per_page=per_page, error_out=False, count=True)
    return jsonify({"items": [serialise(x) for x in result.items], "page": page, "per_page": per_page,
                    "total": result.total})


def org_json(org: Organisation) -> dict:
    return {"id": org.id, "kind": org.kind, "name": org.name, "parent_id": org.parent_id, "country": org.country,
            "state": org.state, "city": org.city, "postal_code": org.postal_code, "email": org.email,
            "tax_id": org.tax_id, "status": org.status, "timezone": org.timezone}


@bp.get("/openapi.json")
@doc("This document", public=True, errors=())
def openapi_json():
    return jsonify(openapi.build(current_app))


@bp.get("/me")
@allow()
@doc("The token's user, organisation and privileges")
def me():
    u = current_user
    return jsonify({"id": u.id, "email": u.email, "name": u.name, "role": u.role,
                    "privileges": sorted(effective_privileges(u)), "organisation": org_json(u.org)})


@bp.get("/organisations")
@allow("orgs.view", kinds=("provider", "reseller"))
@doc("List organisations in your scope", query={"q": {"type": "string"}, "kind": {"type": "string"}} | PAGE,
     response={"type": "object", "properties": {"items": {"type": "array", "items": ORG_SCHEMA}}})
def organisations():
    query = scope.orgs_query(current_user)
    if q := (request.args.get("q") or "").strip():
        query = query.where(or_(Organisation.name.ilike(f"%{q}%"), Organisation.email.ilike(f"%{q}%")))
    if kind := request.args.get("kind"):
        query = query.where(Organisation.kind == kind)
    return paged(query.order_by(Organisation.id), org_json)


@bp.post("/organisations")
@allow("orgs.manage", kinds=("provider", "reseller"))
@doc("Create a customer or reseller", body=ORG_INPUT, response=ORG_SCHEMA, status=201)
def organisation_create():
    data = json_body()
    parent = scope.get_org(current_user, data["parent_id"]) if data.get("parent_id") else None
    org = orgs.create_org(current_user, kind=data.get("kind", "customer"), parent=parent,
                          **{k: data[k] for k in orgs.FIELDS if k in data})
    return jsonify(org_json(org)), 201


@bp.get("/organisations/<int:org_id>")
@allow("orgs.view", kinds=("provider", "reseller"))
@doc("One organisation", response=ORG_SCHEMA)
def organisation(org_id: int):
    return jsonify(org_json(scope.get_org(current_user, org_id)))


@bp.patch("/organisations/<int:org_id>")
@allow("orgs.manage", kinds=("provider", "reseller"))
@doc("Change an organisation's details", body={"type": "object", "properties": ORG_INPUT["properties"]},
     response=ORG_SCHEMA)
def organisation_update(org_id: int):
    org = scope.get_org(current_user, org_id)
    data = json_body()
    orgs.update_org(current_user, org, **{k: data[k] for k in orgs.FIELDS if k in data})
    return jsonify(org_json(org))


@bp.get("/organisations/<int:org_id>/wallet")
@allow("billing.view")
@doc("Wallet and receivable balances of an organisation (derived from the ledger)")
def organisation_wallet(org_id: int):
    org = scope.get_org(current_user, org_id)
    bs = settings.billing_settings(org.provider_id)
    return jsonify({"org_id": org.id, "currency": bs.currency,
                    "wallet": str(ledger.wallet_balance(org.id, bs.currency)),
                    "receivable": str(ledger.receivable_balance(org.id, bs.currency))})


BILLING_SETTINGS = {"type": "object", "properties": {
    "currency": {"type": "string"}, "precision": {"type": "integer", "minimum": 0, "maximum": 6},
    "invoice_prefix": {"type": "string"}, "payment_terms_days": {"type": "integer"},
    "currency_locked": {"type": "boolean"}}}


def _billing_json(provider_id):
    bs = settings.billing_settings(provider_id)
    return {"currency": bs.currency, "precision": bs.precision, "invoice_prefix": bs.invoice_prefix,
            "payment_terms_days": bs.payment_terms_days, "currency_locked": settings.currency_locked(provider_id)}


@bp.get("/billing/settings")
@allow("billing.view", kinds=("provider",))
@doc("Currency Settings of your provider", response=BILLING_SETTINGS)
def billing_settings_get():
    return jsonify(_billing_json(current_user.org.provider_id))


@bp.put("/billing/settings")
@allow("billing.configure", kinds=("provider",))
@doc("Change Currency Settings (the currency locks once an invoice exists)", body=BILLING_SETTINGS,
     response=BILLING_SETTINGS, errors=(401, 403, 404, 409, 422))
def billing_settings_put():
    data = json_body()
    current = settings.billing_settings(current_user.org.provider_id)
    settings.update_billing_settings(current_user, currency=data.get("currency", current.currency),
                                     precision=data.get("precision", current.precision),
                                     invoice_prefix=data.get("invoice_prefix"),
                                     payment_terms_days=data.get("payment_terms_days"))
    return jsonify(_billing_json(current_user.org.provider_id))


PLUGIN_SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string"}, "distribution": {"type": "string"}, "version": {"type": "string"},
    "builtin": {"type": "boolean"}, "enabled": {"type": "boolean"}, "broken": {"type": "boolean"},
    "error": {"type": "string", "nullable": True}, "hooks": {"type": "array", "items": {"type": "string"}},
    "failing": {"type": "object", "nullable": True, "description": "Set while the plugin has an unresolved failure",
                "properties": {"hook": {"type": "string"}, "error": {"type": "string"},
                               "last_at": {"type": "string", "format": "date-time"},
                               "count_24h": {"type": "integer"}}}}}


def _plugin_json(record, enabled):
    return {"name": record.name, "distribution": record.distribution, "version": record.version,
            "builtin": record.builtin, "required": record.required, "enabled": record.name in enabled,
            "broken": record.broken, "error": record.error, "hooks": record.hooks}


@bp.get("/plugins")
@allow("plugins.manage", kinds=("provider",))
@doc("Installed plugins and whether they are enabled for your provider",
     response={"type": "object", "properties": {"items": {"type": "array", "items": PLUGIN_SCHEMA}}})
def plugins():
    h = host()
    enabled = h.enabled_names(current_user.org.provider_id)
    failing = plugin_health.failing(current_user.org.provider_id)

    def failing_json(f):
        return f and {"hook": f.hook, "error": f.error, "last_at": f.last_at.isoformat() + "Z",
                      "count_24h": f.count_24h}

    return jsonify({"items": [dict(_plugin_json(r, enabled), failing=failing_json(failing.get(r.name)))
                              for r in sorted(h.records.values(), key=lambda r: r.name)]})


@bp.post("/plugins/<name>/enable")
@allow("plugins.manage", kinds=("provider",))
@doc("Enable a plugin for your provider", response=PLUGIN_SCHEMA, errors=(401, 403, 404, 409))
def plugin_enable(name: str):
    plugin_settings.set_enabled(current_user, name, True)
    h = host()
    return jsonify(_plugin_json(h.records[name], h.enabled_names(current_user.org.provider_id)))


@bp.post("/plugins/<name>/disable")
@allow("plugins.manage", kinds=("provider",))
@doc("Disable a plugin for your provider", response=PLUGIN_SCHEMA, errors=(401, 403, 404, 409))
def plugin_disable(name: str):
    plugin_settings.set_enabled(current_user, name, False)
    h = host()
    return jsonify(_plugin_json(h.records[name], h.enabled_names(current_user.org.provider_id)))


@bp.get("/plugins/<name>/settings")
@allow("plugins.manage", kinds=("provider",))
@doc("A plugin's settings; secrets are masked")
def plugin_settings_get(name: str):
    if plugin_settings.form_class(name) is None:
        abort(404)
    pid = current_user.org.provider_id
    return jsonify({"settings": plugin_settings.settings_for(pid, name),
                    "secrets": plugin_settings.masked_secrets(pid, name)})


@bp.put("/plugins/<name>/settings")
@allow("plugins.manage", kinds=("provider",))
@doc("Change a plugin's settings (an omitted or empty secret keeps the stored one)",
     body={"type": "object", "additionalProperties": True})
def plugin_settings_put(name: str):
    if plugin_settings.form_class(name) is None:
        abort(404)
    data = {k: ("y" if v is True else "" if v is False else str(v)) for k, v in json_body().items()
            if v is not None}
    plugin_settings.save_settings(current_user, name, data)
    pid = current_user.org.provider_id
    return jsonify({"settings": plugin_settings.settings_for(pid, name),
                    "secrets": plugin_settings.masked_secrets(pid, name)})


@bp.get("/audit")
@allow("audit.view", kinds=("provider", "reseller"))
@doc("Audit events, newest first", query={"action": {"type": "string"}} | PAGE)
def audit():
    query = select(AuditEvent).where(AuditEvent.provider_id == current_user.org.provider_id)
    if current_user.org.kind != "provider":
        query = query.where(AuditEvent.org_id.in_(scope.visible_org_ids(current_user)))
    if action := request.args.get("action"):
        query = query.where(AuditEvent.action.startswith(action))
    return paged(query.order_by(AuditEvent.id.desc()), lambda e: {
        "id": e.id, "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
        "summary": e.summary, "actor_id": e.actor_id, "org_id": e.org_id, "at": e.at.isoformat() + "Z"})
