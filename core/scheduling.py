"""Turning episodes into tasks, idempotently (``followup schedule``).

One task per (episode, milestone), enforced by a unique key, so scheduling twice
creates nothing new. Episodes are streamed and their tasks written in batches, so
memory stays bounded however many episodes there are.

A chain schedules about a million tasks a year, so the batch path is built for
it (docs/performance.md): each (site, procedure) gets a :class:`_Plan` once (the
effective milestones, their constant columns, one shift function per distinct
duration, the site's memoised :class:`~core.placement.Placer`), each task is one
positional row of driver values, and the rows go to the database the way a
hand-written loader would send them, while still counting what was really
inserted: an ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite,
``COPY`` on PostgreSQL (each with an exact fallback when a concurrent run stored
some rows first), SQLAlchemy's portable insertmanyvalues elsewhere.
:func:`task_rows` is the plain per-episode reference the fast path must equal
(tests/test_benchmarks.py, benchmarks/scale.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Integer, Text, any_, bindparam, cast, select, update
from sqlalchemy.orm import Session

from core.config import ChainConfig, Site
from core.db import rollups
from core.db.models import Episode, Patient, Task
from core.placement import Placer, milestone_times, place, regular_offset, shifter, times_for
from core.plugins import Plugins
from core.protocol import Duration, Milestone
from core.vocab import EpisodeStatus, TaskStatus

# A milestone whose window closed more than this long before it was scheduled
# (history imported when a clinic starts) is stored as "expired": visible and
# counted, but not put on anyone's worklist. A window that closed recently is an
# open, overdue task: it is still worth the call.
EXPIRY_GRACE = timedelta(days=14)


@dataclass
class ScheduleResult:
    episodes: int = 0
    created: int = 0
    existing: int = 0
    provisional: int = 0
    expired: int = 0
    suppressed: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def applies(milestone: Milestone, attributes: dict[str, Any]) -> bool:
    """Does a milestone's ``when`` match the episode? A missing attribute counts as false/unknown."""
    for key, expected in milestone.when.items():
        got = attributes.get(key)
        if got is None and expected in (False, None):
            continue
        if got != expected:
            return False
    return True


class Protocols:
    """Effective milestones per site and procedure (plugin milestones + site overrides), cached."""

    def __init__(self, config: ChainConfig, plugins: Plugins):
        self.config, self.plugins = config, plugins
        self._cache: dict[tuple[str, str, str], list[Milestone]] = {}
        self._plans: dict[tuple[str, str, str], _Plan] = {}
        self._placers: dict[str, Placer] = {}

    def milestones(self, site: Site, specialty: str, procedure: str) -> list[Milestone]:
        key = (site.code, specialty, procedure)
        if key not in self._cache:
            found = [m for _, m in self.plugins.milestones(specialty, procedure)]
            self._cache[key] = site.apply_overrides(specialty, procedure, found)
        return self._cache[key]

    def max_attempts(self, site: Site, specialty: str, procedure: str) -> int:
        spec = self.plugins.specialty(specialty)
        proc = spec.procedure(procedure) if spec else None
        return (proc.max_attempts if proc else None) or site.max_failed_attempts

    def trigger(self, specialty: str, procedure: str) -> str:
        spec = self.plugins.specialty(specialty)
        proc = spec.procedure(procedure) if spec else None
        return proc.trigger if proc else "procedure"

    def plan(self, site: Site, specialty: str, procedure: str, stamp: Any) -> _Plan:
        """What scheduling one episode of this procedure at this site needs, worked out once.

        ``stamp`` is the run's ``now`` as the database driver takes it (created/updated_at).
        """
        key = (site.code, specialty, procedure)
        found = self._plans.get(key)
        if found is None:
            placer = self._placers.get(site.code)
            if placer is None:
                placer = self._placers[site.code] = Placer(
                    site.calling_windows, site.quiet_hours, site.calendar(self.config), site.timezone
                )
            found = self._plans[key] = _Plan.build(
                site, specialty, procedure, self.milestones(site, specialty, procedure),
                max_attempts=self.max_attempts(site, specialty, procedure), placer=placer, stamp=stamp,
                trigger=self.trigger(specialty, procedure),
            )
        return found


# Columns of a task row on the fast path: the ones that vary per task first, then the
# ones a plan fixes per milestone. Every other column takes its default (NULL).
_VARYING = (
    "episode_id", "patient_id", "due_at", "next_attempt_at", "window_start", "window_end",
    "target_at", "provisional", "outside_window", "status",
)
_FIXED = (
    "site", "specialty", "procedure", "trigger", "milestone", "purpose", "channel", "urgency", "offset",
    "window_earliest", "window_latest", "max_attempts", "attempts", "failed_attempts",
    "created_at", "updated_at",
)
COLUMNS = _VARYING + _FIXED


class _Step(NamedTuple):
    """One milestone of a plan: indexes of its three instants in the plan's shifts, and the fixed columns.

    A tuple, unpacked in the loop: attribute access per task is measurable at a million tasks.
    """

    milestone: Milestone
    key: str
    conditional: bool
    urgency: str
    target: int
    start: int
    end: int
    fixed: tuple[Any, ...]


@dataclass(frozen=True)
class _Plan:
    """The milestones of one (site, procedure), with every per-episode constant precomputed.

    Each distinct duration (offsets and window bounds are often shared) becomes one
    shift function, applied once per episode; placement goes through the site's
    :class:`Placer`. The rows are the same as :func:`task_rows` gives.
    """

    tz: ZoneInfo
    shifts: tuple[Callable[[datetime, datetime, timedelta | None], tuple[datetime, datetime]], ...]
    steps: tuple[_Step, ...]
    placer: Placer
    conditional: bool  # does any milestone depend on the episode's attributes?

    @classmethod
    def build(
        cls, site: Site, specialty: str, procedure: str, milestones: list[Milestone], *,
        max_attempts: int, placer: Placer, stamp: Any, trigger: str = "procedure",
    ) -> _Plan:
        durations: dict[str, int] = {}
        shifts: list[Callable[[datetime, datetime, timedelta | None], tuple[datetime, datetime]]] = []

        def index(duration: Duration) -> int:
            text = str(duration)
            if text not in durations:
                durations[text] = len(shifts)
                shifts.append(shifter(duration))
            return durations[text]

        steps = []
        for ms in milestones:
            fixed = {
                "site": site.code, "specialty": specialty, "procedure": procedure, "trigger": trigger,
                "milestone": ms.key,
                "purpose": ms.purpose, "channel": ms.channel, "urgency": ms.urgency,
                "offset": str(ms.offset), "window_earliest": str(ms.window.earliest),
                "window_latest": str(ms.window.latest), "max_attempts": max_attempts,
                "attempts": 0, "failed_attempts": 0, "created_at": stamp, "updated_at": stamp,
            }
            steps.append(_Step(
                milestone=ms, key=ms.key, conditional=bool(ms.when), urgency=ms.urgency,
                target=index(ms.offset), start=index(ms.window.earliest), end=index(ms.window.latest),
                fixed=tuple(fixed[name] for name in _FIXED),
            ))
        return cls(site.timezone, tuple(shifts), tuple(steps), placer, any(step.conditional for step in steps))


def task_rows(
    episode: Episode,
    site: Site,
    milestones: Iterable[Milestone],
    *,
    calendar: Any,
    max_attempts: int,
    now: datetime,
    do_not_contact: bool,
) -> list[dict[str, Any]]:
    """The task rows of one episode (not yet stored)."""
    rows = []
    for ms in milestones:
        if not applies(ms, episode.attributes or {}):
            continue
        times = times_for(episode.occurred_at, ms, site.timezone)
        placed = place(
            times, ms.urgency, windows=site.calling_windows, quiet=site.quiet_hours,
            calendar=calendar, tz=site.timezone,
        )
        status = TaskStatus.OPEN
        if do_not_contact:
            status = TaskStatus.SUPPRESSED
        elif times.window_end < now - EXPIRY_GRACE:
            status = TaskStatus.EXPIRED
        rows.append({
            "episode_id": episode.id,
            "patient_id": episode.patient_id,
            "site": site.code,
            "specialty": episode.specialty,
            "procedure": episode.procedure,
            "trigger": episode.trigger,
            "milestone": ms.key,
            "purpose": ms.purpose,
            "channel": ms.channel,
            "urgency": ms.urgency,
            "due_at": placed.due_at,
            "window_start": times.window_start,
            "window_end": times.window_end,
            "target_at": times.target,
            "offset": str(ms.offset),
            "window_earliest": str(ms.window.earliest),
            "window_latest": str(ms.window.latest),
            "provisional": placed.provisional,
            "outside_window": placed.outside_window,
            "status": status,
            "max_attempts": max_attempts,
            "attempts": 0,
            "failed_attempts": 0,
            "attempts_logged": 0,
            "next_attempt_at": placed.due_at,
            "created_at": now,
            "updated_at": now,
        })
    return rows


def schedule(
    session: Session,
    config: ChainConfig,
    plugins: Plugins,
    now: datetime,
    *,
    episode_ids: Iterable[int] | None = None,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    user: str | None = None,
) -> ScheduleResult:
    """Create the missing tasks of every active episode (or of ``episode_ids``); admins only (core/access.py)."""
    from core import access

    access.require(config, user, access.SCHEDULE)
    protocols = Protocols(config, plugins)
    result = ScheduleResult()
    writer = _TaskWriter.for_session(session)
    # Plain rows, not ORM objects: the episodes are only read. The attributes come as JSON
    # text, parsed only for the few procedures with a conditional milestone.
    query = (
        select(
            Episode.id, Episode.site, Episode.specialty, Episode.procedure, Episode.patient_id,
            Episode.occurred_at, Patient.do_not_contact, cast(Episode.attributes, Text).label("attributes"),
            Episode.external_id,
        )
        .join(Patient, Patient.id == Episode.patient_id)
        .where(Episode.status == EpisodeStatus.ACTIVE)
        .order_by(Episode.id)
    )
    if episode_ids is not None:
        query = query.where(Episode.id.in_(list(episode_ids)))

    # The reports' day counts take the run's tasks at the end, grouped (core/db/rollups.py).
    with rollups.deferred(session.connection(), now, sites=config.sites):
        for batch in _batches(session.execute(query.execution_options(yield_per=batch_size)), batch_size):
            ids = [episode.id for episode in batch]
            rows = _batch_rows(config, protocols, writer.instant, batch, _existing_tasks(session, ids), now)
            _store_batch(session, writer, ids, rows, now, result)
            if progress:
                progress(len(ids))
    return result


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _BatchRows:
    """The new task rows of one batch of episodes, and what was counted while making them."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    episodes: int = 0
    existing: int = 0
    problems: list[str] = field(default_factory=list)


def _batch_rows(
    config: ChainConfig,
    protocols: Protocols,
    instant: Callable[[datetime], Any],
    batch: list[Any],
    existing: set[tuple[int, str]],
    now: datetime,
) -> _BatchRows:
    """The rows of every task of ``batch`` not in ``existing`` (pure computation: no database)."""
    out = _BatchRows()
    expiry = (now - EXPIRY_GRACE).astimezone(UTC)
    stamp = instant(now)
    due_values: dict[datetime, Any] = {}
    rows = out.rows
    plans: dict[tuple[str, str, str], _Plan] = {}
    for episode_id, site_code, specialty, procedure, patient_id, anchor, dnc, attributes, external_id in batch:
        out.episodes += 1
        plan = plans.get((site_code, specialty, procedure))
        if plan is None:
            site = config.sites.get(site_code)
            if site is None:
                out.problems.append(f"episode {external_id}: site {site_code!r} is not in the configuration")
                continue
            if specialty not in site.specialties:
                out.problems.append(
                    f"episode {external_id}: specialty {specialty!r} is not enabled at site {site.code}"
                )
                continue
            plan = plans[site_code, specialty, procedure] = protocols.plan(site, specialty, procedure, stamp)
        local_anchor = anchor.astimezone(plan.tz)
        offset = regular_offset(local_anchor)
        times, utc = zip(*[shift(local_anchor, anchor, offset) for shift in plan.shifts], strict=True)
        stored = [instant(moment) for moment in utc]
        if plan.conditional:
            attributes = (json.loads(attributes) if isinstance(attributes, str) else attributes) or {}
        status = TaskStatus.SUPPRESSED if dnc else None
        place_one = plan.placer.place_parts
        for milestone, key, conditional, urgency, i_target, i_start, i_end, fixed in plan.steps:
            if conditional and not applies(milestone, attributes):
                continue
            if existing and (episode_id, key) in existing:
                out.existing += 1
                continue
            target = times[i_target]
            due_at, provisional, outside = place_one(target, times[i_start], times[i_end], urgency)
            # The due time is mostly the target itself or a calling slot's start: convert each once.
            if due_at is target:
                due = stored[i_target]
            else:
                due = due_values.get(due_at)
                if due is None:
                    due = due_values[due_at] = instant(due_at.astimezone(UTC))
            rows.append((
                episode_id, patient_id, due, due, stored[i_start], stored[i_end], stored[i_target],
                provisional, outside, status or (TaskStatus.EXPIRED if utc[i_end] < expiry else TaskStatus.OPEN),
            ) + fixed)
    return out


def _store_batch(
    session: Session, writer: _TaskWriter, ids: list[int], batch: _BatchRows, now: datetime,
    result: ScheduleResult,
) -> None:
    result.episodes += batch.episodes
    result.existing += batch.existing
    result.problems.extend(batch.problems)
    rows = batch.rows
    if rows:
        # Count what was really inserted: a concurrent run may have stored some rows first.
        inserted = writer.write(session, rows)
        skipped = len(rows) - len(inserted)
        result.created += len(inserted)
        result.existing += skipped
        result.provisional += sum(1 for status, provisional in inserted if provisional and status == TaskStatus.OPEN)
        result.expired += sum(1 for status, _ in inserted if status == TaskStatus.EXPIRED)
        result.suppressed += sum(1 for status, _ in inserted if status == TaskStatus.SUPPRESSED)
    session.execute(update(Episode).where(_among(Episode.id, ids, session)).values(scheduled_at=now))


class _TaskWriter:
    """Inserts positional task rows (``COLUMNS`` order) but not duplicates.

    ``write`` returns (status, provisional) of each row really inserted.

    ``instant`` turns an aware datetime into what this writer's rows carry: the
    driver's own value (what :class:`~core.db.models.UTCDateTime` binds) on the
    fast paths, the datetime itself for the generic Core path.
    """

    def __init__(self, instant: Callable[[datetime], Any]):
        self.instant = instant

    @staticmethod
    def for_session(session: Session) -> _TaskWriter:
        dialect = session.get_bind().dialect
        bind = Task.__table__.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
        if dialect.name == "sqlite" and bind is not None:
            return _SQLiteWriter(bind, dialect)
        if dialect.name == "postgresql" and dialect.driver == "psycopg" and bind is not None:
            return _CopyWriter(bind, dialect)
        return _TaskWriter(lambda moment: moment)

    def write(self, session: Session, rows: list[tuple[Any, ...]]) -> list[Any]:
        """The portable path: a Core executemany of dicts (SQLAlchemy's insertmanyvalues)."""
        stmt = _insert_ignoring_duplicates(session).returning(Task.status, Task.provisional)
        return session.connection().execute(stmt, [dict(zip(COLUMNS, row, strict=True)) for row in rows]).all()

    @staticmethod
    def _sql_columns(dialect: Any) -> str:
        quote = dialect.identifier_preparer.quote
        return ", ".join(quote(name) for name in COLUMNS)


class _SQLiteWriter(_TaskWriter):
    """SQLite: one ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``, as fast as a raw one.

    Measured at a million rows: a multi-row ``VALUES`` page costs 30% more, with
    ``RETURNING`` 40%, inside savepoints 35%. Without RETURNING the driver's row
    count says how many rows went in. When a concurrent run stored some first,
    the rows with an id above the largest one before this write are exactly ours:
    SQLite lets one connection write at a time, and the engine starts every
    transaction with ``BEGIN`` (core.db.engine), so nobody else inserts from our
    read of that largest id to our commit.
    """

    def __init__(self, instant: Callable[[datetime], Any], dialect: Any):
        super().__init__(instant)
        marks = ", ".join("?" * len(COLUMNS))
        self.insert = (
            f"INSERT INTO tasks ({self._sql_columns(dialect)}) VALUES ({marks}) "
            "ON CONFLICT (episode_id, milestone) DO NOTHING"
        )

    def write(self, session: Session, rows: list[tuple[Any, ...]]) -> list[Any]:
        conn = session.connection()
        before = conn.exec_driver_sql("SELECT max(id) FROM tasks").scalar()
        if conn.exec_driver_sql(self.insert, rows).rowcount == len(rows):
            return [(row[9], row[7]) for row in rows]
        return conn.exec_driver_sql(
            "SELECT status, provisional FROM tasks WHERE id > ?", (before or 0,)
        ).all()


class _CopyWriter(_TaskWriter):
    """PostgreSQL (psycopg): ``COPY`` straight into tasks, inside a savepoint.

    When a concurrent run stored some of the rows first, the copy fails on the
    unique key: it is rolled back and the rows go through a temporary table and
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` instead. (A multi-row
    ``VALUES`` with thousands of parameters costs PostgreSQL several times ``COPY``.)
    """

    STAGE = "followup_task_stage"

    def __init__(self, instant: Callable[[datetime], Any], dialect: Any):
        super().__init__(instant)
        columns = self._sql_columns(dialect)
        self.copy = f"COPY tasks ({columns}) FROM STDIN"
        self.create = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.STAGE} ON COMMIT DROP AS "
            f"SELECT {columns} FROM tasks WITH NO DATA"
        )
        self.copy_stage = f"COPY {self.STAGE} ({columns}) FROM STDIN"
        self.insert = (
            f"INSERT INTO tasks ({columns}) SELECT {columns} FROM {self.STAGE} "
            "ON CONFLICT (episode_id, milestone) DO NOTHING RETURNING status, provisional"
        )

    def write(self, session: Session, rows: list[tuple[Any, ...]]) -> list[Any]:
        from psycopg.errors import UniqueViolation

        conn = session.connection()
        conn.exec_driver_sql("SAVEPOINT followup_copy")
        try:
            self._copy(conn, self.copy, rows)
        except UniqueViolation:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT followup_copy")
            conn.exec_driver_sql("RELEASE SAVEPOINT followup_copy")
            conn.exec_driver_sql(self.create)
            self._copy(conn, self.copy_stage, rows)
            inserted = conn.exec_driver_sql(self.insert).all()
            conn.exec_driver_sql(f"TRUNCATE {self.STAGE}")
            return inserted
        conn.exec_driver_sql("RELEASE SAVEPOINT followup_copy")
        return [(row[9], row[7]) for row in rows]

    @staticmethod
    def _copy(conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(sql) as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)


def _among(column: Any, ids: list[int], session: Session) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``: one parameter instead of thousands."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def _existing_tasks(session: Session, episode_ids: list[int]) -> set[tuple[int, str]]:
    """(episode, milestone) pairs already stored; the unique key still guards against a concurrent run."""
    query = select(Task.episode_id, Task.milestone).where(_among(Task.episode_id, episode_ids, session))
    return {(episode_id, milestone) for episode_id, milestone in session.execute(query)}


def _insert_ignoring_duplicates(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover
        from sqlalchemy import insert as plain

        return plain(Task.__table__)
    return insert(Task.__table__).on_conflict_do_nothing(index_elements=["episode_id", "milestone"])


def replan(session: Session, config: ChainConfig, now: datetime, *, user: str | None = None) -> int:
    """Re-place open provisional tasks now that holiday data may have arrived. Returns how many moved."""
    from core import access

    access.require(config, user, access.SCHEDULE)
    rollups.take_turns(session, config.sites)  # moved tasks move their day counts (core/db/rollups.py)
    moved = 0
    query = (
        select(Task, Episode.occurred_at)
        .join(Episode, Episode.id == Task.episode_id)
        .where(Task.status == TaskStatus.OPEN, Task.provisional.is_(True))
    )
    for task, occurred_at in session.execute(query).all():
        site = config.sites.get(task.site)
        if site is None:
            continue
        # The task keeps its milestone's offset and window: place it again from those.
        times = milestone_times(
            occurred_at, Duration.parse(task.offset), Duration.parse(task.window_earliest),
            Duration.parse(task.window_latest), site.timezone,
        )
        placed = place(
            times, task.urgency, windows=site.calling_windows, quiet=site.quiet_hours,
            calendar=site.calendar(config), tz=site.timezone,
        )
        if placed.due_at != task.due_at or placed.provisional != task.provisional:
            moved += placed.due_at != task.due_at
            task.due_at = placed.due_at
            if task.attempts == 0:
                task.next_attempt_at = placed.due_at
            task.provisional = placed.provisional
            task.outside_window = placed.outside_window
            task.updated_at = now
    return moved
