"""``kassa doctor``: check an installation before (and after) a deploy.

One line per check, OK / WARN / FAIL with a hint; exit status 1 when anything
FAILs. Covers the configuration, the database and its migrations, Redis and the
workers, the plugins each provider enabled, each enabled gateway's credentials
(through the gateway's own verify hook, with a time limit) and whether the stored
secrets still decrypt with the current key. Secrets are never printed.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from .logs import redact

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DEFAULT_TIMEOUT = 10.0
MIN_SECRET_KEY_LENGTH = 32


@dataclass
class Check:
    name: str
    status: str
    detail: str
    hint: str = ""


def run_checks(app, *, timeout: float = DEFAULT_TIMEOUT, gateways: bool = True) -> list[Check]:
    """All checks, in order; checks that need the database are left out when it is unreachable."""
    checks = _config(app)
    database = _database(app)
    checks += database
    checks += _guarded("redis", _redis, app)
    if any(c.status == FAIL for c in database):
        return checks  # the rest reads tables that are missing or out of date
    providers = _providers()
    checks += _guarded("plugins", _plugins, app, providers)
    checks += _guarded("secrets", _secrets, app)
    if gateways:
        checks += _guarded("gateways", _gateways, app, providers, timeout)
    return checks


def _guarded(name: str, check, *args) -> list[Check]:
    """A check that raised is a FAIL line of its own, not the end of the report."""
    try:
        return check(*args)
    except Exception as exc:
        from .extensions import db

        db.session.rollback()
        return [Check(name, FAIL, f"the check itself failed: {redact(_short(exc))}", "see the error above")]


# ---------------------------------------------------------------- configuration

def _production(app) -> bool:
    return str(app.config.get("KASSA_ENV", "")).lower() == "production"


def _config(app) -> list[Check]:
    prod = _production(app)
    key = app.config.get("SECRET_KEY") or ""
    dev_file = Path(app.instance_path) / "secret_key"
    from_dev_file = dev_file.exists() and dev_file.read_text().strip() == key
    if not key:
        secret = Check("config.secret_key", FAIL, "SECRET_KEY is empty", "set KASSA_SECRET_KEY")
    elif from_dev_file:
        secret = Check("config.secret_key", FAIL if prod else OK,
                       f"the development key generated in {dev_file}",
                       "set KASSA_SECRET_KEY (the same on every host and process): it signs sessions and "
                       "encrypts gateway secrets" if prod else "")
    elif prod and not os.environ.get("KASSA_SECRET_KEY"):
        secret = Check("config.secret_key", FAIL, "KASSA_SECRET_KEY is not set in the environment",
                       "set KASSA_SECRET_KEY: it encrypts the stored gateway secrets, so keep it safe and stable")
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        secret = Check("config.secret_key", WARN, f"the key is short ({len(key)} characters)",
                       "use at least 32 random characters, e.g. `python -c 'import secrets; "
                       "print(secrets.token_urlsafe(48))'`, then re-enter gateway secrets")
    else:
        secret = Check("config.secret_key", OK, "set")
    checks = [secret]

    url = app.config.get("SQLALCHEMY_DATABASE_URI") or ""
    if not url:
        checks.append(Check("config.database_url", FAIL, "no database URL", "set KASSA_DATABASE_URL"))
    else:
        shown = make_url(url).render_as_string(hide_password=True)
        sqlite = url.startswith("sqlite")
        checks.append(Check("config.database_url", WARN if sqlite and prod else OK, shown,
                            "use PostgreSQL in production (KASSA_DATABASE_URL=postgresql+psycopg://...)"
                            if sqlite and prod else ""))

    debug = bool(app.debug or app.config.get("DEBUG"))
    testing = bool(app.config.get("TESTING"))
    if prod and (debug or testing):
        checks.append(Check("config.debug", FAIL, "DEBUG or TESTING is on in production",
                            "unset FLASK_DEBUG; never run the debugger where users can reach it"))
    else:
        checks.append(Check("config.debug", WARN if debug else OK, "debug on" if debug else "debug off",
                            "unset FLASK_DEBUG" if debug else ""))
    if prod:
        secure = app.config.get("SESSION_COOKIE_SECURE")
        checks.append(Check("config.cookies", OK if secure else WARN,
                            "secure cookies" if secure else "session cookies are sent over plain HTTP too",
                            "" if secure else "serve over TLS and set KASSA_SECURE_COOKIES=1"))
        if not app.config.get("KASSA_SMTP_URL"):
            checks.append(Check("config.smtp_url", WARN, "KASSA_SMTP_URL is not set",
                                "mail of providers without their own SMTP settings (Plugins » Email) is only "
                                "written to instance/outbox: set KASSA_SMTP_URL=smtp://user:pw@host:587?starttls=1"))
        if not app.config.get("KASSA_REDIS_URL"):
            checks.append(Check("config.redis_url", WARN, "KASSA_REDIS_URL is not set",
                                "without Redis, jobs run inside the web process and nothing runs the schedule "
                                "under gunicorn: set KASSA_REDIS_URL and run `kassa worker`"))
    return checks


# ---------------------------------------------------------------- database

def _database(app) -> list[Check]:
    from .extensions import db
    from .web.health import current_revisions, migration_heads

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(current_revisions(conn))
    except Exception as exc:
        return [Check("database", FAIL, f"unreachable: {redact(_short(exc))}",
                      "check KASSA_DATABASE_URL, that the server runs and that this host may connect")]
    checks = [Check("database", OK, f"reachable ({db.engine.dialect.name})")]
    heads = set(migration_heads(app))
    if current == heads:
        checks.append(Check("database.migrations", OK, f"at head {', '.join(sorted(heads))}"))
    elif not current:
        checks.append(Check("database.migrations", FAIL, "the database was never migrated",
                            "run `kassa db upgrade`"))
    else:
        from alembic.script import ScriptDirectory

        known = {s.revision for s in ScriptDirectory.from_config(
            app.extensions["migrate"].migrate.get_config()).walk_revisions()}
        unknown = current - known
        if unknown:
            checks.append(Check("database.migrations", FAIL,
                                f"the database is at {', '.join(sorted(unknown))}, unknown to this code",
                                "a newer release migrated it: deploy that release (or a plugin is missing)"))
        else:
            checks.append(Check("database.migrations", FAIL,
                                f"at {', '.join(sorted(current))}, head is {', '.join(sorted(heads))}",
                                "run `kassa db upgrade`"))
    return checks


def _short(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message[:200]}" if message else type(exc).__name__


# ---------------------------------------------------------------- redis

def _redis(app) -> list[Check]:
    url = app.config.get("KASSA_REDIS_URL")
    if not url:
        return [Check("redis", OK, "not configured: jobs run in the web process (fine for one process)")]
    from rq import Queue, Worker

    from .jobs import QUEUE_NAME
    from .web.health import redis_client

    try:
        connection = redis_client(app)
        connection.ping()
        depth = Queue(QUEUE_NAME, connection=connection).count
        workers = Worker.count(connection=connection)
    except Exception as exc:
        return [Check("redis", FAIL, f"unreachable at {_safe_url(url)}: {redact(_short(exc))}",
                      "check KASSA_REDIS_URL and that Redis runs")]
    checks = [Check("redis", OK, f"reachable ({_safe_url(url)})")]
    if workers:
        checks.append(Check("redis.workers", OK, f"{workers} worker(s), {depth} job(s) queued"))
    else:
        checks.append(Check("redis.workers", WARN, f"no worker registered, {depth} job(s) queued",
                            "start `kassa worker` (jobs and scheduled jobs wait until one runs)"))
    return checks


def _safe_url(url: str) -> str:
    """A Redis URL with its password masked."""
    return redact(url)


# ---------------------------------------------------------------- plugins

def _providers():
    from .extensions import db
    from .models import Organisation

    return db.session.execute(select(Organisation.id, Organisation.name)
                              .where(Organisation.kind == "provider").order_by(Organisation.id)).all()


def _plugins(app, providers) -> list[Check]:
    from .extensions import db
    from .models import PluginState

    host = app.extensions["kassa_plugins"]
    names = {pid: name for pid, name in providers}
    enabled_rows = db.session.execute(select(PluginState.provider_id, PluginState.plugin)
                                      .where(PluginState.enabled.is_(True))).all()
    checks = []
    enabled_broken = set()
    for provider_id, plugin in sorted(enabled_rows):
        record = host.records.get(plugin)
        who = f"provider {provider_id} ({names.get(provider_id, '?')})"
        if record is None:
            checks.append(Check(f"plugin.{plugin}", FAIL, f"enabled for {who} but not installed",
                                f"install the plugin's distribution again, or disable {plugin} in the console"))
        elif record.broken:
            enabled_broken.add(plugin)
            checks.append(Check(f"plugin.{plugin}", FAIL, f"enabled for {who} but broken: {redact(record.error)}",
                                "fix or reinstall the plugin (`kassa plugins list` shows the error)"))
    for name, record in sorted(host.records.items()):
        if record.broken and name not in enabled_broken:
            checks.append(Check(f"plugin.{name}", WARN, f"installed but broken: {redact(record.error)}",
                                "no provider enabled it; fix or uninstall it"))
    checks += _plugin_failures(providers)
    if not checks:
        loaded = sum(1 for r in host.records.values() if not r.broken)
        checks.append(Check("plugins", OK, f"{loaded} loaded, none broken, every enabled plugin installed"))
    return checks


def _plugin_failures(providers) -> list[Check]:
    """Recent unresolved plugin failures, when this installation records them."""
    try:
        from .services import plugin_health
    except ImportError:
        return []
    failing = getattr(plugin_health, "failing", None)
    if failing is None:
        return []
    checks, seen = [], set()
    for provider_id, name in providers:
        try:
            found = failing(provider_id)
        except Exception as exc:
            from .extensions import db

            db.session.rollback()
            return [Check("plugin.failures", WARN, f"could not read the plugin failure log: {type(exc).__name__}",
                          "run `kassa db upgrade`")]
        for plugin, health in sorted(found.items()):
            key = (plugin, health.hook, health.error, health.last_at)
            if key in seen:  # a failure outside any provider shows for every provider: report it once
                continue
            seen.add(key)
            checks.append(Check(f"plugin.{plugin}.failures", WARN,
                                f"{health.count_24h} failure(s) in 24 h for provider {provider_id} ({name}), last in "
                                f"{health.hook}: {redact(health.error)[:200]}",
                                "see the Plugins page; mark it resolved there once fixed"))
    return checks


# ---------------------------------------------------------------- secrets and gateways

def _secrets(app) -> list[Check]:
    from .crypto import decrypt
    from .extensions import db
    from .models import PluginState
    from .services.plugin_settings import ENC

    stored, broken = 0, []
    for state in db.session.scalars(select(PluginState).order_by(PluginState.provider_id, PluginState.plugin)):
        for field, value in sorted((state.settings or {}).items()):
            if isinstance(value, dict) and ENC in value:
                stored += 1
                try:
                    decrypt(value[ENC], app.config["SECRET_KEY"])
                except ValueError:
                    broken.append(f"provider {state.provider_id} {state.plugin}.{field}")
    if broken:
        return [Check("secrets", FAIL, f"{len(broken)} of {stored} stored secret(s) cannot be decrypted with the "
                                      f"current key: {', '.join(broken[:5])}{' ...' if len(broken) > 5 else ''}",
                      "KASSA_SECRET_KEY differs from the key they were stored with: restore that key, "
                      "or enter these secrets again in the console")]
    return [Check("secrets", OK, f"{stored} stored secret(s) decrypt with the current key")]


def _gateways(app, providers, timeout: float) -> list[Check]:
    from .services import gateways

    checks = []
    for provider_id, name in providers:
        for gateway_id in sorted(gateways.enabled(provider_id)):
            checks.append(_verify(app, provider_id, name, gateway_id, timeout))
    if not checks:
        checks.append(Check("gateways", OK, "no online gateway enabled (offline payments only)"))
    return checks


def _verify(app, provider_id: int, provider_name: str, gateway_id: str, timeout: float) -> Check:
    """Call the gateway's verify hook on a thread, so a gateway that hangs costs ``timeout`` at most."""
    outcome: dict = {}

    def call():
        from .extensions import db
        from .services import gateways

        with app.app_context():
            try:
                outcome["result"] = gateways.call(provider_id, "kassa_gateway_verify", gateway_id)
            except Exception as exc:
                outcome["error"] = exc
            finally:
                db.session.remove()

    worker = threading.Thread(target=call, name=f"doctor-{gateway_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    name = f"gateway.{provider_id}.{gateway_id}"
    where = f"provider {provider_id} ({provider_name})"
    hint = "check the gateway's settings in the console (Plugins)"
    if worker.is_alive():
        return Check(name, FAIL, f"{where}: no answer within {timeout:g} s", "check outbound network access")
    if "error" in outcome:
        exc = outcome["error"]
        message = getattr(exc, "message", None) or _short(exc)
        return Check(name, FAIL, f"{where}: {redact(str(message))}", hint)
    result = outcome.get("result")
    if getattr(result, "ok", False):
        return Check(name, OK, f"{where}: {redact(result.message)}")
    return Check(name, FAIL, f"{where}: {redact(getattr(result, 'message', 'credentials refused'))}", hint)


# ---------------------------------------------------------------- output

def format_lines(checks: list[Check]) -> list[str]:
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        line = f"{c.status:<4} {c.name:<{width}}  {c.detail}"
        if c.hint:
            line += f"  -> {c.hint}"
        lines.append(line)
    counts = {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failure(s)")
    return lines


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=float,
              help="Seconds to wait for each gateway's credential check.")
@click.option("--skip-gateways", is_flag=True, help="Do not contact the payment gateways.")
@with_appcontext
def doctor_command(as_json, timeout, skip_gateways):
    """Check configuration, database, Redis, plugins, gateway credentials and stored secrets."""
    checks = run_checks(current_app._get_current_object(), timeout=timeout, gateways=not skip_gateways)
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for line in format_lines(checks):
            click.echo(line)
    if failed:
        raise SystemExit(1)
