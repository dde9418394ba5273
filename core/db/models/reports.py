"""Per-day counts for reports, kept by triggers (core/db/rollups.py, migration 0004), and the rows bulk
writers append beside them (migration 0019).

Mapped when first used (see core/db/models/__init__.py).
"""

from datetime import date, datetime

from sqlalchemy import Column, Date, Float, Index, Integer, String, Table
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


def _parts(days: Table, name: str) -> Table:
    """A day table's appended rows (core.db.rollups.DayCounts.write ``append``): the same columns, any number
    of rows per key (a report sums them with the day table's), indexed for a report's days and sites."""
    columns = [Column(c.name, c.type, nullable=c.nullable, server_default=c.server_default) for c in days.columns]
    return Table(name, Base.metadata, *columns, Index(f"ix_{name}_day_site", "day", "site"))


# Not mapped to classes: read and written as tables only
task_day_parts = _parts(TaskDay.__table__, "report_task_day_parts")  # type: ignore[arg-type]
call_day_parts = _parts(CallDay.__table__, "report_call_day_parts")  # type: ignore[arg-type]
answer_day_parts = _parts(AnswerDay.__table__, "report_answer_day_parts")  # type: ignore[arg-type]
