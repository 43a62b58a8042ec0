"""Operations: health endpoints, structured logs with redaction, `kassa doctor`,
the schedule under N workers, and a real gunicorn serving the app."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from kassa import create_app
from kassa.contracts import GatewayInfo, VerifyResult
from kassa.doctor import FAIL, OK, WARN, doctor_command, run_checks
from kassa.hookspecs import hookimpl
from kassa.logs import configure_logging, job_context, redact
from kassa.testing.pytest_plugin import free_port
from kassa.testing.services import require_redis

SECRET_PW = "s3cret-db-pw"


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def stamped(app, db):
    """The test schema (made by create_all, equal to the migrations' result) stamped at head,
    as `kassa db upgrade` leaves a real database; unstamped again afterwards."""
    import flask_migrate

    flask_migrate.stamp(revision="heads")
    yield
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def other_app(kassa_config):
    """Factory: an app over another database URL (nothing is created in it)."""
    made = []

    def make(url, **config):
        application = create_app(dict(kassa_config, SQLALCHEMY_DATABASE_URI=url, **config))
        made.append(application)
        return application

    yield make
    for application in made:
        with application.app_context():
            application.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def json_logs(app):
    configure_logging({"KASSA_LOG_FORMAT": "json", "KASSA_LOG_LEVEL": "DEBUG"})
    yield
    configure_logging(app.config)


@pytest.fixture
def redis_url(app, monkeypatch):
    """The session app pointed at the real Redis (db from KASSA_TEST_REDIS_URL), flushed around the test."""
    from kassa.jobs import redis_connection

    url = require_redis()
    monkeypatch.setitem(app.config, "KASSA_REDIS_URL", url)
    connection = redis_connection(url)
    connection.flushdb()
    yield url
    connection.flushdb()


def _json_lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _closed_port() -> int:
    return free_port()  # bound then released: nothing listens there


# ---------------------------------------------------------------- health

def test_live_needs_no_database(other_app):
    broken = other_app(f"postgresql+psycopg://kassa:{SECRET_PW}@127.0.0.1:{_closed_port()}/kassa")
    response = broken.test_client().get("/health/live")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_ready_when_database_answers_and_is_at_head(app, db, stamped):
    response = app.test_client().get("/health/ready")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ready" and "failed" not in body
    assert body["checks"]["database"]["migrations"]["at_head"] is True
    assert "redis" not in body["checks"]  # not configured: not checked


def test_ready_fails_before_migrations(app, db):
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json["failed"] == ["database"]
    assert response.json["checks"]["database"]["migrations"]["current"] == []
    assert "kassa db upgrade" in response.json["checks"]["database"]["error"]


@pytest.mark.parametrize("kind", ["postgres-closed-port", "sqlite-missing-dir"])
def test_ready_503_when_database_unreachable_and_nothing_leaks(other_app, kind, tmp_path):
    port = _closed_port()
    url = (f"postgresql+psycopg://kassa:{SECRET_PW}@127.0.0.1:{port}/kassa" if kind.startswith("postgres")
           else f"sqlite:///{tmp_path}/no-such-dir/kassa.db")
    response = other_app(url).test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json["failed"] == ["database"]
    assert response.json["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    raw = response.get_data(as_text=True)
    for leak in (SECRET_PW, "127.0.0.1", str(port), "kassa:", str(tmp_path)):
        assert leak not in raw


def test_ready_503_when_redis_configured_but_down(app, db, stamped, monkeypatch):
    port = _closed_port()
    monkeypatch.setitem(app.config, "KASSA_REDIS_URL", f"redis://:{SECRET_PW}@127.0.0.1:{port}/0")
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json["failed"] == ["redis"]
    assert response.json["checks"]["database"]["ok"] is True
    assert response.json["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    raw = response.get_data(as_text=True)
    assert SECRET_PW not in raw and str(port) not in raw


def test_ready_reports_queue_depth_and_workers_on_real_redis(app, db, stamped, redis_url):
    from kassa.jobs import QUEUE_NAME, enqueue, redis_connection
    from kassa.jobs.worker import KassaWorker

    client = app.test_client()
    body = client.get("/health/ready").json
    assert body["status"] == "ready"
    assert body["checks"]["redis"]["queue_depth"] == 0 and body["checks"]["redis"]["workers"] == 0
    enqueue("kassa.jobs.tasks.prune_login_attempts")
    worker = KassaWorker([QUEUE_NAME], connection=redis_connection(redis_url))
    worker.register_birth()
    try:
        body = client.get("/health/ready").json
    finally:
        worker.register_death()
    assert body["checks"]["redis"]["queue_depth"] == 1 and body["checks"]["redis"]["workers"] == 1


# ---------------------------------------------------------------- logs

def test_json_access_log_carries_request_id_status_and_duration(app, db, json_logs, capsys):
    client = app.test_client()
    response = client.get("/login", headers={"X-Request-ID": "req-42.abc"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-42.abc"
    access = [e for e in _json_lines(capsys.readouterr().err) if e["logger"] == "kassa.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42.abc" and line["status"] == 200
    assert line["method"] == "GET" and line["path"] == "/login" and line["level"] == "INFO"
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert datetime.fromisoformat(line["time"].replace("Z", "+00:00")).tzinfo == timezone.utc


def test_request_id_is_generated_when_missing_or_unsafe(app, db, json_logs, capsys):
    client = app.test_client()
    generated = client.get("/health/live").headers["X-Request-ID"]
    forged = client.get("/health/live", headers={"X-Request-ID": "x\" injected=1 " + "a" * 200})
    assert len(generated) == 32 and forged.headers["X-Request-ID"] not in ("", generated)
    assert "injected" not in forged.headers["X-Request-ID"]
    access = [e for e in _json_lines(capsys.readouterr().err) if e["logger"] == "kassa.access"]
    assert [e["level"] for e in access] == ["DEBUG", "DEBUG"]  # probes stay out of INFO


def test_signed_in_requests_log_user_and_org(app, db, admin, console, json_logs, capsys):
    signed_in = console(admin)
    capsys.readouterr()
    assert signed_in.get("/profile").status_code == 200
    access = [e for e in _json_lines(capsys.readouterr().err) if e["logger"] == "kassa.access"]
    assert access[-1]["user_id"] == admin.id and access[-1]["org_id"] == admin.org_id


def test_log_lines_inside_a_request_carry_its_context(app, db, json_logs, capsys):
    log = logging.getLogger("kassa.test")
    with app.test_request_context("/some/path", method="POST"):
        app.preprocess_request()
        log.warning("inside")
    inside = next(e for e in _json_lines(capsys.readouterr().err) if e["message"] == "inside")
    assert inside["method"] == "POST" and inside["path"] == "/some/path" and len(inside["request_id"]) == 32


def test_secrets_are_redacted_in_messages_fields_and_tracebacks(app, json_logs, capsys):
    log = logging.getLogger("kassa.test")
    log.info("call with headers %s", {"Authorization": "Bearer tok_abcdefghijkl", "Accept": "json"})
    log.info("form %s", {"email": "a@b.example", "password": "hunter2-pw"})
    log.info("fields", extra={"headers": {"Authorization": "Basic dXNlcjpwdw=="}, "api_key": "k-123456",
                              "card_number": "4111111111111111", "amount": "10.00"})
    try:
        raise RuntimeError("gateway said: secret_key=sk_live_abcdefgh123 for card 4242 4242 4242 4242")
    except RuntimeError:
        log.exception("charge failed")
    err = capsys.readouterr().err
    for secret in ("tok_abcdefghijkl", "hunter2-pw", "dXNlcjpwdw==", "k-123456", "4111111111111111",
                   "sk_live_abcdefgh123", "4242 4242 4242 4242"):
        assert secret not in err
    lines = _json_lines(err)
    assert "[REDACTED]" in lines[0]["message"] and "'Accept': 'json'" in lines[0]["message"]
    assert "a@b.example" in lines[1]["message"]
    assert lines[2]["headers"] == {"Authorization": "[REDACTED]"} and lines[2]["api_key"] == "[REDACTED]"
    assert lines[2]["card_number"] == "[REDACTED]" and lines[2]["amount"] == "10.00"
    assert "RuntimeError" in lines[3]["exception"] and "[CARD ****4242]" in lines[3]["exception"]


def test_redact_keeps_ordinary_text():
    assert redact("postgresql+psycopg://kassa:pw123@db.internal/kassa") == \
        "postgresql+psycopg://kassa:[REDACTED]@db.internal/kassa"
    assert redact("invoice INV-2026-0001 total 1234567890123 paise") == \
        "invoice INV-2026-0001 total 1234567890123 paise"  # not a Luhn-valid card number
    assert redact("idempotency key pay-17-3 charged 499.00 INR") == "idempotency key pay-17-3 charged 499.00 INR"
    assert redact("Authorization: Bearer abc.def.ghi") == "Authorization: [REDACTED]"
    assert redact("card 4000 0566 5566 5556 declined") == "card [CARD ****5556] declined"


def test_text_format_is_the_default_and_carries_context(app, db, capsys):
    assert app.config["KASSA_LOG_FORMAT"] == "text"
    app.test_client().get("/login", headers={"X-Request-ID": "text-req-1"})
    access = [line for line in capsys.readouterr().err.splitlines() if " kassa.access " in line]
    assert access and "GET /login 200" in access[-1] and "request_id=text-req-1" in access[-1]
    assert not access[-1].startswith("{")


def test_production_settings_come_from_the_environment(monkeypatch, tmp_path):
    from kassa.config import from_environment

    monkeypatch.setenv("KASSA_LOG_FORMAT", "json")
    monkeypatch.setenv("KASSA_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("KASSA_SMTP_URL", "smtp://mailer:pw@127.0.0.1:2525")
    config = from_environment(str(tmp_path))
    assert (config["KASSA_LOG_FORMAT"], config["KASSA_LOG_LEVEL"]) == ("json", "WARNING")
    assert config["KASSA_SMTP_URL"] == "smtp://mailer:pw@127.0.0.1:2525"


def test_bad_log_settings_stop_start_up_with_a_clear_message(kassa_config):
    with pytest.raises(ValueError, match="KASSA_LOG_FORMAT"):
        create_app(dict(kassa_config, KASSA_LOG_FORMAT="xml"))
    with pytest.raises(ValueError, match="KASSA_LOG_LEVEL"):
        create_app(dict(kassa_config, KASSA_LOG_LEVEL="LOUD"))


def test_job_context_names_the_job(json_logs, capsys):
    class Job:
        id, func_name = "job-123", "kassa.jobs.tasks.prune_login_attempts"

    with job_context(Job()):
        logging.getLogger("kassa.test").info("in job")
    logging.getLogger("kassa.test").info("after job")
    inside, after = _json_lines(capsys.readouterr().err)[-2:]
    assert inside["job_id"] == "job-123" and inside["job_func"] == Job.func_name
    assert "job_id" not in after


def test_rq_worker_logs_carry_job_id(app, db, redis_url, json_logs, capsys, monkeypatch):
    from kassa.jobs import QUEUE_NAME, enqueue, redis_connection
    from kassa.jobs.worker import KassaWorker

    job = enqueue("kassa.jobs.tasks.prune_login_attempts")
    monkeypatch.setattr(KassaWorker, "kassa_app", app)
    worker = KassaWorker([QUEUE_NAME], connection=redis_connection(redis_url))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert worker.work(burst=True)
    finally:
        for sig, handler in handlers.items():  # RQ installs its own; give pytest its own back
            signal.signal(sig, handler)
    lines = _json_lines(capsys.readouterr().err)
    in_job = [e for e in lines if e.get("job_id") == job.id]
    assert in_job and all(e["job_func"] == "kassa.jobs.tasks.prune_login_attempts" for e in in_job)
    assert any(e["logger"].startswith("rq.") for e in in_job)


# ---------------------------------------------------------------- schedule under N workers

def test_n_workers_ticking_at_once_enqueue_each_scheduled_job_once(app, db, redis_url, clock):
    """`kassa worker` ticks the schedule in every worker; the Redis SET NX claim makes it run once."""
    from kassa.jobs import rq_queue, schedule

    clock.set(datetime(2031, 5, 1, 0, 30, tzinfo=timezone.utc))
    jobs = [j.id for j in schedule.scheduled_jobs()]
    assert jobs
    barrier, started = threading.Barrier(4), []

    def worker():
        with app.app_context():
            barrier.wait()
            started.extend(schedule.tick())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(started) == sorted(jobs)
    assert rq_queue(app).count == len(jobs)
    clock.advance(days=1)
    assert "prune-login-attempts" in schedule.tick()  # a new slot is claimed again


# ---------------------------------------------------------------- doctor

def _by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_passes_on_a_healthy_app(app, db, stamped, fake_gateway, provider):
    checks = run_checks(app)
    assert [c for c in checks if c.status == FAIL] == []
    named = _by_name(checks)
    assert named["database.migrations"].status == OK
    assert named["secrets"].status == OK and named["secrets"].detail.startswith("2 stored")
    assert named[f"gateway.{provider.id}.fakepay"].status == OK
    result = app.test_cli_runner().invoke(doctor_command, ["--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True


def test_doctor_fails_on_a_wrong_secret_key(app, db, stamped, fake_gateway, provider, monkeypatch):
    monkeypatch.setitem(app.config, "SECRET_KEY", "a-rotated-key-that-did-not-encrypt-anything")
    result = app.test_cli_runner().invoke(doctor_command, [])
    assert result.exit_code == 1
    secrets_line = next(line for line in result.output.splitlines() if " secrets " in line)
    assert secrets_line.startswith("FAIL") and "2 of 2 stored secret(s) cannot be decrypted" in secrets_line
    assert f"provider {provider.id} fakegateway.api_key" in secrets_line
    gateway_line = next(line for line in result.output.splitlines() if f"gateway.{provider.id}.fakepay" in line)
    assert gateway_line.startswith("FAIL") and "KASSA_SECRET_KEY" in gateway_line
    for secret in ("good-key", "whsec_fake", app.config["SECRET_KEY"]):
        assert secret not in result.output


def test_doctor_fails_on_a_bad_gateway_credential(app, db, stamped, fake_gateway, provider, admin):
    from kassa.services import plugin_settings

    plugin_settings.save_settings(admin, "fakegateway", {"api_key": "revoked-key"})
    check = _by_name(run_checks(app))[f"gateway.{provider.id}.fakepay"]
    assert check.status == FAIL and "FakePay refused the API key" in check.detail
    assert "revoked-key" not in check.detail


class _Misspelt:
    @hookimpl
    def kassa_gateway(self):  # no such hook: the plugin is recorded as broken
        return []


def test_doctor_fails_when_an_enabled_plugin_is_broken(app, db, stamped, provider):
    from kassa.clock import utcnow_naive
    from kassa.models import PluginState

    host = app.extensions["kassa_plugins"]
    record = host.register(_Misspelt(), "misspelt", builtin=False, distribution="kassa-misspelt", version="1.0")
    try:
        assert record.broken
        assert _by_name(run_checks(app))["plugin.misspelt"].status == WARN  # installed, nobody uses it
        db.session.add(PluginState(provider_id=provider.id, plugin="misspelt", enabled=True, settings={},
                                   updated_at=utcnow_naive()))
        db.session.commit()
        check = _by_name(run_checks(app))["plugin.misspelt"]
        assert check.status == FAIL and "broken" in check.detail and "kassa_gateway" in check.detail
        host.records.pop("misspelt")  # the distribution uninstalled, the provider's switch still on
        check = _by_name(run_checks(app))["plugin.misspelt"]
        assert check.status == FAIL and "not installed" in check.detail
    finally:
        host.records.pop("misspelt", None)


def test_doctor_reports_recent_plugin_failures(app, db, stamped, provider):
    plugin_health = pytest.importorskip("kassa.services.plugin_health")
    from kassa.clock import utcnow_naive
    from kassa.models.plugin_health import PluginFailureLog

    moment = utcnow_naive()
    db.session.add(PluginFailureLog(provider_id=provider.id, plugin="builtin.pdf", hour=moment.replace(
        minute=0, second=0, microsecond=0), hook="kassa_render", error="RuntimeError: font missing", count=3,
        last_at=moment))
    db.session.commit()
    assert "builtin.pdf" in plugin_health.failing(provider.id)
    check = _by_name(run_checks(app))["plugin.builtin.pdf.failures"]
    assert check.status == WARN and "3 failure(s)" in check.detail and "font missing" in check.detail


def test_doctor_fails_when_redis_is_unreachable(app, db, stamped, monkeypatch):
    monkeypatch.setitem(app.config, "KASSA_REDIS_URL", f"redis://:{SECRET_PW}@127.0.0.1:{_closed_port()}/0")
    result = app.test_cli_runner().invoke(doctor_command, ["--skip-gateways"])
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if line.split()[1] == "redis")
    assert line.startswith("FAIL") and "unreachable" in line and SECRET_PW not in result.output


def test_doctor_warns_without_workers_on_real_redis(app, db, stamped, redis_url):
    from kassa.jobs import QUEUE_NAME, redis_connection
    from kassa.jobs.worker import KassaWorker

    named = _by_name(run_checks(app, gateways=False))
    assert named["redis"].status == OK and named["redis.workers"].status == WARN
    worker = KassaWorker([QUEUE_NAME], connection=redis_connection(redis_url))
    worker.register_birth()
    try:
        assert _by_name(run_checks(app, gateways=False))["redis.workers"].status == OK
    finally:
        worker.register_death()


def test_doctor_fails_before_migrations_and_stops_there(app, db, provider):
    checks = run_checks(app)
    named = _by_name(checks)
    assert named["database.migrations"].status == FAIL and "kassa db upgrade" in named["database.migrations"].hint
    assert "secrets" not in named


def test_doctor_fails_on_an_unreachable_database(other_app):
    broken = other_app(f"postgresql+psycopg://kassa:{SECRET_PW}@127.0.0.1:{_closed_port()}/kassa")
    with broken.app_context():
        named = _by_name(run_checks(broken))
    assert named["database"].status == FAIL and "unreachable" in named["database"].detail
    assert SECRET_PW not in named["config.database_url"].detail and "***" in named["config.database_url"].detail


class _SlowGateway:
    @hookimpl
    def kassa_gateways(self):
        return [GatewayInfo(id="slowpay", name="SlowPay")]

    @hookimpl
    def kassa_gateway_verify(self, gateway, settings):
        if gateway != "slowpay":
            return None
        time.sleep(1.5)
        return VerifyResult(ok=True, message="late")


def test_doctor_gives_up_on_a_gateway_that_hangs(app, db, stamped, provider, register_plugin):
    register_plugin(_SlowGateway(), "slowgateway", enable_for=provider.id)
    app.extensions["kassa_plugins"].forget_cache()
    started = time.perf_counter()
    check = _by_name(run_checks(app, timeout=0.3))[f"gateway.{provider.id}.slowpay"]
    assert time.perf_counter() - started < 1.4
    assert check.status == FAIL and "no answer within 0.3 s" in check.detail
    time.sleep(1.3)  # let the abandoned call finish before the database is wiped


def test_doctor_in_production_refuses_the_development_key(app, db, stamped, monkeypatch):
    dev_key = Path(app.instance_path, "secret_key")
    dev_key.write_text("generated-development-key-0123456789abcdef")
    monkeypatch.setitem(app.config, "SECRET_KEY", "generated-development-key-0123456789abcdef")
    monkeypatch.setitem(app.config, "KASSA_ENV", "production")
    named = _by_name(run_checks(app, gateways=False))
    assert named["config.secret_key"].status == FAIL and "KASSA_SECRET_KEY" in named["config.secret_key"].hint
    assert named["config.redis_url"].status == WARN and named["config.smtp_url"].status == WARN
    monkeypatch.setitem(app.config, "KASSA_ENV", "development")
    assert _by_name(run_checks(app, gateways=False))["config.secret_key"].status == OK


# ---------------------------------------------------------------- gunicorn

def test_gunicorn_serves_the_wsgi_entry(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        gunicorn = shutil.which("gunicorn")
        if not gunicorn:
            pytest.skip("gunicorn is not installed (it is a dependency: pip install -e .)")
    url = f"sqlite:///{tmp_path / 'served.db'}"  # a database of its own, migrated as on a deploy
    env = dict(os.environ, KASSA_DATABASE_URL=url, KASSA_INSTANCE_PATH=str(tmp_path / "instance"),
               KASSA_SECRET_KEY="gunicorn-test-key-0123456789abcdefghijkl", KASSA_LOG_FORMAT="json",
               KASSA_LOG_LEVEL="DEBUG")
    env.pop("KASSA_REDIS_URL", None)
    kassa = Path(sys.executable).with_name("kassa")
    upgraded = subprocess.run([str(kassa), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=300)
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    port = free_port()
    server = subprocess.Popen([str(gunicorn), "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "60",
                               "kassa.wsgi:app"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, server.communicate(timeout=5)[1][-3000:]
                assert time.monotonic() < deadline, "gunicorn did not answer within 90 s"
                time.sleep(0.3)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/health/ready", headers={"X-Request-ID": "lb-1"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["X-Request-ID"] == "lb-1"
            body = json.loads(response.read())
        assert body["status"] == "ready" and body["checks"]["database"]["migrations"]["at_head"]
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    access = [e for e in _json_lines(err) if e.get("logger") == "kassa.access" and e["path"] == "/health/ready"]
    assert access and access[0]["request_id"] == "lb-1" and access[0]["status"] == 200
