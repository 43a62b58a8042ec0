"""Configuration from the environment (KASSA_*), overridable by create_app(config=...)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

DEV_SECRET_FILE = "secret_key"


def from_environment(instance_path: str) -> dict:
    url = os.environ.get("KASSA_DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'kassa.db'}"
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "KASSA_REDIS_URL": os.environ.get("KASSA_REDIS_URL") or None,
        "SECRET_KEY": os.environ.get("KASSA_SECRET_KEY") or _dev_secret(instance_path),
        "KASSA_ENV": os.environ.get("KASSA_ENV", "development"),
        "KASSA_LOAD_ENTRYPOINTS": os.environ.get("KASSA_LOAD_ENTRYPOINTS", "1") != "0",
        "KASSA_TEST_CLOCK": os.environ.get("KASSA_TEST_CLOCK", "0") == "1",
        "KASSA_LOGIN_MAX_FAILURES": int(os.environ.get("KASSA_LOGIN_MAX_FAILURES", "5")),
        "KASSA_LOGIN_WINDOW_MINUTES": int(os.environ.get("KASSA_LOGIN_WINDOW_MINUTES", "15")),
        "KASSA_PASSWORD_METHOD": os.environ.get("KASSA_PASSWORD_METHOD", "scrypt"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("KASSA_SECURE_COOKIES", "0") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "KASSA_LOG_FORMAT": os.environ.get("KASSA_LOG_FORMAT", "text"),
        "KASSA_LOG_LEVEL": os.environ.get("KASSA_LOG_LEVEL", "INFO"),
        "KASSA_SMTP_URL": os.environ.get("KASSA_SMTP_URL") or None,  # smtp[s]://user:pw@host:port[?starttls=1]
    }


def _dev_secret(instance_path: str) -> str:
    """A per-installation random key kept in instance/, so a demo needs no setup
    and secrets stay decryptable across restarts. Production sets KASSA_SECRET_KEY."""
    path = Path(instance_path) / DEV_SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
