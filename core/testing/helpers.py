"""Helpers for driving the console and the API in tests."""
from __future__ import annotations

import re
from contextlib import contextmanager

from flask import has_app_context
from flask.globals import _cv_app

from ..extensions import db


def isolated(call, *args, **kwargs):
    """Run a test-client request in its own app context, as in production.

    A request reuses an app context that is already pushed (the test's), which
    would share ``g`` (the signed-in user) and the database session between
    the test and every request. Hiding the test's context for the call keeps
    them apart; afterwards the test's session ends its transaction, so it sees
    what the request wrote.
    """
    token = _cv_app.set(None)
    try:
        response = call(*args, **kwargs)
        response.was_streamed = response.is_streamed
        response.get_data()  # run a streamed body now, inside the request's own contexts
    finally:
        _cv_app.reset(token)
    if has_app_context():
        db.session.commit()
    return response

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Console:
    """A signed-in Flask test client that sends the CSRF token like a browser."""

    def __init__(self, client):
        self.client = client

    def token(self) -> str:
        page = isolated(self.client.get, "/profile" if self.signed_in else "/login").get_data(as_text=True)
        match = CSRF_RE.search(page)
        assert match, "no CSRF token on the page"
        return match.group(1)

    signed_in = False

    def login(self, email: str, password: str):
        response = isolated(self.client.post, "/login", data={"email": email, "password": password,
                                                              "csrf_token": self.token()})
        self.signed_in = response.status_code == 302
        return response

    def get(self, url, **kw):
        return isolated(self.client.get, url, **kw)

    def post(self, url, data=None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token())
        return isolated(self.client.post, url, data=data, **kw)

    def raw_post(self, url, data=None, **kw):
        """POST without adding the CSRF token."""
        return isolated(self.client.post, url, data=data, **kw)


class Api:
    """An API client with a bearer token."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method):
        if method not in ("get", "post", "put", "patch", "delete"):
            raise AttributeError(method)

        def call(url, json=None, **kw):
            return isolated(getattr(self.client, method), url, json=json, headers=self.headers, **kw)

        return call


@contextmanager
def registered_plugin(app, plugin, name: str, enable_for: int | None = None):
    """Register ``plugin`` in ``app``'s host for the duration of the block."""
    from ..models import PluginState
    from ..clock import utcnow_naive

    host = app.extensions["kassa_plugins"]
    record = host.register(plugin, name, builtin=False, distribution="(test)", version="0")
    if record.broken:
        host.records.pop(name, None)
        raise AssertionError(f"fake plugin {name} refused: {record.error}")
    try:
        if enable_for is not None:
            with app.app_context():
                db.session.add(PluginState(provider_id=enable_for, plugin=name, enabled=True, settings={},
                                           updated_at=utcnow_naive()))
                db.session.commit()
        host.finish()
        yield record
    finally:
        if host.pm.is_registered(plugin):
            host.pm.unregister(plugin)
        host.records.pop(name, None)
