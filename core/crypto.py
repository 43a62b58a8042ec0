"""Secrets at rest: Fernet keyed from KASSA_SECRET_KEY through HKDF."""
from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

MASK = "••••••••"


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kassa-settings", info=b"fernet").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str, secret_key: str | None = None) -> str:
    return _fernet(secret_key or current_app.config["SECRET_KEY"]).encrypt(plaintext.encode()).decode()


def decrypt(token: str, secret_key: str | None = None) -> str:
    try:
        return _fernet(secret_key or current_app.config["SECRET_KEY"]).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("A stored secret cannot be decrypted: was KASSA_SECRET_KEY changed?") from None


def mask(plaintext: str) -> str:
    """What the console shows of a stored secret: never more than its last four characters."""
    if not plaintext:
        return ""
    return MASK + (plaintext[-4:] if len(plaintext) >= 12 else "")
