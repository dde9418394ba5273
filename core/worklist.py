"""A site's (or coordinator's) list of calls for one day.

Open tasks whose window has opened and whose next attempt is due by the end of
that day, in the site's timezone. Ordered clinical first, then overdue (past the
window's end), then by due time. Tasks of one patient on the same day are one
line: one call covers them, so nobody is called twice a day for routine reasons.
Do-not-contact patients never appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, func, literal_column, select, true
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.db.models import Patient, Task, UTCDateTime
from core.privacy import mask_phone
from core.tasklist import local_iso
from core.vocab import MESSAGE_CHANNELS, TaskStatus, Urgency


@dataclass
class WorklistLine:
    """One call: a patient and every task that call covers."""

    site: str
    patient_id: str
    patient_name: str
    phone: str
    urgency: str
    overdue: bool
    due_at: datetime
    task_ids: list[int] = field(default_factory=list)
    milestones: list[str] = field(default_factory=list)
    procedures: list[str] = field(default_factory=list)
    attempts: int = 0
    assignee: str | None = None
    phone_invalid: bool = False
    value_tier: str | None = None

    def as_dict(self, tz: Any) -> dict[str, Any]:
        return {
            "site": self.site,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "phone": self.phone,
            "urgency": self.urgency,
            "overdue": self.overdue,
            "due_at": local_iso(self.due_at, tz),
            "task_ids": self.task_ids,
            "milestones": self.milestones,
            "procedures": self.procedures,
            "attempts": self.attempts,
            "assignee": self.assignee,
            "phone_invalid": self.phone_invalid,
            "value_tier": self.value_tier,
        }


def end_of_day(day: date, tz: Any) -> datetime:
    """Midnight after ``day`` in ``tz``: what is due before it is due that day (worklist and claims)."""
    return datetime.combine(day + timedelta(days=1), time(0), tz)


def _statement(mine: bool, lateral: bool) -> Any:
    """The day's due tasks of one site with their patient's columns, bound parameters, built once per shape.

    Only what a line shows, not Task objects (a busy site's day is a few thousand
    rows, and ORM objects cost five times the query); overdue, the current holder
    and the line's time are computed by the database, so one instant per row is
    parsed instead of four. The index (site, status, next_attempt_at) reads exactly
    these rows, in this order.

    ``lateral`` (PostgreSQL): the patient is looked up per due task, by its primary
    key, in a ``LATERAL`` subquery that ``OFFSET 0`` keeps from being merged into a
    join. Joined plainly, PostgreSQL expects thousands of due tasks (it cannot know
    that open tasks are mostly future ones) and hashes the whole patients table, 80 ms
    at a million tasks; a second query by id cost a round trip. SQLite's planner loops
    over the few due tasks of a plain join by itself.

    The columns, in this order, are what ``_lines`` reads.
    """
    now, cutoff = bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)
    patient = (Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid, Patient.value_tier)
    query = select(
        Task.id, Task.patient_id, Task.urgency, (Task.window_end < now).label("overdue"),
        func.coalesce(Task.next_attempt_at, Task.due_at).label("due"),
        case((Task.claimed_until >= now, Task.assignee), else_=None).label("held_by"),
        Task.milestone, Task.procedure, Task.attempts,
    ).select_from(Task)
    callable_patient = Patient.do_not_contact.is_(False)
    if lateral:
        person = (
            select(*patient).where(Patient.id == Task.patient_id, callable_patient)
            .offset(literal_column("0")).lateral("patient")
        )
        query = query.add_columns(*person.c).join(person, true())
    else:
        query = query.add_columns(*patient).join(Patient, Patient.id == Task.patient_id).where(callable_patient)
    query = query.where(
        Task.site == bindparam("site"),
        # 'open' written into the statement, not bound: SQLite prepares a statement again at every run when a
        # bound value could make a partial index usable (ix_tasks_claim is WHERE status = 'open'), which
        # doubled the worklist's time
        Task.status == literal_column(f"'{TaskStatus.OPEN.value}'"),
        Task.window_start < cutoff,
        Task.next_attempt_at < cutoff,
        *(Task.channel != c for c in MESSAGE_CHANNELS),  # sent by `followup send`, not called
    ).order_by(Task.next_attempt_at, Task.id)
    if mine:  # what that coordinator holds now (an expired hold is back in the pool)
        query = query.where(Task.assignee == bindparam("assignee"), Task.claimed_until >= now)
    return query


def _aware(value: datetime) -> datetime:
    """The instant as it is: the driver already gave an aware UTC datetime."""
    return value


class _Compiled:
    """A task statement compiled once for a dialect, run with the driver's own cursor.

    For a busy site's day (130 rows) ``connection.execute(select)`` adds 40% to the
    driver's own time on SQLite, and on PostgreSQL more than the query itself: a
    cache key for the statement on every call (the compiled form is cached already),
    result metadata, a Row per task and a type processor per value;
    ``exec_driver_sql`` still adds 25%. Here SQLAlchemy compiles the statement once
    (its SQL text, its parameters, literals and bind processors) and the cursor of the
    session's own DBAPI connection runs it, inside the session's transaction (begun,
    and pending changes flushed, by ``_connection``), as a hand-written query would;
    psycopg prepares it on the server (``prepare=True``: parsed and planned once per
    connection). What that skips for this one read: engine events and echo logging,
    and SQLAlchemy's wrapping of driver errors (a driver error is raised as is).

    The rows hold the driver's values. Only the instant needs a real conversion,
    done once per line by ``instant`` (the column type's own result processor);
    SQLite's 0/1 booleans become ``bool`` in ``_lines``. Checked here: no other
    column has a result processor.
    """

    _CONVERTED = {"overdue", "due", "phone_invalid"}

    def __init__(self, query: Any, dialect: Dialect):
        compiled = query.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = compiled.positiontup is not None  # "?" (SQLite) or %(name)s (psycopg)
        order = compiled.positiontup if self.positional else list(compiled.binds)
        self.binds = [  # (name, literal value, bind processor) for each parameter, in order
            (name, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name in order
            for bind in [compiled.binds[name]]
        ]
        self.names = [name for name, _, _ in self.binds]
        processors = {
            col.name: col.type.dialect_impl(dialect).result_processor(dialect, None) for col in query.selected_columns
        }
        unexpected = [name for name, proc in processors.items() if proc is not None and name not in self._CONVERTED]
        if unexpected:  # pragma: no cover - a column added to _statement without its conversion
            raise TypeError(f"worklist columns need conversion: {unexpected}")
        self.instant: Callable[[Any], datetime] = processors["due"] or _aware

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows for ``params`` (by name; a literal of the statement when absent), as plain tuples."""
        values = [
            value if process is None else process(value)
            for name, literal, process in self.binds
            for value in [params[name] if name in params else literal]
        ]
        cursor = connection.connection.cursor()
        try:
            if self.positional:
                cursor.execute(self.sql, values)
            else:  # psycopg: named, and prepared on the server
                cursor.execute(self.sql, dict(zip(self.names, values, strict=True)), prepare=True)
            return cursor.fetchall()
        finally:
            cursor.close()


@lru_cache(maxsize=8)
def _compiled(dialect: Dialect, mine: bool) -> _Compiled:
    return _Compiled(_statement(mine, lateral=dialect.name == "postgresql"), dialect)


def worklist(
    session: Session,
    config: ChainConfig,
    *,
    day: date,
    now: datetime,
    sites: list[str] | None = None,
    assignee: str | None = None,
    user: str | None = None,
) -> list[WorklistLine]:
    """The day's calls for ``sites`` (default: all ``user`` may see), one line per patient."""
    from core import access

    sites = access.sites_for(config, user, access.TASKS_READ, sites)
    lines: list[WorklistLine] = []
    compiled = _compiled(session.get_bind().dialect, assignee is not None)
    connection = _connection(session)
    for code in sites or list(config.sites):
        site = config.site(code)
        params = {"site": code, "now": now, "cutoff": end_of_day(day, site.timezone), "assignee": assignee}
        lines.extend(_lines(code, compiled.rows(connection, params), compiled.instant))
    lines.sort(key=_order(config))
    return lines


def _lines(code: str, rows: Iterable[Sequence[Any]], instant: Callable[[Any], datetime]) -> Iterable[WorklistLine]:
    """One line per patient from the site's due tasks, in due order (``_statement``'s joined columns).

    A patient's first task makes the line, all fields at once (most patients have
    one task a day): its time is the line's, the earliest. The others add theirs:
    clinical and overdue if any task is, the highest attempt count, the first
    current holder. ``instant`` makes the line's aware UTC time from the row's value.
    """
    by_patient: dict[str, WorklistLine] = {}
    for (task_id, _, urgency, overdue, due, held_by, milestone, procedure, attempts,
         ext_id, name, phone, phone_invalid, value_tier) in rows:
        line = by_patient.get(ext_id)
        if line is None:
            by_patient[ext_id] = WorklistLine(
                code, ext_id, name, mask_phone(phone), urgency, bool(overdue), instant(due),
                [task_id], [milestone], [procedure], attempts, held_by, bool(phone_invalid), value_tier,
            )
            continue
        line.task_ids.append(task_id)
        line.milestones.append(milestone)
        if procedure not in line.procedures:
            line.procedures.append(procedure)
        if attempts > line.attempts:
            line.attempts = attempts
        if urgency == Urgency.CLINICAL:
            line.urgency = Urgency.CLINICAL
        if overdue:
            line.overdue = True
        if not line.assignee:
            line.assignee = held_by
    return by_patient.values()


def _order(config: ChainConfig) -> Callable[[WorklistLine], tuple[bool, int, bool, datetime, str]]:
    """The lines' sort key: clinical first, then valued patients (the chain's ``value_tiers``, highest
    first, as ``ChainConfig.tier_rank`` ranks them), then overdue, then by due time (then patient, for a
    stable list). The tiers' ranks are looked up once per list, not once per line."""
    tiers = [t.casefold() for t in config.model.value_tiers]
    ranks = {tier: tiers.index(tier) for tier in tiers}  # the first of a repeated tier, as list.index
    unranked = len(tiers)

    def key(line: WorklistLine) -> tuple[bool, int, bool, datetime, str]:
        tier = line.value_tier
        return (line.urgency != Urgency.CLINICAL, ranks.get(tier.casefold(), unranked) if tier else unranked,
                not line.overdue, line.due_at, line.patient_id)

    return key


def _connection(session: Session) -> Connection:
    """The session's connection for Core execution: plain rows need none of the ORM's machinery.

    Pending changes are flushed first, as ``session.execute`` would with autoflush.
    """
    if session.autoflush:
        session.flush()
    return session.connection()
