from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class PluginFailureLog(db.Model):
    """How often a plugin raised, per provider and hour: the last hook and error, a count.

    One row per (provider, plugin, hour) keeps the table bounded however often a
    plugin fails; rows older than a week are pruned. ``provider_id`` is NULL for
    failures outside any provider (start-up, a global listing). There is no foreign
    key on purpose: the row is written on a side connection, right after a failed
    transaction, and must not wait on locks that transaction's caller may hold.
    ``resolved_at`` is set when an administrator marks the plugin as resolved.
    """

    __tablename__ = "plugin_failure_log"
    __table_args__ = (Index("ix_plugin_failure_log_lookup", "provider_id", "plugin", "hour"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int | None]
    plugin: Mapped[str] = mapped_column(String(100))
    hour: Mapped[datetime]
    hook: Mapped[str] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(String(1000))
    count: Mapped[int] = mapped_column(default=1)
    last_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
