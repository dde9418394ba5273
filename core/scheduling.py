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
The plain per-episode reference the fast path must equal lives with the tests
(tests/reference.py: tests/test_benchmarks.py, benchmarks/scale.py).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Integer, Text, any_, bindparam, cast, select, text, update
from sqlalchemy.orm import Session

from core.config import ChainConfig, Site
from core.db import rollups
from core.db.models import Episode, Patient, Task, utc_text
from core.db.uow import UnitOfWork, collection_paused, copy_rows, unit_of_work
from core.placement import _REGULAR, _UNKNOWN, CALENDAR_UNITS, MilestoneTimes, Placer, regular_offset, shifter
from core.planner import History, Planner, Timing, planner
from core.plugins import Plugins
from core.protocol import Duration, Milestone
from core.tasklist import local_iso
from core.vocab import FINAL_STATUSES, EpisodeStatus, TaskStatus, Urgency

# A milestone whose window closed more than this long before it was scheduled
# (history imported when a clinic starts) is stored as "expired": visible and
# counted, but not put on anyone's worklist. A window that closed recently is an
# open, overdue task: it is still worth the call.
EXPIRY_GRACE = timedelta(days=14)


@dataclass
class ScheduleResult:
    """What one run did: ``created``, ``moved``, ``cancelled`` and ``unchanged`` (left as they were) tasks.

    ``existing`` is the tasks that were already there and stayed as they were (the same
    as ``unchanged``; kept for scripts that read it). ``changes`` lists each change
    when asked for (a dry run): see :class:`Change`.
    """

    episodes: int = 0
    created: int = 0
    moved: int = 0
    cancelled: int = 0
    unchanged: int = 0
    provisional: int = 0
    expired: int = 0
    suppressed: int = 0
    dry_run: bool = False
    problems: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def existing(self) -> int:
        return self.unchanged

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["existing"] = self.existing
        return out


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
        self._plans: dict[tuple[str, str, str, bool], _Plan] = {}

    def milestones(self, site: Site, specialty: str, procedure: str) -> list[Milestone]:
        key = (site.code, specialty, procedure)
        if key not in self._cache:
            found = [m for _, m in self.plugins.milestones(specialty, procedure)]
            spec = self.plugins.specialty(specialty)
            proc = spec.procedure(procedure) if spec else None
            self._cache[key] = site.apply_overrides(specialty, procedure, found, proc.events if proc else None)
        return self._cache[key]

    def max_attempts(self, site: Site, specialty: str, procedure: str) -> int:
        spec = self.plugins.specialty(specialty)
        proc = spec.procedure(procedure) if spec else None
        return (proc.max_attempts if proc else None) or site.max_failed_attempts

    def trigger(self, specialty: str, procedure: str) -> str:
        spec = self.plugins.specialty(specialty)
        proc = spec.procedure(procedure) if spec else None
        return proc.trigger if proc else "procedure"

    def plan(self, site: Site, specialty: str, procedure: str, stamp: Any, *, words: bool = False) -> _Plan:
        """What scheduling one episode of this procedure at this site needs, worked out once.

        ``stamp`` is the run's ``now`` as the database driver takes it (created/updated_at);
        ``words``: vocabulary values (status, urgency, ...) as plain ``str`` (see :class:`_TaskWriter`).
        """
        key = (site.code, specialty, procedure, words)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = _Plan.build(
                site, specialty, procedure, self.milestones(site, specialty, procedure),
                max_attempts=self.max_attempts(site, specialty, procedure), planner=planner(self.config, site),
                stamp=stamp,
                trigger=self.trigger(specialty, procedure), words=words,
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
    "window_earliest", "window_latest", "before_event", "max_attempts", "attempts", "failed_attempts",
    "created_at", "updated_at",
)
COLUMNS = _VARYING + _FIXED
_SITE, _SPECIALTY, _MILESTONE = COLUMNS.index("site"), COLUMNS.index("specialty"), COLUMNS.index("milestone")
_DUE, _STATUS = COLUMNS.index("due_at"), COLUMNS.index("status")


class _Step(NamedTuple):
    """One milestone of a plan: indexes of its instants in the plan's shifts, and the fixed columns.

    A tuple, unpacked in the loop: attribute access per task is measurable at a million tasks.
    """

    milestone: Milestone
    key: str
    conditional: bool
    slow: bool  # a reminder before an event: placed by the planner (its window ends before the event)
    urgency: str
    target: int
    start: int
    end: int
    event: int  # the shift of the event a reminder prepares, -1 when none
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
    daily: tuple[bool, ...]  # per shift: its instant depends on the anchor's local date only (an end of day)
    steps: tuple[_Step, ...]
    placer: Placer
    conditional: bool  # does any milestone depend on the episode's attributes?
    planner: Planner

    @classmethod
    def build(
        cls, site: Site, specialty: str, procedure: str, milestones: list[Milestone], *,
        max_attempts: int, planner: Planner, stamp: Any, trigger: str = "procedure", words: bool = False,
    ) -> _Plan:
        durations: dict[tuple[int, str, bool], int] = {}
        shifts: list[Callable[[datetime, datetime, timedelta | None], tuple[datetime, datetime]]] = []
        daily: list[bool] = []

        def index(duration: Duration, end: bool = False) -> int:
            key = (duration.amount, duration.unit, end and duration.unit in CALENDAR_UNITS)
            if key not in durations:
                durations[key] = len(shifts)
                shifts.append(shifter(duration, to_end_of_day=end))
                daily.append(key[2])
            return durations[key]

        steps = []
        for ms in milestones:
            timing = Timing.of(ms)
            fixed = {
                "site": site.code, "specialty": specialty, "procedure": procedure, "trigger": trigger,
                "milestone": ms.key,
                "purpose": ms.purpose, "channel": ms.channel, "urgency": ms.urgency,
                "offset": str(ms.offset), "window_earliest": str(ms.window.earliest),
                "window_latest": str(ms.window.latest), "max_attempts": max_attempts,
                "before_event": timing.snapshot()[4],
                "attempts": 0, "failed_attempts": 0, "created_at": stamp, "updated_at": stamp,
            }
            steps.append(_Step(
                milestone=ms, key=ms.key, conditional=bool(ms.when), slow=ms.before is not None, urgency=ms.urgency,
                target=index(ms.offset), start=index(ms.window.earliest), end=index(ms.window.latest, True),
                event=-1 if timing.before is None else index(timing.before),
                fixed=tuple(_word(fixed[name]) if words else fixed[name] for name in _FIXED),
            ))
        return cls(site.timezone, tuple(shifts), tuple(daily), tuple(steps), planner.placer,
                   any(step.conditional for step in steps), planner)


def schedule(
    session: Session,
    config: ChainConfig,
    plugins: Plugins,
    now: datetime,
    *,
    episode_ids: Iterable[int] | None = None,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
    provisional_only: bool = False,
    user: str = "system",
) -> ScheduleResult:
    """Bring every episode's tasks in line with the episode and its protocol as they are now.

    Missing tasks are created, open ones whose episode (event time, procedure, site,
    specialty) or milestone (offset, window) changed are moved, due and window
    together, and open ones whose milestone no longer applies (or whose episode was
    cancelled) are cancelled. Final tasks (reached, unsuccessful, booked, refused,
    wrong number) are never touched, and attempts are never rewritten. With
    ``provisional_only`` (``schedule --replan``) only open provisional placements are
    placed again, on the calendar as it is now. With ``dry_run`` nothing is written
    and ``changes`` lists what would change. It writes in one unit of work (core/db/uow.py).
    """
    from core import access

    access.require(config, user, access.SCHEDULE)  # admins only (core/access.py)
    protocols = Protocols(config, plugins)
    result = ScheduleResult(dry_run=dry_run)
    writer = _TaskWriter.for_session(session)
    # Plain rows, not ORM objects: the episodes are only read. The attributes come as JSON
    # text, parsed only for the few procedures with a conditional milestone.
    query = (
        select(
            Episode.id, Episode.site, Episode.specialty, Episode.procedure, Episode.patient_id,
            Episode.occurred_at, Patient.do_not_contact, cast(Episode.attributes, Text).label("attributes"),
            Episode.external_id, Episode.status, Episode.trigger, Patient.preferred_call_time,
        )
        .join(Patient, Patient.id == Episode.patient_id)
        .order_by(Episode.id)
    )
    if provisional_only:
        query = query.where(Episode.id.in_(
            select(Task.episode_id).where(Task.status == TaskStatus.OPEN, Task.provisional.is_(True))
        ))
    if episode_ids is not None:
        query = query.where(Episode.id.in_(list(episode_ids)))
    reconciler = _Reconciler(session, config, protocols, now, result, dry_run=dry_run,
                             provisional_only=provisional_only)

    # The reports' day counts take the run's new tasks at the end, grouped (core/db/rollups.py).
    with (unit_of_work(session, config, sites=config.sites, user=user, now=now,
                       action="replan" if provisional_only else "schedule", turns=False) as uow,
          uow.deferred(config.sites) as counted):
        reconciler.uow = uow
        writer.counted = reconciler.counted = counted
        # A first run fills an empty table: no episode has stored tasks, and each episode is in one
        # batch only, so none of ours appear later either (a concurrent run's are caught on insert).
        first_run = session.execute(select(Task.id).limit(1)).first() is None
        # Core rows in partitions: the ORM's per-row loading cost a tenth of a run on SQLite.
        episodes = session.connection().execute(query.execution_options(yield_per=batch_size))
        with collection_paused():
            _run_batches(session, episodes.partitions(batch_size), config, protocols, writer, reconciler, result,
                         now, first_run=first_run, dry_run=dry_run, provisional_only=provisional_only,
                         progress=progress)
    return result


def _run_batches(
    session: Session, batches: Iterable[list[Any]], config: ChainConfig, protocols: Protocols, writer: _TaskWriter,
    reconciler: _Reconciler, result: ScheduleResult, now: datetime, *, first_run: bool, dry_run: bool,
    provisional_only: bool, progress: Callable[[int], None] | None,
) -> None:
    for batch in batches:
        ids = [episode.id for episode in batch]
        stored = {} if first_run else _existing_tasks(session, ids)
        fresh = [ep for ep in batch if ep.id not in stored and ep.status == EpisodeStatus.ACTIVE]
        if not provisional_only:
            made = _BatchRows()
            rows = _task_rows(made, config, protocols, writer, fresh, set(), now)
            _store_batch(session, writer, made, rows, result, dry_run=dry_run, tz_of=config.timezone_of)
        else:
            result.episodes += len(fresh)
        for episode in batch:
            if episode.id in stored:  # a cancelled episode without tasks has nothing to reconcile
                result.episodes += 1
                reconciler.episode(episode, stored[episode.id])
        if not dry_run:
            session.execute(update(Episode).where(_among(Episode.id, ids, session)).values(scheduled_at=now))
        if progress:
            progress(len(ids))


@dataclass
class _BatchRows:
    """The new task rows of one batch of episodes, and what was counted while making them."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    episodes: int = 0
    existing: int = 0
    problems: list[str] = field(default_factory=list)
    provisional: int = 0  # of the rows: open and provisional
    expired: int = 0
    suppressed: int = 0


def _word(value: Any) -> Any:
    """A vocabulary value (a StrEnum member) as a plain ``str``; anything else as it is."""
    return str.__str__(value) if isinstance(value, str) else value


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
    for _ in _task_rows(out, config, protocols, _TaskWriter(instant), batch, existing, now):
        pass
    return out


def _task_rows(
    out: _BatchRows,
    config: ChainConfig,
    protocols: Protocols,
    writer: _TaskWriter,
    batch: list[Any],
    existing: set[tuple[int, str]],
    now: datetime,
) -> Iterator[tuple[Any, ...]]:
    """:func:`_batch_rows` as they are made, for the driver to send while the next ones are computed:
    each row is also kept in ``out.rows``, and ``out``'s counts are complete once the rows are."""
    instant = writer.instant
    expiry = (now - EXPIRY_GRACE).astimezone(UTC)
    stamp = instant(now)
    rows = out.rows
    append = rows.append
    plans: dict[tuple[str, str, str], _Plan] = {}
    texts: dict[datetime, Any] = {}  # driver values of instants met again (ends of days, calling slots)
    provisional = expired = 0
    regular = _REGULAR.table
    open_, expired_, suppressed = TaskStatus.OPEN, TaskStatus.EXPIRED, TaskStatus.SUPPRESSED
    words, flags = writer.words, writer.flags
    if words:
        open_, expired_, suppressed = str(open_), str(expired_), str(suppressed)
    routine = Urgency.ROUTINE
    out.episodes += len(batch)
    for (episode_id, site_code, specialty, procedure, patient_id, anchor, dnc, attributes, external_id, _, _,
         preferred_time) in batch:
        preferred = _preferred(preferred_time) if preferred_time else None
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
            plan = plans[site_code, specialty, procedure] = protocols.plan(site, specialty, procedure, stamp,
                                                                           words=words)
        local_anchor = anchor.astimezone(plan.tz)
        offset = regular(plan.tz).get(local_anchor.date(), _UNKNOWN)
        if offset is _UNKNOWN:
            offset = regular_offset(local_anchor)
        shifted = [shift(local_anchor, anchor, offset) for shift in plan.shifts]
        stored = []
        for (_, moment), daily in zip(shifted, plan.daily, strict=True):
            if daily:  # an end of day: the same instant for many episodes
                value = texts.get(moment)
                if value is None:
                    value = texts[moment] = instant(moment)
                stored.append(value)
            else:
                stored.append(instant(moment))
        if plan.conditional:
            attributes = (json.loads(attributes) if isinstance(attributes, str) else attributes) or {}
        status = suppressed if dnc else None
        place_one = plan.placer.place_parts
        for milestone, key, conditional, slow, urgency, i_target, i_start, i_end, i_event, fixed in plan.steps:
            if conditional and not applies(milestone, attributes):
                continue
            if existing and (episode_id, key) in existing:
                out.existing += 1
                continue
            target, target_utc = shifted[i_target]
            end, end_utc = shifted[i_end]
            if slow or (preferred is not None and urgency == routine):
                # What Planner.plan does, from the instants already shifted.
                times = MilestoneTimes(target, shifted[i_start][0], end)
                floor = None
                if i_event >= 0:
                    times, floor = Planner._before_event(times, shifted[i_event][0]), anchor
                one = plan.planner._plan(times, urgency, None, preferred=preferred, floor=floor)
                state = status or (expired_ if one.window_end < expiry else open_)
                due = instant(one.due_at.astimezone(UTC))
                row = (
                    episode_id, patient_id, due, due,
                    instant(one.window_start.astimezone(UTC)), instant(one.window_end.astimezone(UTC)),
                    instant(one.target_at.astimezone(UTC)), flags[one.provisional], flags[one.outside_window], state,
                ) + fixed
                append(row)
                yield row
                if state is not open_:
                    expired += state is expired_
                elif one.provisional:
                    provisional += 1
                continue
            due_at, due_provisional, outside = place_one(target, shifted[i_start][0], end, urgency)
            # The due time is mostly the target itself or a calling slot's start: convert each once.
            if due_at is target:
                due = stored[i_target]
            else:
                due = texts.get(due_at)
                if due is None:
                    due = texts[due_at] = instant(due_at.astimezone(UTC))
            if status is not None:
                state = status
            elif end_utc < expiry:
                state = expired_
                expired += 1
            else:
                state = open_
                provisional += due_provisional
            row = (
                episode_id, patient_id, due, due, stored[i_start], stored[i_end], stored[i_target],
                flags[due_provisional], flags[outside], state,
            ) + fixed
            append(row)
            yield row
    out.provisional, out.expired = provisional, expired
    out.suppressed = sum(1 for row in rows if row[9] is suppressed)


def _preferred(text: str | None) -> Any:
    """A patient's preferred calling time as stored (``18:00-20:00``), as a time range; None when unset."""
    if not text:
        return None
    from core.config import TimeRange

    try:
        return TimeRange.model_validate(text)
    except ValueError:
        return None


def _store_batch(
    session: Session, writer: _TaskWriter, batch: _BatchRows, made: Iterator[tuple[Any, ...]],
    result: ScheduleResult, *, dry_run: bool, tz_of: Callable[[str], Any],
) -> None:
    """Store the rows ``made`` (:func:`_task_rows` of ``batch``) as they come, and count them."""
    first = next(made, None)
    if first is not None and not dry_run:
        inserted = writer.write(session, itertools.chain((first,), made), batch)
    else:
        for _ in made:
            pass
    result.episodes += batch.episodes
    result.unchanged += batch.existing
    result.problems.extend(batch.problems)
    rows = batch.rows
    if rows and dry_run:
        result.created += len(rows)
        for row in rows:
            status, provisional = row[9], row[7]
            result.provisional += bool(provisional and status == TaskStatus.OPEN)
            result.expired += status == TaskStatus.EXPIRED
            result.suppressed += status == TaskStatus.SUPPRESSED
            tz = tz_of(row[_SITE])
            result.changes.append({
                "task_id": None, "episode_id": row[0], "milestone": row[_MILESTONE], "change": "created",
                "before": None,
                "after": {"due_at": _as_iso(row[2], tz), "window_start": _as_iso(row[4], tz),
                          "window_end": _as_iso(row[5], tz), "status": str(status)},
            })
    elif rows:
        # Count what was really inserted: a concurrent run may have stored some rows first.
        if inserted is None:  # every row: counted while they were made
            result.created += len(rows)
            result.provisional += batch.provisional
            result.expired += batch.expired
            result.suppressed += batch.suppressed
            return
        result.created += len(inserted)
        result.unchanged += len(rows) - len(inserted)
        result.provisional += sum(1 for status, provisional in inserted if provisional and status == TaskStatus.OPEN)
        result.expired += sum(1 for status, _ in inserted if status == TaskStatus.EXPIRED)
        result.suppressed += sum(1 for status, _ in inserted if status == TaskStatus.SUPPRESSED)


class _TaskWriter:
    """Inserts positional task rows (``COLUMNS`` order) but not duplicates.

    ``write`` takes the rows as they are made (an iterator, each also kept in ``made.rows``) and returns
    (status, provisional) of each row really inserted, or None when every row was.
    ``words`` and ``flags`` say how the rows carry vocabulary values and booleans: the fast paths
    send plain ``str`` (and SQLite integers), which the drivers bind without looking for an adapter
    (sqlite3 asks every ``str`` or ``int`` subclass for one: twice the cost of the insert's binding).

    ``instant`` turns an aware datetime into what this writer's rows carry: the
    driver's own value (what :class:`~core.db.models.UTCDateTime` binds) on the
    fast paths, the datetime itself for the generic Core path.
    """

    words = False
    flags: tuple[Any, Any] = (False, True)
    counted: rollups.Deferred | None = None  # the run's deferred day counts (core.db.rollups.deferred)

    def __init__(self, instant: Callable[[datetime], Any]):
        self.instant = instant

    @staticmethod
    def for_session(session: Session) -> _TaskWriter:
        dialect = session.get_bind().dialect
        bind = Task.__table__.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
        if dialect.name == "sqlite" and bind is not None:
            return _SQLiteWriter(utc_text(), dialect)
        if dialect.name == "postgresql" and dialect.driver == "psycopg" and bind is not None:
            return _CopyWriter(bind, dialect)
        return _TaskWriter(lambda moment: moment)

    def write(self, session: Session, rows: Iterator[tuple[Any, ...]], made: _BatchRows) -> list[Any] | None:
        """The portable path: a Core executemany of dicts (SQLAlchemy's insertmanyvalues)."""
        if self.counted is not None:
            self.counted.recount()  # the new rows are counted from the table at the end
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

    words = True
    flags = (0, 1)

    def __init__(self, instant: Callable[[datetime], Any], dialect: Any):
        super().__init__(instant)
        marks = ", ".join("?" * len(COLUMNS))
        self.insert = (
            f"INSERT INTO tasks ({self._sql_columns(dialect)}) VALUES ({marks}) "
            "ON CONFLICT (episode_id, milestone) DO NOTHING"
        )

    def write(self, session: Session, rows: Iterator[tuple[Any, ...]], made: _BatchRows) -> list[Any] | None:
        conn = session.connection()
        before = conn.exec_driver_sql("SELECT max(id) FROM tasks").scalar()
        for _ in rows:  # made in process either way: nothing to overlap with
            pass
        counts = self.counted.counts if self.counted is not None else None
        if conn.exec_driver_sql(self.insert, made.rows).rowcount == len(made.rows):
            if counts is not None:
                counts.created(made.rows, _DUE, _SITE, _SPECIALTY, _STATUS)
            return None
        inserted = conn.exec_driver_sql(
            "SELECT status, provisional, due_at, site, specialty FROM tasks WHERE id > ?", (before or 0,)
        ).all()
        if counts is not None:
            counts.created(inserted, 2, 3, 4, 0)
        return [(status, provisional) for status, provisional, *_ in inserted]


class _CopyWriter(_TaskWriter):
    """PostgreSQL (psycopg): ``COPY`` straight into tasks, inside a savepoint.

    When a concurrent run stored some of the rows first, the copy fails on the
    unique key: it is rolled back and the rows go through a temporary table and
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` instead. (A multi-row
    ``VALUES`` with thousands of parameters costs PostgreSQL several times ``COPY``.)
    """

    STAGE = "followup_task_stage"
    words = True

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

    def write(self, session: Session, rows: Iterator[tuple[Any, ...]], made: _BatchRows) -> list[Any] | None:
        from psycopg.errors import UniqueViolation

        conn = session.connection()
        conn.exec_driver_sql("SAVEPOINT followup_copy")
        try:
            self._copy(conn, self.copy, rows)
        except UniqueViolation:
            for _ in rows:  # the rest of the rows, if the copy stopped before them
                pass
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT followup_copy")
            conn.exec_driver_sql("RELEASE SAVEPOINT followup_copy")
            conn.exec_driver_sql(self.create)
            self._copy(conn, self.copy_stage, made.rows)
            inserted = conn.exec_driver_sql(self.insert).all()
            conn.exec_driver_sql(f"TRUNCATE {self.STAGE}")
            return inserted
        conn.exec_driver_sql("RELEASE SAVEPOINT followup_copy")
        return None

    @staticmethod
    def _copy(conn: Any, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        copy_rows(conn, sql, rows)


def _among(column: Any, ids: list[int], session: Session) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``: one parameter instead of thousands."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    return column.in_(ids)


_STORED = (
    Task.id, Task.episode_id, Task.milestone, Task.status, Task.site, Task.specialty, Task.procedure, Task.purpose,
    Task.offset, Task.window_earliest, Task.window_latest, Task.urgency, Task.target_at, Task.due_at,
    Task.window_start, Task.window_end, Task.provisional, Task.attempts, Task.next_attempt_at, Task.before_event,
)


def _existing_tasks(session: Session, episode_ids: list[int]) -> dict[int, list[Any]]:
    """The stored tasks of these episodes, by episode, each episode's in id order (the unique key still
    guards against a concurrent run).

    Through the episode index, whatever the statistics say: a first run fills the tasks table
    from nothing, and PostgreSQL, still planning for an empty table, scanned all of it per batch
    and compared every row with the batch's 5,000 episode ids (11-15 s a batch at a million
    tasks). So no ``ORDER BY id`` (a walk of the primary key is an index scan too) and, on
    PostgreSQL, no sequential scan for this one statement.
    """
    found: dict[int, list[Any]] = {}
    query = select(*_STORED).where(_among(Task.episode_id, episode_ids, session))
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:
        before = session.execute(text("SELECT current_setting('enable_seqscan'), "
                                      "set_config('enable_seqscan', 'off', true)")).scalar_one()
    try:
        for row in session.execute(query):
            found.setdefault(row.episode_id, []).append(row)
    finally:
        if pg:
            session.execute(text("SELECT set_config('enable_seqscan', :before, true)"), {"before": before})
    for rows in found.values():
        if len(rows) > 1:
            rows.sort(key=lambda row: row.id)
    return found


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


def _as_iso(value: Any, tz: Any) -> str | None:
    """A stored instant (an aware datetime, or what the driver was given: naive UTC or SQLite text) in ``tz``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return local_iso(value, tz)


def _state(task: Any, tz: Any) -> dict[str, Any]:
    return {"due_at": _as_iso(task.due_at, tz), "window_start": _as_iso(task.window_start, tz),
            "window_end": _as_iso(task.window_end, tz), "status": str(task.status)}


# Why an open task was cancelled (tasks.cancel_reason).
EPISODE_CANCELLED = "episode_cancelled"
MILESTONE_REMOVED = "milestone_no_longer_applies"
EXTRA_CALL = "extra_call"  # the purpose of a call added during a call: not in any protocol
GREETING = "greeting"  # the purpose of a birthday or anniversary greeting (core/greetings.py): nor is this


class _Reconciler:
    """Brings the stored tasks of one episode in line with the episode and its protocol now."""

    def __init__(self, session: Session, config: ChainConfig, protocols: Protocols, now: datetime,
                 result: ScheduleResult, *, dry_run: bool, provisional_only: bool):
        self.session, self.config, self.protocols, self.now = session, config, protocols, now
        self.result, self.dry_run, self.provisional_only = result, dry_run, provisional_only
        self.expiry = now - EXPIRY_GRACE
        self._turns_taken = False
        self.uow: UnitOfWork  # the run's unit of work (set by schedule)
        self.counted: rollups.Deferred | None = None  # its deferred day counts (set by schedule)

    def episode(self, episode: Any, tasks: list[Any]) -> None:
        (episode_id, site_code, specialty, procedure, patient_id, anchor, dnc, attributes, external_id,
         status, trigger, preferred_text) = episode
        preferred = _preferred(preferred_text)
        result = self.result
        site = self.config.sites.get(site_code)
        if site is None or specialty not in site.specialties:
            result.problems.append(
                f"episode {external_id}: site {site_code!r} is not in the configuration" if site is None
                else f"episode {external_id}: specialty {specialty!r} is not enabled at site {site.code}"
            )
            result.unchanged += len(tasks)
            return
        wanted: dict[str, Milestone] = {}
        if status == EpisodeStatus.ACTIVE:
            attrs = (json.loads(attributes) if isinstance(attributes, str) else attributes) or {}
            wanted = {m.key: m for m in self.protocols.milestones(site, specialty, procedure) if applies(m, attrs)}
        plan_of = planner(self.config, site)
        max_attempts = self.protocols.max_attempts(site, specialty, procedure)
        if self.provisional_only:
            self._replace_provisional(tasks, site, anchor)
            return
        for task in tasks:
            milestone = wanted.pop(task.milestone, None)
            if task.status in FINAL_STATUSES:
                result.unchanged += 1
                continue
            if milestone is None:
                keep = task.status == TaskStatus.CANCELLED or (
                    task.purpose in (EXTRA_CALL, GREETING) and status == EpisodeStatus.ACTIVE)
                if keep:
                    result.unchanged += 1
                else:
                    self._cancel(task, site, EPISODE_CANCELLED if status != EpisodeStatus.ACTIVE else MILESTONE_REMOVED)
                continue
            timing = Timing.of(milestone)
            same = (
                (task.offset, task.window_earliest, task.window_latest, task.urgency, task.before_event)
                == timing.snapshot()
                and (task.site, task.specialty, task.procedure) == (site_code, specialty, procedure)
                and task.status != TaskStatus.CANCELLED
            )
            target = timing.offset.add_to(anchor.astimezone(site.timezone))
            plan = None
            if same and target == task.target_at:
                if preferred is None or task.attempts or task.status != TaskStatus.OPEN:
                    result.unchanged += 1
                    continue
                plan = plan_of.plan(timing, anchor, preferred=preferred)  # the patient's time may be new
                if plan.due_at == task.due_at:
                    result.unchanged += 1
                    continue
            plan = plan or plan_of.plan(timing, anchor, History(attempts=task.attempts,
                                                               next_attempt_at=task.next_attempt_at),
                                        preferred=preferred)
            new_status = task.status
            if task.status in (TaskStatus.CANCELLED, TaskStatus.EXPIRED, TaskStatus.OPEN):
                new_status = TaskStatus.OPEN
                if task.attempts == 0 and plan.window_end < self.expiry:
                    new_status = TaskStatus.EXPIRED
                if dnc and new_status == TaskStatus.OPEN:
                    new_status = TaskStatus.SUPPRESSED
            offset, earliest, latest, urgency, before = timing.snapshot()
            values = {
                **plan.columns(), "status": new_status, "before_event": before, "site": site_code,
                "specialty": specialty,
                "procedure": procedure, "trigger": trigger, "purpose": milestone.purpose,
                "channel": milestone.channel, "urgency": urgency, "offset": offset, "window_earliest": earliest,
                "window_latest": latest, "max_attempts": max_attempts, "updated_at": self.now,
            }
            if task.attempts:
                values["next_attempt_at"] = max(task.next_attempt_at or plan.due_at, plan.due_at)
            if new_status != TaskStatus.OPEN or task.status != TaskStatus.OPEN:
                values.update(cancel_reason=None, claimed_until=None)
            self._write(task, values, site, "moved")
            result.moved += 1
            result.provisional += bool(plan.provisional and new_status == TaskStatus.OPEN)
        for milestone in wanted.values():  # milestones the episode has no task for yet
            timing = Timing.of(milestone)
            plan = plan_of.plan(timing, anchor, preferred=preferred)
            new_status = TaskStatus.SUPPRESSED if dnc else (
                TaskStatus.EXPIRED if plan.window_end < self.expiry else TaskStatus.OPEN)
            offset, earliest, latest, urgency, before = timing.snapshot()
            values = {
                **plan.columns(), "before_event": before, "episode_id": episode_id, "patient_id": patient_id,
                "site": site_code,
                "specialty": specialty, "procedure": procedure, "trigger": trigger, "milestone": milestone.key,
                "purpose": milestone.purpose, "channel": milestone.channel, "urgency": urgency, "offset": offset,
                "window_earliest": earliest, "window_latest": latest, "status": new_status,
                "max_attempts": max_attempts, "attempts": 0, "failed_attempts": 0,
                "created_at": self.now, "updated_at": self.now,
            }
            self._create(values, site)
            result.created += 1
            result.provisional += bool(plan.provisional and new_status == TaskStatus.OPEN)
            result.expired += new_status == TaskStatus.EXPIRED
            result.suppressed += new_status == TaskStatus.SUPPRESSED

    def _replace_provisional(self, tasks: list[Any], site: Site, anchor: datetime) -> None:
        """``--replan``: open provisional tasks placed again from their own snapshot, on today's calendar."""
        plan_of = planner(self.config, site)
        for task in tasks:
            if task.status != TaskStatus.OPEN or not task.provisional:
                self.result.unchanged += 1
                continue
            timing = Timing.stored(task.offset, task.window_earliest, task.window_latest, task.urgency,
                                   task.before_event)
            plan = plan_of.plan(timing, anchor, History(attempts=task.attempts, next_attempt_at=task.next_attempt_at))
            if (plan.due_at, plan.provisional, plan.window_end) == (task.due_at, task.provisional, task.window_end):
                self.result.unchanged += 1
                continue
            values = {**plan.columns(), "updated_at": self.now}
            if task.attempts:
                values["next_attempt_at"] = max(task.next_attempt_at or plan.due_at, plan.due_at)
            self._write(task, values, site, "moved")
            self.result.moved += 1
            self.result.provisional += plan.provisional

    def _cancel(self, task: Any, site: Site, reason: str) -> None:
        self._write(task, {"status": TaskStatus.CANCELLED, "cancel_reason": reason, "claimed_until": None,
                           "updated_at": self.now}, site, "cancelled")
        self.result.cancelled += 1

    def _turns(self) -> None:
        if not self._turns_taken:  # moved and cancelled tasks move their day counts (core/db/rollups.py)
            self.uow.turns(self.config.sites)
            self._turns_taken = True

    def _write(self, task: Any, values: dict[str, Any], site: Site, change: str) -> None:
        if self.dry_run or self.result.dry_run:
            after = {**_state(task, site.timezone), **{k: values[k] for k in ("status",) if k in values}}
            for key in ("due_at", "window_start", "window_end"):
                if key in values:
                    after[key] = _as_iso(values[key], site.timezone)
            after["status"] = str(after["status"])
            self.result.changes.append({"task_id": task.id, "episode_id": task.episode_id,
                                        "milestone": task.milestone, "change": change,
                                        "before": _state(task, site.timezone), "after": after})
            return
        self._turns()
        self.session.execute(update(Task).where(Task.id == task.id).values(**values))

    def _create(self, values: dict[str, Any], site: Site) -> None:
        if self.dry_run:
            self.result.changes.append({
                "task_id": None, "episode_id": values["episode_id"], "milestone": values["milestone"],
                "change": "created", "before": None,
                "after": {"due_at": _as_iso(values["due_at"], site.timezone),
                          "window_start": _as_iso(values["window_start"], site.timezone),
                          "window_end": _as_iso(values["window_end"], site.timezone), "status": str(values["status"])},
            })
            return
        if self.counted is not None:
            self.counted.recount()  # a row the writer does not count: the new rows counted from the table
        self.session.execute(_insert_ignoring_duplicates(self.session), [values])


def replan(session: Session, config: ChainConfig, now: datetime, plugins: Plugins | None = None,
           *, dry_run: bool = False, user: str = "system") -> ScheduleResult:
    """``schedule --replan``: the reconcile, restricted to open provisional placements.

    Run once holiday data arrived: each such task is placed again (due and window
    together) from its episode and its own offset/window snapshot.
    """
    if plugins is None:
        from core.plugins import get_plugins

        plugins = get_plugins()
    return schedule(session, config, plugins, now, dry_run=dry_run, provisional_only=True, user=user)
