"""Console: the Dunning Process (seed 000) — organisations in dunning, each one's
timeline preview and history, the payment prompt of a suspended organisation,
the banner, and the admin-only test clock."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional

from ..clock import FrozenClock, get_clock, today
from ..extensions import db
from ..models import Invoice, Organisation
from ..money import format_money
from ..permissions import CLOUD_ADMIN, can
from ..services import dunning, scope
from ..services.cache import forget
from .forms import EmptyForm
from .guard import require

bp = Blueprint("dunning", __name__)

#: what a suspended organisation may still open in the console: the prompt, paying the
#: overdue invoices (and the pay return routes), its card, signing out, static files
FREE_ENDPOINTS = frozenset({
    "dunning.prompt", "dunning.timeline", "billing.invoice", "payments.invoice_pay", "payments.invoice_capture",
    "payments.pay_return", "payments.payment_result", "payments.billing_profile", "payments.billing_profile_card",
    "documents.export", "auth.logout", "auth.login", "auth.profile", "static",
})


def suspension_message(state) -> str:
    return (f"Your account is suspended for non-payment: {format_money(state.overdue_amount, state.currency)} is "
            f"overdue since "
            f"{state.anchor_date}. Pay the overdue invoices to restore it.")


def _state_for(org):
    """The organisation's dunning state for this request. A state whose overdue
    invoices were settled another way (an invoice cancelled) is re-evaluated here."""
    state = dunning.state_of(org.id)
    if state is not None and not dunning.has_overdue(org.id):
        dunning.evaluate(org.id)
        forget("dunning-state")
        state = dunning.state_of(org.id)
    return state


def restriction():
    """before_request (registered in web/__init__.py): a suspended organisation's
    console shows only the payment prompt; other pages are refused, saying why."""
    if not (current_user and current_user.is_authenticated) or current_user.org.kind == "provider":
        return None
    endpoint = request.endpoint or ""
    if endpoint in FREE_ENDPOINTS or endpoint.startswith("static") or request.path.startswith(("/api/", "/webhooks/")):
        return None
    state = dunning.state_of(current_user.org_id)
    if state is None:
        return None
    state = _state_for(current_user.org)
    if state is None or not state.restricted:
        return None
    message = suspension_message(state)
    if request.method in ("GET", "HEAD"):
        flash(message, "warning")
        return redirect(url_for("dunning.prompt"))
    return render_template("error.html", code=403, message=message), 403


def banner_context() -> dict:
    """context processor (registered in web/__init__.py): the banner of an
    organisation in a banner phase on every page; a suspended one has no menu."""
    if not (current_user and current_user.is_authenticated) or current_user.org.kind == "provider":
        return {"dunning_banner": None}
    state = dunning.state_of(current_user.org_id)
    if state is None or not state.banner:
        return {"dunning_banner": None}
    out = {"dunning_banner": state}
    if state.restricted:
        out["menu"] = []
    return out


# ------------------------------------------------------------ Billing Configurations: the Dunning Process section


@bp.app_template_global("dunning_configuration")
def dunning_configuration():
    """The Dunning Process section of Billing Configurations: the phases with their
    on/off and days, what an invoice due today would go through, and where to edit."""
    from ..plugins import host
    from ..services import plugin_settings

    provider_id = current_user.org.provider_id
    plans = dunning.phase_plans(provider_id)
    declared = [name for name, phases in host().call_each("kassa_dunning_phases") if phases]
    editable = dunning.settings_plugins(provider_id)
    return {
        "plans": plans,
        "sample": dunning.timeline(today(), plans) if plans else None,
        "declared_but_off": [n for n in declared if not plugin_settings.is_enabled(provider_id, n)],
        "settings_urls": [(n, url_for("console.plugin_settings_page", name=n)) for n in editable]
        if can(current_user, "plugins.manage") else [],
    }


# ------------------------------------------------------------ pages


@bp.get("/dunning")
@require("billing.view", kinds=("provider", "reseller"))
def overview():
    rows = dunning.states_in_scope(current_user)
    orgs = db.session.scalars(scope.orgs_query(current_user).where(Organisation.kind != "provider")
                              .order_by(Organisation.name).limit(500)).all()
    return render_template("dunning/overview.html", rows=rows, orgs=orgs, form=EmptyForm(),
                           test_clock=_test_clock() is not None and _clock_admin())


@bp.get("/dunning/organisations/<int:org_id>")
@require("billing.view")
def timeline(org_id: int):
    org = scope.get_org(current_user, org_id)
    if org.kind == "provider":
        abort(404)
    view = dunning.preview(org)
    return render_template("dunning/timeline.html", org=org, p=view, form=EmptyForm(),
                           can_run=current_user.org.kind == "provider" and can(current_user, "billing.configure"))


@bp.get("/dunning/open")
@require("billing.view", kinds=("provider", "reseller"))
def open_timeline():
    return redirect(url_for("dunning.timeline", org_id=request.args.get("org_id", type=int) or 0))


@bp.post("/dunning/organisations/<int:org_id>/evaluate")
@require("billing.configure", kinds=("provider",))
def evaluate(org_id: int):
    EmptyForm().validate_on_submit() or abort(400)
    org = scope.get_org(current_user, org_id)
    state = dunning.evaluate(org.id)
    flash(f"{org.name}: " + (f"{state.phase_name}." if state is not None else "not in dunning."), "success")
    return redirect(url_for("dunning.timeline", org_id=org.id))


@bp.post("/dunning/sweep")
@require("billing.configure", kinds=("provider",))
def sweep_now():
    EmptyForm().validate_on_submit() or abort(400)
    totals = dunning.sweep(provider_ids=[current_user.org.provider_id])
    flash("Dunning sweep done: " + ", ".join(f"{k} {v}" for k, v in totals.items()), "success")
    return redirect(request.form.get("next") or url_for("dunning.overview"))


@bp.get("/dunning/pay")
@require(kinds=("reseller", "customer"))
def prompt():
    """The payment prompt: the one page a suspended organisation's console shows."""
    org = current_user.org
    state = _state_for(org)
    overdue = dunning.unpaid_invoices([org.id], before=today()).get(org.id, [])
    invoices = {i.id: i for i in db.session.query(Invoice).filter(Invoice.id.in_([u.invoice_id for u in overdue]))}
    amount, currency = dunning.total(overdue)
    return render_template("dunning/prompt.html", org=org, state=state, overdue=overdue, invoices=invoices,
                           amount=amount, currency=currency, form=EmptyForm(),
                           can_pay=can(current_user, "billing.view"))


# ------------------------------------------------------------ test clock (demos; KASSA_TEST_CLOCK only)


class TestClockForm(FlaskForm):
    action = SelectField("Action", choices=[("advance", "Advance by days"), ("set", "Set the date")],
                         default="advance")
    days = IntegerField("Days", validators=[Optional(), NumberRange(min=1, max=366)], default=1)
    date = DateField("Date", validators=[Optional()])
    run_sweep = BooleanField("Run the daily dunning sweep for each day passed", default=True)


def _test_clock() -> FrozenClock | None:
    clock = get_clock()
    if not current_app.config.get("KASSA_TEST_CLOCK") or not isinstance(clock, FrozenClock):
        return None
    return clock


def _clock_admin() -> bool:
    return current_user.org.kind == "provider" and current_user.role == CLOUD_ADMIN


@bp.route("/dunning/test-clock", methods=["GET", "POST"])
@require()
def test_clock():
    """Set or advance the app's frozen clock (provider cloud admins, test clock on)."""
    clock = _test_clock()
    if clock is None or not _clock_admin():
        abort(404)
    form = TestClockForm()
    status = 200
    if form.validate_on_submit():
        before = clock.now()
        swept = 0
        if form.action.data == "set":
            if form.date.data is None:
                form.date.errors = list(form.date.errors) + ["Choose a date."]
                return render_template("dunning/test_clock.html", form=form, now=clock.now()), 422
            clock.set(datetime.combine(form.date.data, time(before.hour, before.minute), tzinfo=timezone.utc))
            if form.run_sweep.data:
                dunning.sweep(provider_ids=[current_user.org.provider_id])
                swept = 1
        else:
            days = form.days.data or 1
            for _ in range(days):
                clock.advance(days=1)
                if form.run_sweep.data:
                    dunning.sweep(provider_ids=[current_user.org.provider_id])
                    swept += 1
        from ..services import audit
        from ..services.uow import atomic

        with atomic():
            audit.record(current_user, "test_clock.move", summary=f"{before:%Y-%m-%d} → {clock.now():%Y-%m-%d}"
                         + (f", {swept} sweep(s)" if swept else ""))
        flash(f"The clock now reads {clock.now():%Y-%m-%d %H:%M} UTC"
              + (f"; the dunning sweep ran {swept} time(s)." if swept else "."), "success")
        return redirect(url_for("dunning.test_clock"))
    if request.method == "POST":
        status = 422
    return render_template("dunning/test_clock.html", form=form, now=clock.now(),
                           tomorrow=(clock.now() + timedelta(days=1)).date()), status

