"""Per-day counts for reports, kept by triggers (core/db/rollups.py, migration 0004).

Mapped when first used (see core/db/models/__init__.py).
"""

from datetime import date, datetime

from sqlalchemy import Date, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models import Base, UTCDateTime


class ReportSettings(Base):
    __tablename__ = "report_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    offset_minutes: Mapped[int] = mapped_column(Integer)  # the rollups' day: UTC shifted by this
    deferred: Mapped[int] = mapped_column(Integer, default=0)  # 1 only inside a scheduling run's transaction


class TaskDay(Base):
    __tablename__ = "report_task_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    specialty: Mapped[str] = mapped_column(String(64), primary_key=True)
    due: Mapped[int] = mapped_column(Integer, default=0)
    attempted: Mapped[int] = mapped_column(Integer, default=0)
    reached: Mapped[int] = mapped_column(Integer, default=0)
    reached_in_window: Mapped[int] = mapped_column(Integer, default=0)
    unsuccessful: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    wrong_number: Mapped[int] = mapped_column(Integer, default=0)
    open: Mapped[int] = mapped_column(Integer, default=0)
    reached_attempts: Mapped[int] = mapped_column(Integer, default=0)


class CallDay(Base):
    __tablename__ = "report_call_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    specialty: Mapped[str] = mapped_column(String(64), primary_key=True)
    by: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reached: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AnswerDay(Base):
    __tablename__ = "report_answer_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    specialty: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0)
    top2: Mapped[int] = mapped_column(Integer, default=0)
    promoters: Mapped[int] = mapped_column(Integer, default=0)
    detractors: Mapped[int] = mapped_column(Integer, default=0)
