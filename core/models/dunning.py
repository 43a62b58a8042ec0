"""Dunning: the state of an organisation that is overdue, and the history of what
the engine did to it (services.dunning is the only writer)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import Amount


class DunningState(db.Model):
    """An organisation in dunning, one row while the case is open. ``banner`` and
    ``restricted`` are the effects of its current phase, kept here so every
    console request reads one row by primary key."""

    __tablename__ = "dunning_states"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | terminated
    phase: Mapped[str] = mapped_column(String(40))  # the phase key ("terminated" once terminated)
    phase_name: Mapped[str] = mapped_column(String(100))
    started_on: Mapped[date]  # the case began (first phase entered)
    entered_on: Mapped[date]  # the current phase began; it lasts its days from here
    anchor_date: Mapped[date]  # due date of the oldest unpaid invoice the timeline runs from
    banner: Mapped[bool] = mapped_column(default=False)
    restricted: Mapped[bool] = mapped_column(default=False)  # console limited to the payment prompt
    suspended_subscription_ids: Mapped[list] = mapped_column(JSON, default=list)  # suspended by dunning
    overdue_amount: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    next_step: Mapped[str] = mapped_column(String(100), default="")
    next_on: Mapped[date | None]
    last_retry_on: Mapped[date | None]  # the card was last retried (claimed) on this day
    updated_at: Mapped[datetime]


class DunningEvent(db.Model):
    """One line of an organisation's dunning history: a phase entered, subscriptions
    suspended or restored, an e-mail sent, a card retried, termination, payment.
    ``key`` is unique where a thing must happen at most once (an e-mail per
    organisation, phase and day)."""

    __tablename__ = "dunning_events"
    __table_args__ = (Index("ix_dunning_events_org", "org_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    # enter | back | suspend | restore | email | retry | terminate | resolved | cleared
    kind: Mapped[str] = mapped_column(String(20))
    phase: Mapped[str] = mapped_column(String(40), default="")
    day: Mapped[date]  # the business day (the clock's today)
    summary: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    key: Mapped[str | None] = mapped_column(String(120), unique=True)
    at: Mapped[datetime]
