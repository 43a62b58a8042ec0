"""Job entry points: thin wrappers over services."""
from __future__ import annotations

from ..services import maintenance


def prune_login_attempts() -> int:
    return maintenance.prune_login_attempts()
