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

from sqlalchemy import ARRAY, Integer, any_, bindparam, case, func, select
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


def _statement(mine: bool, joined: bool) -> Any:
    """The day's due tasks of one site, with bound parameters, built once per shape.

    Only what a line shows, not Task objects (a busy site's day is a few thousand
    rows, and ORM objects cost five times the query); overdue, the current holder
    and the line's time are computed by the database, so one instant per row is
    parsed instead of four. The index (site, status, next_attempt_at) reads exactly
    these rows, in this order.

    ``joined``: with the patient's columns, joined (SQLite, whose planner loops over
    the few due tasks). Otherwise the patients come in a second query, by id:
    joined in one query, PostgreSQL expects thousands of due tasks (it cannot know
    that open tasks are mostly future ones) and hashes the whole patients table,
    80 ms at a million tasks instead of 2 ms for both queries.

    The columns, in this order, are what ``_lines`` reads (the patient's come from
    the second query when not joined).
    """
    now, cutoff = bindparam("now", type_=UTCDateTime), bindparam("cutoff", type_=UTCDateTime)
    query = (
        select(
            Task.id, Task.patient_id, Task.urgency, (Task.window_end < now).label("overdue"),
            func.coalesce(Task.next_attempt_at, Task.due_at).label("due"),
            case((Task.claimed_until >= now, Task.assignee), else_=None).label("held_by"),
            Task.milestone, Task.procedure, Task.attempts,
        )
        .where(
            Task.site == bindparam("site"),
            Task.status == TaskStatus.OPEN,
            Task.window_start < cutoff,
            Task.next_attempt_at < cutoff,
            *(Task.channel != c for c in MESSAGE_CHANNELS),  # sent by `followup send`, not called
        )
        .order_by(Task.next_attempt_at, Task.id)
    )
    if joined:
        query = query.add_columns(
            Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid, Patient.value_tier
        ).join(Patient, Patient.id == Task.patient_id).where(Patient.do_not_contact.is_(False))
    if mine:  # what that coordinator holds now (an expired hold is back in the pool)
        query = query.where(Task.assignee == bindparam("assignee"), Task.claimed_until >= now)
    return query


def _patients(array: bool) -> Any:
    """The callable patients among ``ids``: ``= ANY(array)`` on PostgreSQL (one parameter), else ``IN``."""
    ids = (
        Patient.id == any_(bindparam("ids", type_=ARRAY(Integer))) if array
        else Patient.id.in_(bindparam("ids", expanding=True))
    )
    return select(
        Patient.id, Patient.external_id, Patient.name, Patient.phone, Patient.phone_invalid, Patient.value_tier
    ).where(
        ids, Patient.do_not_contact.is_(False)
    )


_TASKS = {(mine, joined): _statement(mine, joined) for mine in (False, True) for joined in (False, True)}
_PATIENTS = {array: _patients(array) for array in (False, True)}


def _aware(value: datetime) -> datetime:
    """The instant as it is: SQLAlchemy's rows already hold aware UTC datetimes (the column type converted them)."""
    return value


class _Compiled:
    """A joined task statement compiled once for a SQLite dialect, run with the driver's cursor.

    For a busy site's day (130 rows) ``connection.execute(select)`` adds 40% to the
    driver's own time: a cache key for the statement on every call (the compiled
    form is cached already), result metadata, a Row per task and a type processor
    per value; ``exec_driver_sql`` still adds 25%. Here SQLAlchemy compiles the
    statement once (its SQL text, its parameters' order, literals and bind
    processors) and the cursor of the session's own DBAPI connection runs it, inside
    the session's transaction (begun, and pending changes flushed, by
    ``_connection``), as a hand-written query would. What that skips for this one
    read: engine events and echo logging, and SQLAlchemy's wrapping of driver
    errors (a ``sqlite3`` error is raised as is).

    The rows hold the driver's values. Only the instant needs a real conversion,
    done once per line by ``instant`` (the column type's own result processor);
    SQLite's 0/1 booleans become ``bool`` in ``_lines``. Checked here: no other
    column has a result processor.
    """

    _CONVERTED = {"overdue", "due", "phone_invalid"}

    def __init__(self, query: Any, dialect: Dialect):
        compiled = query.compile(dialect=dialect)
        order = compiled.positiontup
        if order is None:  # pragma: no cover - SQLite's paramstyle is qmark
            raise NotImplementedError(f"{dialect.name}: named parameters")
        self.sql = compiled.string
        self.binds = [  # (name, literal value, bind processor) for each "?", in order
            (name, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name in order
            for bind in [compiled.binds[name]]
        ]
        processors = {
            col.name: col.type.dialect_impl(dialect).result_processor(dialect, None) for col in query.selected_columns
        }
        unexpected = [name for name, proc in processors.items() if proc is not None and name not in self._CONVERTED]
        if unexpected:  # pragma: no cover - a column added to _statement without its conversion
            raise TypeError(f"worklist columns need conversion: {unexpected}")
        self.instant: Callable[[Any], datetime] = processors["due"] or _aware

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows for ``params`` (by name; a literal of the statement when absent), as plain tuples."""
        values = []
        for name, literal, process in self.binds:
            value = params[name] if name in params else literal
            values.append(value if process is None else process(value))
        cursor = connection.connection.cursor()
        try:
            cursor.execute(self.sql, values)
            return cursor.fetchall()
        finally:
            cursor.close()


@lru_cache(maxsize=8)
def _compiled(dialect: Dialect, mine: bool) -> _Compiled:
    return _Compiled(_TASKS[mine, True], dialect)


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
    dialect = session.get_bind().dialect
    mine = assignee is not None
    for code in sites or list(config.sites):
        site = config.site(code)
        params = {"site": code, "now": now, "cutoff": end_of_day(day, site.timezone), "assignee": assignee}
        connection = _connection(session)
        if dialect.name == "sqlite":  # joined: one query
            compiled = _compiled(dialect, mine)
            rows: Iterable[Sequence[Any]] = compiled.rows(connection, params)
            instant = compiled.instant
        else:  # the callable patients in a second query, their columns appended to their tasks' rows
            tasks = connection.execute(_TASKS[mine, False], params).all()
            if not tasks:
                continue
            ids = list({task[1] for task in tasks})
            patients = {
                row[0]: tuple(row[1:])
                for row in connection.execute(_PATIENTS[dialect.name == "postgresql"], {"ids": ids})
            }
            rows = [(*task, *patients[task[1]]) for task in tasks if task[1] in patients]  # else: do not contact
            instant = _aware
        lines.extend(_lines(code, rows, instant))
    lines.sort(key=lambda line: _order(line, config))
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


def _order(line: WorklistLine, config: ChainConfig) -> tuple[bool, int, bool, datetime, str]:
    """Clinical first, then valued patients (the chain's ``value_tiers``, highest first), then overdue,
    then by due time (then patient, for a stable list)."""
    return (line.urgency != Urgency.CLINICAL, config.tier_rank(line.value_tier), not line.overdue, line.due_at,
            line.patient_id)


def _connection(session: Session) -> Connection:
    """The session's connection for Core execution: plain rows need none of the ORM's machinery.

    Pending changes are flushed first, as ``session.execute`` would with autoflush.
    """
    if session.autoflush:
        session.flush()
    return session.connection()
