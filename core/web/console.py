"""The admin console (provider staff and resellers) and the customer's own pages."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import AuditEvent, Organisation, User
from ..permissions import (CLOUD_ADMIN, CUSTOMER_ADMIN, CUSTOMER_USER, RESELLER_ADMIN, RESELLER_SUBADMIN, ROLE_LABELS,
                           STAFF, delegable, effective_privileges)
from ..plugins import host
from ..services import ledger, orgs, plugin_health, plugin_settings, scope, settings, users
from ..services.errors import ServiceError
from .forms import CurrencySettingsForm, EmptyForm, OrganisationForm, PrivilegesForm, UserForm
from .guard import require

bp = Blueprint("console", __name__)
PER_PAGE = 25


def _apply_errors(form, exc: ServiceError) -> None:
    for name, message in exc.field_errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors) + [message]
    flash(exc.message, "error")


@bp.get("/")
@require()
def dashboard():
    org = current_user.org
    bs = settings.billing_settings(org.provider_id)
    counts = {}
    if org.kind != "customer":
        rows = db.session.execute(
            select(Organisation.kind, func.count()).where(scope.visible_orgs_clause(current_user),
                                                          Organisation.id != org.id)
            .group_by(Organisation.kind)).all()
        counts = dict(rows)
    wallet = ledger.wallet_balance(org.id, bs.currency)
    return render_template("console/dashboard.html", org=org, counts=counts, wallet=wallet, bs=bs)


# ------------------------------------------------------------ billing configurations


@bp.route("/billing/configurations", methods=["GET", "POST"])
@require("billing.configure", kinds=("provider",))
def billing_configurations():
    provider_id = current_user.org.provider_id
    bs = settings.billing_settings(provider_id)
    form = CurrencySettingsForm(obj=bs)
    if request.method == "GET":
        form.online_minimums.data = settings.format_minimums(bs.online_minimums)
    status = 200
    if form.validate_on_submit():
        try:
            settings.update_billing_settings(current_user, currency=form.currency.data, precision=form.precision.data,
                                             invoice_prefix=form.invoice_prefix.data,
                                             payment_terms_days=form.payment_terms_days.data,
                                             apply_wallet=form.apply_wallet.data,
                                             currency_mode=form.currency_mode.data,
                                             foreign_currency=form.foreign_currency.data,
                                             online_minimums=form.online_minimums.data or "")
            flash("Currency settings saved.", "success")
            return redirect(url_for("console.billing_configurations"))
        except ServiceError as exc:
            _apply_errors(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 422
    return render_template("console/billing_configurations.html", form=form, bs=bs,
                           locked=settings.currency_locked(provider_id), **_payment_sections(provider_id)), status


def _payment_sections(provider_id: int) -> dict:
    """What the Credit Card Settings and Payment Gateways sections show."""
    from ..services import cards, gateways

    h = host()
    gateway_rows = []
    for info in h.listing("kassa_gateways"):
        if info.id == gateways.OFFLINE:
            continue
        owner = h.owner("kassa_gateways", info.id)
        gateway_rows.append({"info": info, "plugin": owner, "enabled": owner in h.enabled_names(provider_id),
                             "has_settings": plugin_settings.form_class(owner) is not None})
    return {"card_settings": cards.card_settings(provider_id), "exemptions": cards.exemption_ids(provider_id),
            "gateway_rows": gateway_rows, "exemption_choices": db.session.execute(
                select(Organisation.id, Organisation.name, Organisation.kind).where(
                    Organisation.provider_id == provider_id, Organisation.kind != "provider")
                .order_by(Organisation.name)).all(), "csrf_form": EmptyForm()}


# ------------------------------------------------------------ plugins


@bp.get("/plugins")
@require("plugins.manage", kinds=("provider",))
def plugins():
    h = host()
    provider_id = current_user.org.provider_id
    enabled = h.enabled_names(provider_id)
    records = sorted(h.records.values(), key=lambda r: (not r.builtin, r.name))
    return render_template("console/plugins.html", records=records, enabled=enabled, toggle_form=EmptyForm(),
                           has_settings={r.name: plugin_settings.form_class(r.name) is not None for r in records},
                           failing=plugin_health.failing(provider_id))


@bp.post("/plugins/<name>/resolve")
@require("plugins.manage", kinds=("provider",))
def plugin_resolve(name: str):
    """Clear a plugin's "Failing" badge (until it fails again); audited."""
    EmptyForm().validate_on_submit()
    try:
        plugin_health.resolve(current_user, name)
        flash(f"Plugin {name}: failures marked as resolved.", "success")
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for("console.plugins"))


@bp.post("/plugins/<name>/toggle")
@require("plugins.manage", kinds=("provider",))
def plugin_toggle(name: str):
    EmptyForm().validate_on_submit()
    want = request.form.get("enabled") == "1"
    try:
        plugin_settings.set_enabled(current_user, name, want)
        flash(f"Plugin {name} {'enabled' if want else 'disabled'}.", "success")
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for("console.plugins"))


@bp.route("/plugins/<name>/settings", methods=["GET", "POST"])
@require("plugins.manage", kinds=("provider",))
def plugin_settings_page(name: str):
    provider_id = current_user.org.provider_id
    record = host().records.get(name)
    if record is None or plugin_settings.form_class(name) is None:
        abort(404)
    status = 200
    if request.method == "POST":
        EmptyForm().validate_on_submit()
        try:
            plugin_settings.save_settings(current_user, name, request.form)
            flash("Settings saved.", "success")
            return redirect(url_for("console.plugin_settings_page", name=name))
        except ServiceError as exc:
            form = plugin_settings.bind_form(provider_id, name, request.form)
            form.validate()
            flash(exc.message, "error")
            status = exc.status
    else:
        form = plugin_settings.bind_form(provider_id, name)
    return render_template("console/plugin_settings.html", record=record, form=form,
                           masked=plugin_settings.masked_secrets(provider_id, name),
                           csrf_form=EmptyForm()), status


# ------------------------------------------------------------ organisations


@bp.get("/organisations")
@require("orgs.view", kinds=("provider", "reseller"))
def organisations():
    q = (request.args.get("q") or "").strip()
    kind = request.args.get("kind") or ""
    query = scope.orgs_query(current_user).where(Organisation.id != current_user.org_id)
    if q:
        query = query.where(or_(Organisation.name.ilike(f"%{q}%"), Organisation.email.ilike(f"%{q}%")))
    if kind in ("customer", "reseller"):
        query = query.where(Organisation.kind == kind)
    page = db.paginate(query.order_by(Organisation.name, Organisation.id), per_page=PER_PAGE, error_out=False)
    return render_template("console/organisations.html", page=page, q=q, kind=kind)


def _parent_choices():
    me = current_user.org
    if me.kind == "provider":
        resellers = db.session.scalars(select(Organisation).where(
            Organisation.provider_id == me.id, Organisation.kind == "reseller").order_by(Organisation.name)).all()
        return [(me.id, f"{me.name} (direct)")] + [(r.id, f"{r.name} (reseller)") for r in resellers]
    return [(me.id, me.name)]


@bp.route("/organisations/new", methods=["GET", "POST"])
@require("orgs.manage", kinds=("provider", "reseller"))
def organisation_new():
    form = OrganisationForm()
    form.parent_id.choices = _parent_choices()
    if current_user.org.kind == "reseller":
        form.kind.choices = [("customer", "Customer")]
    status = 200
    if form.validate_on_submit():
        try:
            parent = scope.get_org(current_user, form.parent_id.data)
            fields = {k: getattr(form, k).data for k in orgs.FIELDS if hasattr(form, k)}
            org = orgs.create_org(current_user, kind=form.kind.data, parent=parent, **fields)
            flash(f"{org.name} created.", "success")
            return redirect(url_for("console.organisation", org_id=org.id))
        except ServiceError as exc:
            _apply_errors(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 422
    return render_template("console/organisation_form.html", form=form, org=None), status


@bp.get("/organisations/<int:org_id>")
@require("orgs.view", kinds=("provider", "reseller"))
def organisation(org_id: int):
    org = scope.get_org(current_user, org_id)
    bs = settings.billing_settings(org.provider_id)
    members = db.session.scalars(select(User).filter_by(org_id=org.id).order_by(User.name)).all()
    children = db.session.scalars(select(Organisation).filter_by(parent_id=org.id).order_by(Organisation.name)
                                  .limit(50)).all()
    return render_template("console/organisation.html", org=org, members=members, children=children,
                           wallet=ledger.wallet_balance(org.id, bs.currency),
                           receivable=ledger.receivable_balance(org.id, bs.currency), bs=bs, status_form=EmptyForm())


@bp.route("/organisations/<int:org_id>/edit", methods=["GET", "POST"])
@require("orgs.manage", kinds=("provider", "reseller"))
def organisation_edit(org_id: int):
    org = scope.get_org(current_user, org_id)
    form = OrganisationForm(obj=org)
    form.parent_id.choices = [(org.parent_id or org.id, "")]
    form.kind.data = org.kind
    status = 200
    if form.validate_on_submit():
        try:
            fields = {k: getattr(form, k).data for k in orgs.FIELDS if hasattr(form, k)}
            orgs.update_org(current_user, org, **fields)
            flash("Saved.", "success")
            return redirect(url_for("console.organisation", org_id=org.id))
        except ServiceError as exc:
            db.session.rollback()
            _apply_errors(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 422
    return render_template("console/organisation_form.html", form=form, org=org), status


@bp.post("/organisations/<int:org_id>/status")
@require("orgs.manage", kinds=("provider", "reseller"))
def organisation_status(org_id: int):
    org = scope.get_org(current_user, org_id)
    EmptyForm().validate_on_submit()
    try:
        orgs.set_status(current_user, org, request.form.get("status", ""))
        flash(f"{org.name} is now {org.status}.", "success")
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for("console.organisation", org_id=org.id))


# ------------------------------------------------------------ users


def _roles_creatable_in(org) -> list[tuple[str, str]]:
    me = current_user
    if org.kind == "provider" and me.role == CLOUD_ADMIN:
        roles = [STAFF, CLOUD_ADMIN]
    elif org.kind == "reseller" and (me.org.kind == "provider" or me.role == RESELLER_ADMIN):
        roles = [RESELLER_SUBADMIN] + ([RESELLER_ADMIN] if me.org.kind == "provider" else [])
    elif org.kind == "customer":
        roles = [CUSTOMER_USER, CUSTOMER_ADMIN]
    else:
        roles = []
    return [(r, ROLE_LABELS[r]) for r in roles]


@bp.get("/users", endpoint="users")
@require("users.manage")
def users_list():
    query = select(User).where(User.org_id.in_(scope.visible_org_ids(current_user))).order_by(User.org_id, User.name)
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    return render_template("console/users.html", page=page, toggle_form=EmptyForm())



@bp.route("/organisations/<int:org_id>/users/new", methods=["GET", "POST"])
@require("users.manage")
def user_new(org_id: int):
    org = scope.get_org(current_user, org_id)
    roles = _roles_creatable_in(org)
    if not roles:
        abort(403)
    grantable = set().union(*(delegable(r) for r, _ in roles)) & effective_privileges(current_user)
    form = UserForm(roles=roles, privileges=grantable)
    status = 200
    if form.validate_on_submit():
        try:
            user = users.create_user(current_user, org, email=form.email.data, name=form.name.data,
                                     password=form.password.data, role=form.role.data,
                                     privileges=form.privileges.data)
            flash(f"{user.email} created.", "success")
            return redirect(url_for("console.organisation", org_id=org.id) if org.id != current_user.org_id
                            else url_for("console.users"))
        except ServiceError as exc:
            _apply_errors(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 422
    return render_template("console/user_form.html", form=form, org=org), status


def _scoped_user(user_id: int) -> User:
    user = db.session.scalar(select(User).where(User.id == user_id,
                                                User.org_id.in_(scope.visible_org_ids(current_user))))
    if user is None:
        abort(404)
    return user


@bp.route("/users/<int:user_id>/privileges", methods=["GET", "POST"])
@require("users.manage")
def user_privileges(user_id: int):
    user = _scoped_user(user_id)
    if user.role not in (STAFF, RESELLER_SUBADMIN, CUSTOMER_USER):
        flash("This role always holds its full set of privileges.", "info")
        return redirect(url_for("console.users"))
    form = PrivilegesForm(privileges=delegable(user.role) & effective_privileges(current_user),
                          data={"privileges": user.privileges})
    if form.validate_on_submit():
        try:
            users.set_privileges(current_user, user, form.privileges.data)
            flash("Privileges saved.", "success")
            return redirect(url_for("console.users"))
        except ServiceError as exc:
            _apply_errors(form, exc)
    return render_template("console/user_privileges.html", form=form, user=user)


@bp.post("/users/<int:user_id>/active")
@require("users.manage")
def user_active(user_id: int):
    user = _scoped_user(user_id)
    EmptyForm().validate_on_submit()
    try:
        users.set_active(current_user, user, request.form.get("active") == "1")
        flash(f"{user.email} {'enabled' if user.active else 'disabled'}.", "success")
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for("console.users"))


# ------------------------------------------------------------ audit


@bp.get("/audit")
@require("audit.view", kinds=("provider", "reseller"))
def audit_log():
    query = select(AuditEvent).where(AuditEvent.provider_id == current_user.org.provider_id)
    if current_user.org.kind != "provider":
        query = query.where(AuditEvent.org_id.in_(scope.visible_org_ids(current_user)))
    action = (request.args.get("action") or "").strip()
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    page = db.paginate(query.order_by(AuditEvent.id.desc()), per_page=50, error_out=False)
    return render_template("console/audit.html", page=page, action=action)
