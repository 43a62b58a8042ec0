"""Blueprints, error handling, security headers and template helpers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from ..extensions import db, login_manager
from ..money import format_money, plain
from ..permissions import ROLE_LABELS, can
from ..plugins import PluginFailure
from ..services.errors import ServiceError
from .menu import menu_for

CARD_FREE_ENDPOINTS = {"payments.billing_profile", "payments.billing_profile_card", "auth.logout", "auth.login",
                       "auth.profile", "api.openapi_json"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def init_web(app) -> None:
    from ..models import User
    from . import api, api_billing, api_payments, auth, billing_views, catalog_views, console, payment_views  # noqa: F401
    from . import api_documents, document_views  # noqa: F401
    from . import api_dunning, dunning_views  # noqa: F401
    from . import api_orders, order_views  # noqa: F401

    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id):
        return db.session.get(User, int(user_id))

    app.register_blueprint(auth.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(billing_views.bp)
    app.register_blueprint(catalog_views.bp)
    app.register_blueprint(payment_views.bp)
    app.register_blueprint(payment_views.hooks_bp)
    app.register_blueprint(document_views.bp)
    app.register_blueprint(dunning_views.bp)
    app.register_blueprint(order_views.bp)
    app.register_blueprint(api.bp)
    from ..extensions import csrf

    csrf.exempt(api.bp)
    for blueprints in app.extensions["kassa_plugins"].pm.hook.kassa_blueprints():
        for blueprint in blueprints or ():
            app.register_blueprint(blueprint)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path.startswith("/webhooks/")

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        if wants_json():
            return json_error(exc.status, exc.message, exc.field_errors)
        return render_template("error.html", code=exc.status, message=exc.message), exc.status

    @app.errorhandler(PluginFailure)
    def plugin_failure(exc: PluginFailure):
        """A plugin broke the action: already logged and recorded by the plugin host;
        the transaction rolled back. The plugin's own error text stays on the Plugins page."""
        db.session.rollback()
        if wants_json():
            body = {"status": 502, "message": exc.public_message, "plugin": exc.plugin}
            return jsonify({"error": body}), 502
        return render_template("error.html", code=502, message=exc.public_message), 502

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("error.html", code=400, message="The form expired or was not sent from Kassa. "
                               "Reload the page and try again."), 400

    for code, message in ((403, "You do not have permission to do this."), (404, "Not found."),
                          (405, "Method not allowed."), (429, "Too many requests."),
                          (500, "Something went wrong on our side.")):
        app.register_error_handler(code, _http_error(code, message, wants_json))

    app.jinja_env.filters["money"] = lambda amount, currency, places=None, locale=None: format_money(
        amount, currency, locale=locale or _locale(), places=places)
    app.jinja_env.filters["localtime"] = _localtime
    app.jinja_env.filters["plain"] = plain
    app.jinja_env.filters["last_day"] = lambda end: end - timedelta(days=1) if end else end
    app.jinja_env.globals.update(can=can, role_label=lambda r: ROLE_LABELS.get(r, r))

    @app.before_request
    def card_enforcement():
        """Seed 000 "Enforce Credit Card": where it applies, a customer or reseller can
        do nothing but add a card until one is configured."""
        if not (current_user and current_user.is_authenticated) or current_user.org.kind == "provider":
            return None
        if request.endpoint in CARD_FREE_ENDPOINTS or (request.endpoint or "").startswith(("static", "health.")):
            return None
        from ..services import cards

        if not cards.card_required(current_user.org):
            return None
        message = "A credit or debit card is required: add one in the billing profile."
        if request.path.startswith("/api/"):
            return json_error(403, message)
        flash(message, "warning")
        return redirect(url_for("payments.billing_profile"))

    @app.context_processor
    def inject_menu():
        if current_user and current_user.is_authenticated:
            return {"menu": menu_for(current_user, app)}
        return {"menu": []}

    @app.before_request
    def dunning_suspension():
        """Seed 000 "Account Suspension": the console of a suspended organisation shows
        only the payment prompt (what it may still open: dunning_views.FREE_ENDPOINTS)."""
        return dunning_views.restriction()

    @app.context_processor
    def inject_dunning_banner():
        """The dunning banner on every page (and no menu while suspended)."""
        return dunning_views.banner_context()


def _http_error(code, message, wants_json):
    def handler(exc):
        if code == 500:
            db.session.rollback()
        if wants_json():
            return json_error(code, getattr(exc, "description", None) if code != 500 else message)
        return render_template("error.html", code=code, message=message), code

    return handler


def json_error(status: int, message: str | None, fields: dict | None = None):
    body = {"error": {"status": status, "message": message or "Error"}}
    if fields:
        body["error"]["fields"] = fields
    return jsonify(body), status


def _locale() -> str:
    if current_user and current_user.is_authenticated:
        return current_user.org.locale or "en"
    return "en"


def _localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Stored times are naive UTC; show them in the viewer's organisation time zone."""
    if value is None:
        return ""
    tz = "UTC"
    if current_user and current_user.is_authenticated:
        tz = current_user.org.timezone or "UTC"
    aware = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    return aware.astimezone(ZoneInfo(tz)).strftime(fmt) + ("" if tz == "UTC" else "")
