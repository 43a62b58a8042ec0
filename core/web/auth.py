"""Sign in, sign out, own profile and API tokens."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from ..extensions import db
from ..models import ApiToken
from ..services import users
from ..services.errors import ServiceError
from .forms import EmptyForm, LoginForm, PasswordForm, TokenForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("console.dashboard"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = users.authenticate(form.email.data, form.password.data, request.remote_addr or "")
        except ServiceError as exc:
            form.password.errors.append(exc.message)
            status = exc.status if exc.status == 429 else 401
        else:
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    EmptyForm().validate_on_submit()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    password_form = PasswordForm(prefix="pw")
    token_form = TokenForm(prefix="tok")
    new_token = None
    if request.method == "POST" and "pw-new" in request.form:
        if password_form.validate_on_submit():
            try:
                users.change_password(current_user, password_form.current.data, password_form.new.data)
                flash("Password changed.", "success")
                return redirect(url_for("auth.profile"))
            except ServiceError as exc:
                password_form.current.errors.append(exc.message)
    elif request.method == "POST" and "tok-name" in request.form:
        if token_form.validate_on_submit():
            new_token, _ = users.create_api_token(current_user, token_form.name.data)
            flash("Token created. Copy it now: it will not be shown again.", "success")
    tokens = db.session.scalars(select(ApiToken).filter_by(user_id=current_user.id).order_by(ApiToken.id.desc())).all()
    return render_template("auth/profile.html", password_form=password_form, token_form=token_form,
                           tokens=tokens, new_token=new_token, revoke_form=EmptyForm())


@bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    if EmptyForm().validate_on_submit():
        users.revoke_api_token(current_user, token_id)
        flash("Token revoked.", "success")
    return redirect(url_for("auth.profile"))
