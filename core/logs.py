"""Logging: readable text for development, one JSON object per line for production.

Every record carries the context it was logged in: the request (request id, method,
path, signed-in user and organisation) or the RQ job (job id, function). Secrets
(passwords, tokens, Authorization headers, API keys, card numbers, passwords in
URLs) are masked before a record is written, whatever the format.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

FORMATS = ("text", "json")
REDACTED = "[REDACTED]"
ACCESS_LOG = "kassa.access"
REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_context: ContextVar[dict] = ContextVar("kassa_log_context", default={})

# ---------------------------------------------------------------- redaction

#: a field or parameter whose *name* says it holds a secret
SECRET_NAME = re.compile(r"password|passwd|passphrase|secret|token|authori[sz]ation|cookie|api[_-]?key|private[_-]?key"
                         r"|cvc|cvv|card[_-]?number|^pan$|signature", re.I)
_NAME = r"[\w.-]*(?:password|passwd|secret|token|authorization|cookie|api[_-]?key|private[_-]?key|cvc|cvv|card[_-]?number)"
_PATTERNS = (
    # Authorization: Bearer abc / "authorization": "Basic abc"
    (re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token|digest)\s+)?"
                r"[^\s\"',;}]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # password=hunter2, "api_key": "abc", token: abc
    (re.compile(r"(?i)\b(" + _NAME + r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"), r"\1" + REDACTED),
    # vendor key shapes (Stripe secret/restricted keys, webhook secrets, Razorpay secrets)
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}"), REDACTED),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.I), r"\1" + REDACTED + "@"),
)
_CARD = re.compile(r"\b[2-6](?:[ -]?\d){12,18}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"[CARD ****{digits[-4:]}]" if _luhn(digits) else match.group(0)


def redact(text: str) -> str:
    """``text`` with secrets masked (used on messages, exceptions and field values)."""
    if not text:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _CARD.sub(_mask_card, text)


def redact_value(name: str, value):
    """A field's value fit for a log: masked whole when its name says it is secret."""
    if SECRET_NAME.search(str(name)):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, dict):
        return {k: redact_value(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(name, v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


# ---------------------------------------------------------------- context

def bind(**fields) -> object:
    """Add fields to the log context of this thread/task; returns a token for :func:`unbind`."""
    return _context.set({**_context.get(), **fields})


def unbind(token) -> None:
    try:
        _context.reset(token)
    except ValueError:  # set in another context: start clean rather than leak fields
        _context.set({})


@contextmanager
def log_context(**fields):
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current_context() -> dict:
    fields = dict(_context.get())
    fields.update(_user_fields())
    return fields


def _user_fields() -> dict:
    """The signed-in user of the current request, read from what Flask-Login already
    loaded (never a query of its own: a log call must not touch the database)."""
    from flask import g, has_app_context, has_request_context

    if not (has_request_context() and has_app_context()):
        return {}
    user = g.get("_login_user")
    from sqlalchemy import inspect

    try:
        if user is None or not user.is_authenticated:
            return {}
        state = inspect(user)
    except Exception:  # anonymous user, or an expired row after a failed transaction
        return {}
    identity = state.identity
    fields = {"user_id": identity[0] if identity else state.dict.get("id")}
    if state.dict.get("org_id") is not None:
        fields["org_id"] = state.dict["org_id"]
    return fields


# ---------------------------------------------------------------- records

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class RedactFilter(logging.Filter):
    """Masks secrets in the message and in ``extra=`` fields; adds the log context
    as ``record.kassa_fields``. Attached to Kassa's handler, so it sees every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format must not lose the record
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        fields = current_context()
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "kassa_fields":
                fields[key] = value
        record.kassa_fields = {k: redact_value(k, v) for k, v in fields.items()}
        return True


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback, secrets masked (kept in ``exc_text`` for the formatter)."""
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC ISO 8601), level, logger, message,
    exception, then the context fields."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, timezone.utc)
        entry = {"time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        exception = _exception_text(self, record)
        if record.stack_info:
            exception = (exception + "\n" if exception else "") + redact(self.formatStack(record.stack_info))
        if exception:
            entry["exception"] = exception
        for key, value in getattr(record, "kassa_fields", {}).items():
            entry.setdefault(key, value)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...`` for a terminal."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        _exception_text(self, record)
        line = super().format(record)
        fields = getattr(record, "kassa_fields", {})
        if fields:
            head, sep, tail = line.partition("\n")
            line = head + " " + " ".join(f"{k}={v}" for k, v in fields.items()) + sep + tail
        return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test capture replaces it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(config) -> None:
    """Install Kassa's handler on the root logger (once: calling again replaces it).
    ``KASSA_LOG_FORMAT`` is ``text`` (default) or ``json``; ``KASSA_LOG_LEVEL`` a level name."""
    fmt = str(config.get("KASSA_LOG_FORMAT") or "text").lower()
    if fmt not in FORMATS:
        raise ValueError(f"KASSA_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    level_name = str(config.get("KASSA_LOG_LEVEL") or "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ValueError(f"KASSA_LOG_LEVEL {level_name!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


# ---------------------------------------------------------------- requests

def init_request_logging(app) -> None:
    """Request id and context for every request, and one access-log line per response."""
    from flask import request

    access = logging.getLogger(ACCESS_LOG)

    def start():
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        request.environ["kassa.request_id"] = request_id
        request.environ["kassa.started"] = time.perf_counter()
        request.environ["kassa.log_token"] = bind(request_id=request_id, method=request.method, path=request.path)

    def finish(response):
        request_id = request.environ.get("kassa.request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = request.environ.get("kassa.started")
        duration = round((time.perf_counter() - started) * 1000, 1) if started else None
        # load balancers probe the health endpoints every few seconds: keep them out of INFO
        level = logging.DEBUG if request.path.startswith("/health/") and response.status_code < 500 else logging.INFO
        access.log(level, "%s %s %s %sms", request.method, request.path, response.status_code, duration,
                   extra={"status": response.status_code, "duration_ms": duration})
        return response

    def clear(exc=None):
        token = request.environ.pop("kassa.log_token", None)
        if token is not None:
            unbind(token)

    app.before_request_funcs.setdefault(None, []).insert(0, start)  # first, so every log line has the id
    app.after_request(finish)
    app.teardown_request(clear)


@contextmanager
def job_context(job):
    """Log context of one RQ job (used by ``KassaWorker``)."""
    with log_context(job_id=job.id, job_func=job.func_name):
        yield
