"""What a reached call adds besides its attempt: answers, complaints, escalations, referrals, QA reviews.

Mapped when first used (see core/db/models/__init__.py).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base, UTCDateTime


class QaReview(Base):
    """A supervisor's score of one recorded call (the weekly spot check, seed 002)."""

    __tablename__ = "qa_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Referral(Base):
    """A referral: an invitation accepted in a call (``accepted``), or a new patient naming a referrer."""

    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_at", "at", "site"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    referrer_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    referred_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True)
    site: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(64))


class Answer(Base):
    __tablename__ = "answers"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    question: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[str | None] = mapped_column(String(64), nullable=True)
    value: Mapped[Any] = mapped_column(JSON)
    number: Mapped[float | None] = mapped_column(nullable=True)


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), nullable=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    site: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    staff: Mapped[str | None] = mapped_column(String(200), nullable=True)
    description: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    # One complaint per call with every category it touches (0011); ``category`` is the first.
    categories: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Who answers it first: the role the site names (default 执行院长助理, seed 002).
    handler_role: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Escalation(Base):
    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    site: Mapped[str] = mapped_column(String(64))
    doctor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    # The closed loop (0011): how urgent, who must act (a staff username), by when, and who opened it
    # (a coordinator's own judgement, or the rules of a reached call).
    severity: Mapped[str] = mapped_column(String(20), default="clinical", server_default="clinical")
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
