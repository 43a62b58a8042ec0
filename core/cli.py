"""The ``kassa`` command: Flask's CLI group with Kassa's own commands."""
from __future__ import annotations

import os
import sys
import threading

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from . import create_app


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main():
    """Kassa billing: run `kassa COMMAND --help` for details."""


@main.command("demo")
@click.option("--force", is_flag=True, help="Seed even if a provider already exists.")
@with_appcontext
def demo_command(force):
    """Seed the demo provider, resellers, customers and users."""
    from .demo import seed_demo
    from .models import Organisation

    if not force and current_app.extensions["sqlalchemy"].session.scalar(select(Organisation.id).limit(1)):
        click.echo("Demo data already present; nothing seeded.")
    else:
        seed_demo()
    from .demo import print_logins

    print_logins(click.echo)


@main.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int)
@with_appcontext
def serve_command(host, port):
    """Serve the console with jobs and the schedule running in this process."""
    from .jobs.schedule import run_ticker

    app = current_app._get_current_object()
    if not app.config.get("KASSA_REDIS_URL"):
        run_ticker(app)
        click.echo("Jobs run in this process (KASSA_REDIS_URL unset).")
    else:
        click.echo("Jobs go to Redis: run `kassa worker` beside this.")
    click.echo(f"Kassa console on http://{host}:{port}")
    from werkzeug.serving import run_simple

    run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--tick/--no-tick", default=True, help="Enqueue scheduled jobs from this worker too.")
@with_appcontext
def worker_command(burst, tick):
    """An RQ worker with the scheduler, inside the app context (needs KASSA_REDIS_URL)."""
    from .jobs import QUEUE_NAME, redis_connection
    from .jobs.schedule import run_ticker
    from .jobs.worker import KassaWorker

    app = current_app._get_current_object()
    if not app.config.get("KASSA_REDIS_URL"):
        raise click.ClickException("Set KASSA_REDIS_URL to run a worker; without it jobs run inside `kassa serve`.")
    stop = threading.Event()
    if tick and not burst:
        run_ticker(app, stop=stop)
    KassaWorker.kassa_app = app
    worker = KassaWorker([QUEUE_NAME], connection=redis_connection())
    try:
        worker.work(burst=burst, with_scheduler=True)
    finally:
        stop.set()


@main.group("plugins")
def plugins_group():
    """Installed plugins."""


@plugins_group.command("list")
@with_appcontext
def plugins_list():
    """List installed plugins with version, hooks and errors."""
    from sqlalchemy.exc import SQLAlchemyError

    from .extensions import db
    from .plugins import host
    from .services import plugin_health

    try:
        failing = plugin_health.failing()  # unresolved failures, every provider
    except SQLAlchemyError:  # a database not migrated yet: the installed plugins are still worth listing
        db.session.rollback()
        failing = {}
        click.echo("(failures not shown: the database is not reachable or not migrated; run `kassa db upgrade`)")
    for record in sorted(host().records.values(), key=lambda r: r.name):
        state = "BROKEN" if record.broken else ("built-in" if record.builtin else "installed")
        state += ", FAILING" if record.name in failing else ""
        click.echo(f"{record.name:28} {record.distribution:26} {record.version:10} {state}")
        if record.name in failing:
            f = failing[record.name]
            click.echo(f"    failing: {f.count_24h} in the last 24 h; last in {f.hook} at "
                       f"{f.last_at:%Y-%m-%d %H:%M} UTC: {f.error}")
        if record.broken:
            click.echo(f"    error: {record.error}")
        elif record.hooks:
            click.echo(f"    hooks: {', '.join(record.hooks)}")


@main.group("users")
def users_group():
    """Users."""


@users_group.command("create")
@click.option("--org-id", type=int, required=True)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def users_create(org_id, email, name, role, password):
    """Create a user (for example the first cloud admin of a provider)."""
    from .extensions import db
    from .models import Organisation
    from .services import users
    from .services.errors import ServiceError

    org = db.session.get(Organisation, org_id)
    if org is None:
        raise click.ClickException(f"No organisation {org_id}.")
    try:
        user = users.create_user(None, org, email=email, name=name, password=password, role=role,
                                 primary=not org.is_provider)
    except ServiceError as exc:
        raise click.ClickException(f"{exc.message} {exc.field_errors or ''}") from None
    click.echo(f"Created user {user.id} <{user.email}> as {user.role} in {org.name}.")


from .cli_plugin import register as register_plugin_commands  # noqa: E402

register_plugin_commands(main, plugins_list)  # kassa plugin new|docs|list

from .doctor import doctor_command  # noqa: E402

main.add_command(doctor_command)  # kassa doctor

from .cli_billing import billing_group  # noqa: E402
main.add_command(billing_group)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
