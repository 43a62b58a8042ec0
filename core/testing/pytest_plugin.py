"""pytest fixtures for Kassa and its plugins (loaded through the ``pytest11`` entry point)."""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from .helpers import Api, Console, registered_plugin
from .services import require_postgres

TEST_PASSWORD = "correct-horse-battery"


def _database_url(tmp_root: str) -> str:
    url = os.environ.get("KASSA_DATABASE_URL")
    if url:
        if url.startswith("postgresql"):
            require_postgres()
        return url
    return f"sqlite:///{os.path.join(tmp_root, 'kassa-test.db')}"


@pytest.fixture(scope="session")
def kassa_tmp_root():
    with tempfile.TemporaryDirectory(prefix="kassa-test-") as root:
        yield root


@pytest.fixture(scope="session")
def kassa_config(kassa_tmp_root) -> dict:
    """Configuration of the test app; override this fixture to change it."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": _database_url(kassa_tmp_root),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "KASSA_REDIS_URL": None,
        "KASSA_JOBS_SYNC": True,
        "KASSA_TEST_CLOCK": True,
        "KASSA_PASSWORD_METHOD": "pbkdf2:sha256:1000",
    }


@pytest.fixture(scope="session")
def app(kassa_config, kassa_tmp_root):
    """The app, with a fresh schema created once per session."""
    os.environ.setdefault("KASSA_INSTANCE_PATH", os.path.join(kassa_tmp_root, "instance"))
    from kassa import create_app
    from kassa.extensions import db

    application = create_app(dict(kassa_config))
    with application.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _wipe(db) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def clock(app):
    from kassa.clock import FrozenClock

    frozen = FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
    previous = app.extensions["kassa_clock"]
    app.extensions["kassa_clock"] = frozen
    yield frozen
    app.extensions["kassa_clock"] = previous


@pytest.fixture
def db(app, clock):
    """An app context over an empty database; after the test the ledger must balance."""
    from kassa.extensions import db as _db
    from kassa.services.ledger import unbalanced_transactions

    with app.app_context():
        yield _db
        _db.session.rollback()
        unbalanced = unbalanced_transactions()
        _db.session.remove()
        _wipe(_db)
    assert not unbalanced, f"unbalanced ledger transactions: {unbalanced}"


@pytest.fixture
def make_org(db):
    from kassa.services import orgs

    def make(kind="customer", *, parent=None, actor=None, name=None, country="IN", **fields):
        if kind == "provider":
            return orgs.create_provider(name or "Test Provider", country, **fields)
        actor = actor or _system_actor(parent)
        return orgs.create_org(actor, kind=kind, parent=parent, name=name or f"Test {kind}", country=country,
                               **fields)

    return make


class _SystemActor:
    """Acts as the cloud admin of a provider without a user row (fixtures only)."""

    id = None
    role = "cloud_admin"
    privileges = ()
    is_authenticated = True

    def __init__(self, org):
        self.org = org
        self.org_id = org.id


def _system_actor(parent):
    org = parent
    while org.kind != "provider":
        org = org.parent
    return _SystemActor(org)


@pytest.fixture
def make_user(db):
    from kassa.services import users

    counter = {"n": 0}

    def make(org, role=None, *, email=None, privileges=(), actor=None, primary=False):
        counter["n"] += 1
        role = role or {"provider": "cloud_admin", "reseller": "reseller_admin", "customer": "customer_admin"}[org.kind]
        email = email or f"user{counter['n']}-{role}@{org.kind}{org.id}.example"
        return users.create_user(actor, org, email=email, name=f"User {counter['n']}", password=TEST_PASSWORD,
                                 role=role, privileges=privileges, primary=primary)

    return make


@pytest.fixture
def provider(make_org):
    from kassa.services import settings

    org = make_org("provider", name="Cloud7 Test", country="IN", state="Tamil Nadu")
    bs = settings.billing_settings(org.id)
    from kassa.extensions import db as _db

    bs.currency, bs.precision = "INR", 2
    _db.session.add(bs)
    _db.session.commit()
    return org


@pytest.fixture
def admin(provider, make_user):
    return make_user(provider, "cloud_admin", email="admin@provider.example", primary=True)


@pytest.fixture
def reseller(make_org, provider):
    return make_org("reseller", parent=provider, name="Reseller One")


@pytest.fixture
def reseller_admin(reseller, make_user):
    return make_user(reseller, "reseller_admin", email="admin@reseller.example", primary=True)


@pytest.fixture
def customer(make_org, provider):
    return make_org("customer", parent=provider, name="Customer Direct", email="billing@customer.example")


@pytest.fixture
def customer_admin(customer, make_user):
    return make_user(customer, "customer_admin", email="admin@customer.example", primary=True)


@pytest.fixture
def console(app, db):
    """Factory: ``console(user)`` gives a signed-in :class:`Console`."""

    def make(user=None):
        c = Console(app.test_client())
        if user is not None:
            response = c.login(user.email, TEST_PASSWORD)
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return c

    return make


@pytest.fixture
def api(app, db):
    """Factory: ``api(user)`` gives an :class:`Api` client with a fresh token."""
    from kassa.services import users

    def make(user):
        token, _ = users.create_api_token(user, "test")
        return Api(app.test_client(), token)

    return make


@pytest.fixture
def register_plugin(app):
    """``register_plugin(obj, name, enable_for=provider_id)`` adds a fake plugin for this test."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        def register(plugin, name, enable_for=None):
            return stack.enter_context(registered_plugin(app, plugin, name, enable_for))

        yield register


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink(app):
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives;
    the app sends to it for the duration of the test."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
            return "250 OK"

    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    previous = app.config.get("KASSA_SMTP_URL")
    app.config["KASSA_SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield handler.messages
    finally:
        app.config["KASSA_SMTP_URL"] = previous
        controller.stop()


# Vendor API peers (Prism serving the vendors' OpenAPI documents) for gateway contract tests.
from .peers import paypal_peer, stripe_peer  # noqa: E402,F401


@pytest.fixture
def plugin_hooks(app, db, provider, admin):
    """Factory: ``plugin_hooks("gateway_stripe")`` enables that installed plugin for the
    test provider and returns the hook relay the core calls for that provider."""
    from kassa.plugins import host
    from kassa.services import plugin_settings

    def enable(*names: str):
        for name in names:
            plugin_settings.set_enabled(admin, name, True)
        host().forget_cache()
        return host().hooks(provider.id)

    return enable


@pytest.fixture
def fake_gateway(app, provider, admin, register_plugin):
    """The fake gateway plugin, enabled for the test provider, with its secrets set."""
    from kassa.services import plugin_settings

    from .fake_gateway import FakeGateway

    gateway = FakeGateway()
    register_plugin(gateway, "fakegateway", enable_for=provider.id)
    plugin_settings.save_settings(admin, "fakegateway", {"api_key": "good-key", "webhook_secret": "whsec_fake"})
    app.extensions["kassa_plugins"].forget_cache()
    return gateway
