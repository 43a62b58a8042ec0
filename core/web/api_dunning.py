"""API: an organisation's dunning state and timeline; API calls of a suspended
organisation are refused (403) except what it needs to pay."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ..money import plain
from ..services import dunning, scope, settings
from . import json_error
from .api import allow, bp
from .openapi import doc

#: what a suspended organisation may still call: who am I, its dunning, its invoices and paying them
FREE_ENDPOINTS = frozenset({
    "api.openapi_json", "api.me", "api.organisation_dunning", "api.invoices_list", "api.invoice_get",
    "api.invoice_pay", "api.invoice_capture", "api.payment_get", "api.payment_complete", "api.card_get",
    "api.card_put", "api.invoice_document",
})


@bp.before_request
def dunning_suspension():
    """Runs after the API's token check: a suspended organisation's calls answer 403, saying why."""
    if request.endpoint in FREE_ENDPOINTS or not current_user or not current_user.is_authenticated:
        return None
    if current_user.org.kind == "provider":
        return None
    state = dunning.state_of(current_user.org_id)
    if state is None or not state.restricted:
        return None
    if not dunning.has_overdue(current_user.org_id):  # settled another way: re-evaluate now
        dunning.evaluate(current_user.org_id)
        return None
    amount = plain(state.overdue_amount, settings.config(current_user.org.provider_id).precision)
    return json_error(403, f"Account suspended for non-payment: {amount} {state.currency} "
                       f"overdue since {state.anchor_date}. Pay the overdue invoices (GET /api/v1/organisations/"
                       f"{current_user.org_id}/dunning lists them; POST /api/v1/invoices/<id>/pay) to restore it.")


DATE = {"type": "string", "format": "date"}
DUNNING_SCHEMA = {"type": "object", "properties": {
    "org_id": {"type": "integer"}, "today": DATE,
    "state": {"type": "object", "nullable": True, "properties": {
        "status": {"type": "string", "enum": ["active", "terminated"]}, "phase": {"type": "string"},
        "phase_name": {"type": "string"}, "started_on": DATE, "entered_on": DATE, "oldest_due_date": DATE,
        "overdue_amount": {"type": "string"}, "currency": {"type": "string"}, "banner": {"type": "boolean"},
        "suspended": {"type": "boolean"}, "suspended_subscription_ids": {"type": "array", "items": {"type": "integer"}},
        "next_step": {"type": "string"}, "next_on": {**DATE, "nullable": True}}},
    "unpaid": {"type": "array", "items": {"type": "object", "properties": {
        "invoice_id": {"type": "integer"}, "number": {"type": "string"}, "due_date": DATE,
        "due": {"type": "string"}, "currency": {"type": "string"}, "overdue": {"type": "boolean"}}}},
    "timeline": {"type": "object", "nullable": True, "properties": {
        "anchor": DATE, "termination_on": {**DATE, "nullable": True},
        "phases": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "name": {"type": "string"}, "starts_on": DATE, "ends_on": DATE,
            "open_ended": {"type": "boolean"}, "banner": {"type": "boolean"}, "suspend": {"type": "boolean"},
            "emails": {"type": "array", "items": DATE}, "terminate_on_exit": {"type": "boolean"}}}},
        "skipped": {"type": "array", "items": {"type": "string"}},
        "card_retries": {"type": "array", "items": DATE}}},
    "history": {"type": "array", "items": {"type": "object", "properties": {
        "day": DATE, "kind": {"type": "string"}, "phase": {"type": "string"}, "summary": {"type": "string"}}}}}}


@bp.get("/organisations/<int:org_id>/dunning")
@allow("billing.view")
@doc("Dunning state of an organisation and its timeline if nothing is paid (with its history)",
     response=DUNNING_SCHEMA)
def organisation_dunning(org_id: int):
    org = scope.get_org(current_user, org_id)
    p = dunning.preview(org)
    precision = settings.config(org.provider_id).precision
    s = p.state
    tl = p.timeline
    return jsonify({
        "org_id": org.id, "today": p.day.isoformat(),
        "state": None if s is None else {
            "status": s.status, "phase": s.phase, "phase_name": s.phase_name, "started_on": s.started_on.isoformat(),
            "entered_on": s.entered_on.isoformat(), "oldest_due_date": s.anchor_date.isoformat(),
            "overdue_amount": plain(s.overdue_amount, precision), "currency": s.currency, "banner": s.banner,
            "suspended": s.restricted, "suspended_subscription_ids": list(s.suspended_subscription_ids or ()),
            "next_step": s.next_step, "next_on": s.next_on.isoformat() if s.next_on else None},
        "unpaid": [{"invoice_id": u.invoice_id, "number": u.number, "due_date": u.due_date.isoformat(),
                    "due": plain(u.due, precision), "currency": u.currency, "overdue": u.due_date < p.day}
                   for u in p.unpaid],
        "timeline": None if tl is None else {
            "anchor": tl.anchor.isoformat(),
            "termination_on": tl.termination_on.isoformat() if tl.termination_on else None,
            "phases": [{"key": st.key, "name": st.name, "starts_on": st.starts_on.isoformat(),
                        "ends_on": st.ends_on.isoformat(), "open_ended": st.open_ended, "banner": st.plan.banner,
                        "suspend": st.plan.suspend, "emails": [d.isoformat() for d in st.emails()],
                        "terminate_on_exit": st.plan.terminate_on_exit} for st in tl.steps],
            "skipped": [plan.key for plan in tl.skipped],
            "card_retries": [d.isoformat() for d in tl.retries()]},
        "history": [{"day": e.day.isoformat(), "kind": e.kind, "phase": e.phase, "summary": e.summary}
                    for e in p.history],
    })
