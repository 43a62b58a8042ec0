"""``kassa billing``: start a billing run, follow its progress, resume it."""
from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group("billing")
def billing_group():
    """Billing runs: start, status, resume."""


def _fail_on_service_errors(func):
    """Service refusals and an unreachable Redis become a one-line error, exit code 1."""
    from functools import wraps

    @wraps(func)
    def wrapper(*args, **kwargs):
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeout

        from .services.errors import ServiceError

        try:
            return func(*args, **kwargs)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None
        except (RedisConnectionError, RedisTimeout) as exc:
            raise click.ClickException(f"Redis is not reachable ({exc}); try again when it is back "
                                       f"(resuming a run is safe to repeat).") from None

    return wrapper


def _provider_id(given: int | None) -> int:
    from sqlalchemy import select

    from .extensions import db
    from .models import Organisation

    if given is not None:
        org = db.session.get(Organisation, given)
        if org is None or org.kind != "provider":
            raise click.BadParameter(f"no provider {given}", param_hint="--provider")
        return org.id
    ids = list(db.session.scalars(select(Organisation.id).where(Organisation.kind == "provider").limit(2)))
    if len(ids) != 1:
        raise click.UsageError("There is more than one provider: choose one with --provider ID." if ids else
                               "There is no provider yet.")
    return ids[0]


def describe(info: dict) -> str:
    """One progress line of a run."""
    line = (f"Billing run {info['id']} ({info['status']}, as of {info['as_of']}): "
            f"{info['done']}/{info['total']} subscriptions done, {info['invoices_created']} invoices made, "
            f"{info['skipped']} skipped (not due), {info['failed']} failed")
    jobs = info.get("jobs")
    if jobs:
        line += (f"; chunk jobs: {jobs['queued'] + jobs['scheduled']} waiting, {jobs['started']} running, "
                 f"{jobs['failed']} failed")
    return line


def _print_failures(info: dict) -> None:
    for error in info["errors"]:
        click.echo(f"  failed: subscription {error['subscription_id']}: {error['error']}")


def _wait(run_id: int, interval: float, timeout: float) -> dict:
    """Print a progress line whenever it changes, until the run has finished."""
    from .extensions import db
    from .services import billing_run

    deadline = time.monotonic() + timeout if timeout else None
    last = None
    while True:
        db.session.rollback()  # a fresh snapshot each time
        info = billing_run.progress(run_id)
        line = describe(info)
        if line != last:
            click.echo(line)
            last = line
        if info["status"] == "finished":
            return info
        if deadline is not None and time.monotonic() > deadline:
            raise click.ClickException(f"Billing run {run_id} has not finished after {timeout:g} s "
                                       f"(are workers running? `kassa billing resume {run_id}` re-plans it).")
        time.sleep(interval)


@billing_group.command("run")
@click.option("--provider", "provider_id", type=int, help="The provider (needed when there are several).")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Bill periods ended by this day "
              "(default: today).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Print progress until the run is done.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between progress lines.")
@click.option("--timeout", type=click.FloatRange(min=0), default=0, help="Give up waiting after this many "
              "seconds (0: never).")
@with_appcontext
@_fail_on_service_errors
def run_command(provider_id, as_of, wait, interval, timeout):
    """Start a billing run: its chunks go to the RQ workers when KASSA_REDIS_URL is
    set (run `kassa worker` beside it), else the run is done here."""
    from .services import billing_run

    provider = _provider_id(provider_id)
    distributed = bool(current_app.config.get("KASSA_REDIS_URL"))
    run = billing_run.start(None, provider, as_of.date() if as_of else None, background=False,
                            distribute=distributed)
    info = billing_run.progress(run.id)
    if wait and info["status"] != "finished":
        info = _wait(run.id, interval, timeout)
    else:
        click.echo(describe(info))
    _print_failures(info)


@billing_group.command("status")
@click.argument("run_id", type=int, required=False)
@click.option("--provider", "provider_id", type=int, help="Without RUN_ID: the latest run of this provider.")
@with_appcontext
@_fail_on_service_errors
def status_command(run_id, provider_id):
    """Progress and result of a run (default: the latest), with every failure and its reason."""
    from sqlalchemy import select

    from .extensions import db
    from .models import BillingRun
    from .services import billing_run

    if run_id is None:
        query = select(BillingRun.id).order_by(BillingRun.id.desc()).limit(1)
        if provider_id is not None:
            query = query.where(BillingRun.provider_id == provider_id)
        run_id = db.session.scalar(query)
        if run_id is None:
            raise click.ClickException("No billing run yet.")
    info = billing_run.progress(run_id)
    click.echo(describe(info))
    _print_failures(info)


@billing_group.command("resume")
@click.argument("run_id", type=int)
@click.option("--wait/--no-wait", default=False, show_default=True, help="Print progress until the run is done.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0), default=0)
@with_appcontext
@_fail_on_service_errors
def resume_command(run_id, wait, interval, timeout):
    """Bill again what a run has not finished (a worker killed mid-chunk, jobs lost
    with Redis' data). Safe to repeat: nothing is billed or counted twice."""
    from .services import billing_run

    done = billing_run.resume(run_id)
    if done.chunks:
        click.echo(f"Billing run {run_id}: {done.remaining} subscriptions still due ({done.busy} held by a "
                   f"running chunk); {done.chunks} chunk jobs enqueued, {done.dropped} waiting jobs replaced.")
    elif done.status == "queued":
        click.echo(f"Billing run {run_id}: its start job was queued again.")
    else:
        click.echo(f"Billing run {run_id}: {done.remaining} subscriptions were still due "
                   f"({done.busy} held by a running chunk).")
    info = billing_run.progress(run_id)
    if wait and info["status"] != "finished":
        info = _wait(run_id, interval, timeout)
    else:
        click.echo(describe(info))
    _print_failures(info)
