"""Storage: SQLAlchemy 2.x typed models. Instants are stored in UTC.

Every constraint is named (``naming_convention``) so Alembic batch mode works on
SQLite. Tasks keep a snapshot of the offset and window they were scheduled
with: changing a protocol never rewrites history silently.

The tables every command touches (patients, episodes, tasks, attempts) are mapped on
import; the others are mapped when a command first names them (``from core.db.models
import Complaint`` still works): mapping a class costs about 10 M instructions, and
``worklist``, ``tasks`` and ``script`` use five of the eighteen. :func:`load_all` maps every one
(migrations, tests comparing the models with the database).
"""

# No `from __future__ import annotations`: the mapped columns are read from real annotations, not strings
# (evaluating 215 string annotations cost every command about 20 ms).

import importlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from core.vocab import SALES_TRIGGERS, EpisodeStatus, TaskStatus, sql_in

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Episodes of these triggers are sales leads (DOMAIN.md §1): a consultation that did not come,
# a visit that did not go ahead. Their tasks have a partial index; a query uses it by repeating
# LEADS_PREDICATE word for word (SQLite's planner matches partial index predicates textually).
LEAD_TRIGGERS = SALES_TRIGGERS
LEADS_PREDICATE = '"trigger" IN ' + sql_in(LEAD_TRIGGERS)

# Task statuses (core/vocab.py). "open" tasks are on worklists.
OPEN = TaskStatus.OPEN
TASK_STATUSES = tuple(TaskStatus)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend.

    On SQLite and PostgreSQL the conversion is one fused function per value instead
    of this decorator's step chained with the dialect's own (bulk scheduling binds
    seven instants per task): same stored text on SQLite (``YYYY-MM-DD
    HH:MM:SS.ffffff``), same naive UTC values for psycopg. ``datetime.replace`` is
    avoided on purpose: with keyword arguments it costs three times ``combine``.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - raw SQLite text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)

    def _fused(self, dialect: Any) -> str | None:
        """Which fused conversion applies: "sqlite" (default text format), "native" (psycopg), or None."""
        impl = self.impl_instance
        if dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import DATETIME

            default = DATETIME._storage_format
            if isinstance(impl, DATETIME) and impl._storage_format == default and not impl._reg:
                return "sqlite"
        elif dialect.name == "postgresql" and dialect.driver == "psycopg":
            if impl.bind_processor(dialect) is None and impl.result_processor(dialect, None) is None:
                return "native"
        return None

    def bind_processor(self, dialect: Any) -> Any:
        kind = self._fused(dialect)
        if kind is None:
            return super().bind_processor(dialect)
        combine, utc = datetime.combine, UTC

        def naive_utc(value: datetime | None) -> datetime | None:
            if value is None:
                return None
            tz = value.tzinfo
            if tz is None:
                raise ValueError("naive datetime given to a UTC column")
            if tz is not utc:
                value = value.astimezone(utc)
            return combine(value.date(), value.time())

        if kind == "native":
            return naive_utc

        def sqlite_text(value: datetime | None) -> str | None:  # naive_utc, inlined: 3 calls per task
            if value is None:
                return None
            tz = value.tzinfo
            if tz is not utc:
                if tz is None:
                    raise ValueError("naive datetime given to a UTC column")
                value = value.astimezone(utc)
            return combine(value.date(), value.time()).isoformat(" ", "microseconds")

        return sqlite_text

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        kind = self._fused(dialect)
        if kind is None:
            return super().result_processor(dialect, coltype)
        combine, utc, parse = datetime.combine, UTC, datetime.fromisoformat

        if kind == "native":
            def aware(value: datetime | None) -> datetime | None:
                return None if value is None else combine(value.date(), value.time(), utc)

            return aware

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                return parse(value + "+00:00")
            except ValueError:  # a bare date, or text written by hand with its own offset
                moment = parse(value)
                return moment.astimezone(utc) if moment.tzinfo else combine(moment.date(), moment.time(), utc)

        return from_text


def utc_text() -> Callable[[datetime], str]:
    """A converter of aware instants to what :class:`UTCDateTime` stores on SQLite (``YYYY-MM-DD
    HH:MM:SS.ffffff``, UTC), which is also what PostgreSQL's ``COPY`` reads into a timestamp column.
    For bulk writes (scheduling, a call history): from two memos, one of dates and one of times of
    day, so an instant costs two lookups and a concatenation instead of formatting a datetime."""
    dates: dict[date, str] = {}
    times: dict[time, str] = {}

    def text(value: datetime) -> str:
        if value.tzinfo is not UTC:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            value = value.astimezone(UTC)
        day, moment = value.date(), value.time()
        a = dates.get(day)
        if a is None:
            a = dates[day] = f"{day.isoformat()} "
        b = times.get(moment)
        if b is None:
            b = times[moment] = moment.isoformat("microseconds")
        return a + b

    return text


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SiteRow(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    gender: Mapped[str] = mapped_column(String(1), default="U")
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(10), nullable=True)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    dnc_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    # when the patient prefers to be called (a local time range, 18:00-20:00), from import (0012)
    preferred_call_time: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Greetings and relationship (0010): the days to greet ("MM-DD"), the chain's value tier, who referred them.
    birthday: Mapped[str | None] = mapped_column(String(5), nullable=True)
    anniversary: Mapped[str | None] = mapped_column(String(5), nullable=True)
    value_tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    referred_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)  # 0008
    wechat_openid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 0008
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Episode(Base):
    __tablename__ = "episodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    specialty: Mapped[str] = mapped_column(String(64))
    procedure: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    doctor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    department: Mapped[str | None] = mapped_column(String(200), nullable=True)
    diagnosis: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=EpisodeStatus.ACTIVE)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("episode_id", "milestone"),
        Index("ix_tasks_worklist", "site", "status", "next_attempt_at"),  # worklist, claims (0002)
        Index("ix_tasks_due", "status", "due_at"),
        # ix_tasks_leads, the sales leads of a period (reports), is partial: only the tasks of lead episodes
        # are in it (migration 0004, WHERE LEADS_PREDICATE). Not declared here: its postgresql_where would
        # import the PostgreSQL dialect into every command, also on SQLite.
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    site: Mapped[str] = mapped_column(String(64))
    specialty: Mapped[str] = mapped_column(String(64))
    procedure: Mapped[str] = mapped_column(String(64))
    # the episode's trigger (why it is followed up), copied like site and procedure (0004)
    trigger: Mapped[str] = mapped_column(String(32), server_default="procedure")
    milestone: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    target_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offset: Mapped[str] = mapped_column(String(16))
    window_earliest: Mapped[str] = mapped_column(String(16))
    window_latest: Mapped[str] = mapped_column(String(16))
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    outside_window: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=OPEN)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # Counted attempts: a failed one less than the minimum gap after the previous counted failed
    # one (a dropped call redialled at once) is stored but not counted (core/calls.py, 0005).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted failed attempts
    attempts_logged: Mapped[int] = mapped_column(Integer, server_default="0")  # every attempt row (0005)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # why reconcile cancelled it: its milestone no longer applies, or its episode was cancelled (0009)
    cancel_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # a reminder's event (its offset from the episode's event, e.g. 5d), part of its timing snapshot (0012)
    before_event: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # the appointment a call booked (0010): reviews, invitations, rebooking; sales bookings may leave it empty
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # when the month-end sweep gave this unreachable follow-up one more attempt (0010; core/sweep.py)
    swept_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        # Reports: a period's calls per coordinator and site from the index alone (0003).
        Index("ix_attempts_report", "at", "site", "by", "outcome"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    site: Mapped[str] = mapped_column(String(64), server_default="")  # the task's site, copied by record_call
    by: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # False: a failed attempt too soon after the previous counted one; not towards the limit (0005)
    counted: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    channel: Mapped[str] = mapped_column(String(20), server_default="phone", default="phone")  # 0008
    recording: Mapped[str | None] = mapped_column(Text, nullable=True)  # a URL or file path (0010)


# The tables mapped on first use, by module of this package.
_LAZY = {
    **dict.fromkeys(("Answer", "Complaint", "Escalation", "QaReview", "Referral"), "calls"),
    "AuditEntry": "audit",
    **dict.fromkeys(("OutboxMessage", "PatientOptout", "ServiceKey"), "messages"),
    **dict.fromkeys(("AnswerDay", "CallDay", "ReportSettings", "TaskDay"), "reports"),
}


def __getattr__(name: str) -> Any:
    group = _LAZY.get(name)
    if group is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{group}")
    for mapped in (n for n, g in _LAZY.items() if g == group):
        globals()[mapped] = getattr(module, mapped)
    return globals()[name]


def load_all() -> None:
    """Map every table (each is otherwise mapped when first named), e.g. to compare them with the database."""
    for group in sorted(set(_LAZY.values())):
        importlib.import_module(f"{__name__}.{group}")
