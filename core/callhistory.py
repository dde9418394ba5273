"""Call history loaded in bulk: many past calls (attempts) and their answers at once.

A clinic moving from spreadsheets brings the calls it already made. :func:`load_attempts`
takes them all in one transaction, as ``record_call`` would have taken them one by one,
and costs about what the database takes to load the rows themselves:

* **validated first, nothing written on a problem**: every call's task exists and is
  open, its outcome is known, it was made before now and not after the call that closed
  its task, its answers are the task's questions and parse; every problem is listed with
  its row (:class:`core.importing.ImportFailed`);
* **the same rules as a recorded call**: per task, in time order, a failed attempt counts
  unless it came within the site's minimum gap of the previous counted one
  (:func:`core.calls.counts`), the failed ones that count close the task as unsuccessful at
  its limit, otherwise the next try is planned after the last one; wrong number, refused,
  reached and booked close it. ``given_up`` closes tasks whose history ends open as
  unsuccessful (a spreadsheet's 放弃). The history fires no follow-up actions (escalations,
  complaints, extra calls): those were handled when the calls were made. A wrong number
  closes its task but does not flag the patient's phone as it is now;
* **one unit of work** (core/db/uow.py): access (``history``: admins), the sites' turns,
  one audit row for the whole load (set-based, its counts and the attempt ids);
* **the day counts counted once**: the rows go in set-based (SQLite one statement per chunk,
  PostgreSQL ``COPY``) and the tasks are updated in one statement. The triggers of the
  reports' day counts (core/db/rollups.py) stand aside inside the transaction
  (:func:`core.db.rollups.held_back`: SQLite's are dropped, PostgreSQL's see a setting
  local to the transaction); the load's day rows are added up in Python from its planned
  rows (:class:`core.db.rollups.DayCounts`: each task as it was subtracted and as it is
  added, each call and scored answer added, by the triggers' rules) and written once at
  the end, grouped, appended beside the day tables (their ``*_day_parts``, migration 0019:
  no key looked up; a report adds them up with the day tables). On PostgreSQL that spares
  the statement triggers' joins with every task and call (a hash of the whole table per
  statement at a million tasks), and the adding up happens while the database updates the
  tasks (PostgreSQL: the ``UPDATE`` waits in a thread, without the GIL; SQLite: in the
  writer's thread). ``followup db recount --check`` agrees afterwards;
* **costs about what the rows cost**: the calls are checked, the rules applied and the
  driver rows built in one pass over plain strings, a
  call's instant made UTC text from memos (core.db.models.utc_text), an answer parsed and
  encoded once per question and text; the attempts go into the database as they are planned,
  so the database inserts them while Python checks the next ones: on PostgreSQL into their
  ``COPY`` (ids: one range from the sequence in one statement), on SQLite a chunk at a time in a
  worker thread, each chunk one statement over its rows as JSON, which the driver runs without
  the GIL (ids: the largest + 1, checked afterwards; :class:`_Writer`). Under a savepoint: a
  problem found on a later row takes back what was written, and the caller's transaction is as
  it was. Garbage collection paused meanwhile (the load's tuples live until it ends, and are
  freed before it resumes).

``followup import FILE`` reads such a history from a spreadsheet (core/historyfile.py).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from core.calls import OUTCOMES, booking_problem, invites_back
from core.config import ChainConfig
from core.db import rollups
from core.db.models import Attempt, utc_text
from core.db.uow import collection_paused, copy_rows, copy_stream, unit_of_work
from core.importing import ImportFailed, RowProblem, row_problem
from core.messages import Msg
from core.planner import planner
from core.plugins import Plugins
from core.vocab import FAILED_OUTCOMES, REACHED_OUTCOMES, TREATED_TRIGGERS, Channel, Outcome, TaskStatus

ACTION = "history"  # the unit of work's action (core/access.py: importing, admins only)
CHUNK = 5000  # task ids per read
STAGE = "followup_history_tasks"  # the tasks' new values, then the update from them
ATTEMPT_COLUMNS = ("task_id", "at", "site", "by", "outcome", "note", "counted")  # a plan's attempt row
STREAMED = ("id", "task_id", "at", "site", '"by"', "outcome", "note", "counted", "channel")  # PostgreSQL's COPY
ANSWER_COLUMNS = ("task_id", "attempt_id", "question", "dimension", "value", "number")
TASK_COLUMNS = ("id", "status", "attempts", "failed_attempts", "attempts_logged", "next_attempt_at",
                "completed_at", "booked_at")
KEPT = ("next_attempt_at", "completed_at", "booked_at")  # None in a plan: the task's value stays


@dataclass(frozen=True)
class PastCall:
    """One call made before: on which task, when, by whom, how it ended, what the patient answered.

    ``answers``: question key -> the answer as written (each question parses its own);
    ``row``: where the call came from (a file's row) for the problems; 0: its position, from 1.
    """

    task_id: int
    at: datetime
    by: str
    outcome: str
    answers: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None
    booked_at: datetime | None = None
    row: int = 0


@dataclass
class HistoryPlan:
    """The rows a load writes, computed and checked, not written yet, in the driver's values (an instant:
    SQLite's stored text, naive UTC for psycopg, a call's instant its UTC text on both; ``counted``: 1/0 on
    SQLite, True/False on PostgreSQL).

    ``attempts``: (task_id, at, site, by, outcome, note, counted) in the order they get their ids;
    ``answers``: (index into ``attempts``, task_id, question, dimension, value as JSON text, number);
    ``tasks``: (id, status, attempts, failed_attempts, attempts_logged, next_attempt_at,
    completed_at, booked_at), the task's values after its history (an instant None: it stays as it was).
    """

    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    answers: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)
    sites: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass
class HistoryResult:
    attempts: int = 0
    answers: int = 0
    tasks: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # the loaded tasks' statuses afterwards
    first_attempt_id: int | None = None


_READ = ("id", "status", "site", "specialty", "procedure", "milestone", "trigger", "purpose", "urgency",
         "attempts", "failed_attempts", "attempts_logged", "max_attempts",
         "due_at", "window_start", "window_end", "completed_at")


class _Task(NamedTuple):
    id: int
    status: str
    site: str
    specialty: str
    procedure: str
    milestone: str
    trigger: str
    purpose: str
    urgency: str
    attempts: int
    failed_attempts: int
    attempts_logged: int
    max_attempts: int
    # as the driver reads them (what the day counts read): the task's day rows before its history
    due_at: Any
    window_start: Any
    window_end: Any
    completed_at: Any


def _tasks(session: Session, ids: Sequence[int]) -> dict[int, _Task]:
    """The tasks' fields the rules need (no instants: those that stay are left as they are)."""
    conn = session.connection()
    out: dict[int, _Task] = {}
    make = _Task._make
    cursor = conn.connection.driver_connection.cursor()  # plain tuples (half the time of the engine's rows)
    try:
        if conn.dialect.name == "postgresql":  # one array parameter; the instants as SQLite's text (the day counts')
            columns = ", ".join([*(f'"{c}"' for c in _READ[:-4]),
                                 *(f"to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')" for c in _READ[-4:])])
            cursor.execute(f"SELECT {columns} FROM tasks WHERE id = ANY(%s)", ([int(i) for i in ids],))
            for row in map(make, cursor.fetchall()):
                out[row[0]] = row
            return out
        columns = ", ".join(f'"{c}"' for c in _READ)
        for start in range(0, len(ids), CHUNK):
            part = ", ".join(str(int(i)) for i in ids[start:start + CHUNK])
            for row in map(make, cursor.execute(f"SELECT {columns} FROM tasks WHERE id IN ({part})")):
                out[row[0]] = row
    finally:
        cursor.close()
    return out


def _recorded(session: Session, ids: Sequence[int]) -> set[tuple[int, datetime]]:
    """The calls already stored for these tasks, as (task, instant): aware instants compare and hash by the
    instant whatever their zone."""
    from sqlalchemy import select

    out: set[tuple[int, datetime]] = set()
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        out.update((task, at) for task, at in session.execute(
            select(Attempt.task_id, Attempt.at).where(Attempt.task_id.in_(part))))
    return out


def _last_failures(session: Session, ids: Sequence[int]) -> dict[int, datetime]:
    """Each task's latest counted failed attempt already stored (the minimum gap runs from it)."""
    from sqlalchemy import func, select

    out: dict[int, datetime] = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        query = (select(Attempt.task_id, func.max(Attempt.at))
                 .where(Attempt.task_id.in_(part), Attempt.counted.is_(True), Attempt.outcome.in_(FAILED_OUTCOMES))
                 .group_by(Attempt.task_id))
        out.update({task_id: at for task_id, at in session.execute(query) if at is not None})
    return out


def plan_history(session: Session, config: ChainConfig, plugins: Plugins, calls: Iterable[PastCall], *,
                 now: datetime, given_up: Iterable[int] = (), counts: rollups.DayCounts | None = None
                 ) -> HistoryPlan:
    """Check every call and compute the rows a load writes (reads only); ``counts``: where to add up the
    day rows it would write too. Raises :class:`ImportFailed` listing every problem."""
    with collection_paused():
        given_up = set(given_up)
        reading = _read(session, list(calls), given_up)
        plan = _plan(session, config, plugins, reading, now=now, given_up=given_up)
        if counts is not None:
            _count_days(counts, plan, reading)
        return plan


class _Reading(NamedTuple):
    """What a load reads before it plans: the calls per task (in the file's order), the tasks whose calls
    are not in time order, every task named, their rows, and what their stored calls say."""

    by_task: dict[int, list[tuple[int, PastCall]]]
    unsorted: set[int]
    ids: list[int]
    tasks: dict[int, _Task]
    previous: dict[int, datetime]  # the latest counted failed call stored
    recorded: set[tuple[int, datetime]]  # the calls stored, as (task, instant)


def _read(session: Session, calls: list[PastCall], given_up: set[int]) -> _Reading:
    by_task: dict[int, list[tuple[int, PastCall]]] = {}
    unsorted: set[int] = set()  # tasks whose calls are not in time order in the file
    for i, call in enumerate(calls, 1):
        rows = by_task.get(call.task_id)
        if rows is None:
            by_task[call.task_id] = [(call.row or i, call)]
            continue
        try:
            if call.at < rows[-1][1].at:
                unsorted.add(call.task_id)
        except TypeError:  # one without a timezone: its own problem below; sorted as if UTC meanwhile
            unsorted.add(call.task_id)
        rows.append((call.row or i, call))
    ids = sorted(set(by_task) | given_up)
    tasks = _tasks(session, ids)
    called = [i for i in ids if i in tasks and tasks[i].attempts_logged]
    # a call loaded again (the same file twice) is refused, not doubled
    return _Reading(by_task, unsorted, ids, tasks, _last_failures(session, called), _recorded(session, called))


def _plan(session: Session, config: ChainConfig, plugins: Plugins, reading: _Reading, *, now: datetime,
          given_up: set[int], stream: Callable[[tuple[Any, ...]], Any] | None = None) -> HistoryPlan:
    """Check every call, apply the rules and build the driver rows in one pass; ``stream``: where each
    attempt row also goes as it is built (PostgreSQL's load: into its ``COPY``, while the server inserts
    the rows before)."""
    by_task, unsorted, ids, tasks, previous, recorded = reading
    problems: list[RowProblem] = []
    questions: dict[tuple[str, str, str], dict[str, Any]] = {}
    answers_of: dict[Any, Any] = {}  # the answers parsed and encoded, per task kind and answer as written
    planners: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    staff = {m.username for m in config.model.staff}
    # plain strings and locals: an enum member or a datetime in another zone costs more to compare,
    # call after call
    known = frozenset(str(o) for o in OUTCOMES)
    failures = frozenset(str(o) for o in FAILED_OUTCOMES)
    closing = {str(o): str(s) for o, s in (
        (Outcome.WRONG_NUMBER, TaskStatus.WRONG_NUMBER), (Outcome.REFUSED, TaskStatus.REFUSED),
        (Outcome.REACHED, TaskStatus.COMPLETED), (Outcome.BOOKED, TaskStatus.BOOKED))}
    booked, callback, open_, unsuccessful = (str(Outcome.BOOKED), str(Outcome.CALLBACK_REQUESTED),
                                             str(TaskStatus.OPEN), str(TaskStatus.UNSUCCESSFUL))
    pg = session.get_bind().dialect.name == "postgresql"
    instant, stamp_of = _instants(pg), utc_text()
    yes, no = (True, False) if pg else (1, 0)
    latest = now.astimezone(UTC)
    plan = HistoryPlan()
    statuses: dict[str, int] = {}
    add_attempt = keep = plan.attempts.append
    if stream is not None:
        def add_attempt(row: tuple[Any, ...]) -> None:
            keep(row)
            stream(row)
    add_answer, add_task = plan.answers.append, plan.tasks.append
    index = -1  # the last attempt's, in the order they are added
    for task_id in given_up - set(by_task):
        problems.append(row_problem(0, "task_id", Msg("history_given_up_without_calls", id=task_id)))
    for task_id in ids:
        rows = by_task.get(task_id, [])
        task = tasks.get(task_id)
        site = config.sites.get(task.site) if task is not None else None
        if task is None or site is None:
            problems += [row_problem(row, "task_id", Msg("history_no_task", id=task_id)) for row, _ in rows]
            continue
        if task.status != open_:
            problems += [row_problem(row, "task_id", Msg("history_task_closed", id=task_id, status=task.status))
                         for row, _ in rows]
            continue
        min_gap = gaps.get(task.site)
        if min_gap is None:
            min_gap = gaps[task.site] = site.attempt_policy.min_gap
        status, attempts, failed, logged = open_, task.attempts, task.failed_attempts, task.attempts_logged
        limit, site_code = task.max_attempts, task.site
        completed_at = booked_at = retry_from = next_at = stamp = None
        last_failure = previous.get(task_id)
        gap_ends = None  # a failure counts from this instant on (the minimum gap after the last counted one)
        closed_by: int | None = None
        if task_id in unsorted:
            rows.sort(key=lambda item: (item[1].at if item[1].at.tzinfo else item[1].at.replace(tzinfo=UTC),
                                        item[0]))
        for row, call in rows:
            outcome, at, by = call.outcome, call.at, call.by
            if recorded and (task_id, at) in recorded and at.tzinfo is not None:
                problems.append(row_problem(row, "at", Msg("history_already_recorded", id=task_id,
                                                           at=at.isoformat())))
                continue
            if (outcome not in known or at.tzinfo is None or at > latest or (staff and by not in staff)
                    or closed_by is not None or call.booked_at is not None or call.answers or outcome == booked):
                parsed = _check(problems, row, call, task, closed_by, now, staff, plugins, questions, answers_of)
                if parsed is None:
                    continue
            else:
                parsed = ()
            # the rules of core.calls.record_call, as counts() and _record apply them
            counted = True
            failure = outcome in failures
            if failure and last_failure is not None and at >= last_failure:
                if gap_ends is None:
                    gap_ends = min_gap.add_to(last_failure)
                counted = at >= gap_ends
            stamp = stamp_of(at)  # the driver's value: UTC text (SQLite's stored value; COPY reads it)
            index += 1
            add_attempt((task_id, stamp, site_code, by, outcome, call.note, yes if counted else no))
            for name, dimension, text, number in parsed:
                add_answer((index, task_id, name, dimension, text, number))
            logged += 1
            if counted:
                attempts += 1
            if failure:
                if counted:
                    failed += 1
                    last_failure, gap_ends = at, None
                    if failed >= limit:
                        status, completed_at, closed_by = unsuccessful, stamp, row
                    else:
                        retry_from = at
            elif outcome == callback:
                retry_from = at
            else:  # wrong number, refused, reached, booked: closed
                status, completed_at, closed_by = closing[outcome], stamp, row
                if outcome == booked:
                    booked_at = instant(call.booked_at)
        if status == open_ and task_id in given_up:
            status, completed_at = unsuccessful, stamp if rows else instant(now)
        elif status == open_ and retry_from is not None:
            plans = planners.get(task.site)
            if plans is None:
                plans = planners[task.site] = planner(config, site)
            next_at = instant(plans.retry(retry_from, task.urgency))
        add_task((task_id, status, attempts, failed, logged, next_at, completed_at, booked_at))
        plan.sites.add(site_code)
        statuses[status] = statuses.get(status, 0) + 1
    plan.statuses.update(statuses)
    if problems:
        problems.sort(key=lambda p: p.row)
        raise ImportFailed(problems)
    return plan


def _count_days(counts: rollups.DayCounts, plan: HistoryPlan, reading: _Reading, *, prepare: bool = False) -> None:
    """The plan's day rows, added up by the triggers' rules (:class:`core.db.rollups.DayCounts`): each call,
    each scored answer of a call that reached the patient, each task as it was subtracted and as it is
    added (an instant None in the plan: it stays as it was); ``prepare``: made into the rows written."""
    tasks = reading.tasks
    call, answer, retask = counts.call, counts.answer, counts.retask
    answered = frozenset(str(o) for o in REACHED_OUTCOMES)
    attempts = plan.attempts
    for task_id, stamp, site, by, outcome, _note, _counted in attempts:
        call(stamp, site, tasks[task_id].specialty, by, outcome)
    for index, task_id, question, dimension, _text, number in plan.answers:
        _, stamp, site, _, outcome, _, _ = attempts[index]
        if outcome in answered:
            answer(stamp, site, tasks[task_id].specialty, question, dimension, number)
    for task_id, status, _attempts, _failed, logged, _next, completed_at, _booked in plan.tasks:
        task = tasks[task_id]
        retask(task.site, task.specialty, task.due_at, task.window_start, task.window_end,
               task.status, task.attempts_logged, task.completed_at,
               status, logged, task.completed_at if completed_at is None else completed_at)
    if prepare:
        counts.prepare()


def _check(problems: list[RowProblem], row: int, call: PastCall, task: _Task, closed_by: int | None, now: datetime,
           staff: set[str], plugins: Plugins, questions: dict[tuple[str, str, str], dict[str, Any]],
           answers_of: dict[Any, Any]) -> list[tuple[str, Any, str, float | None]] | None:
    """A call off the plain path (answers, a booking, or a problem): its answers parsed (question,
    dimension, the value as JSON text, its number), or None after adding its problems."""
    bad = len(problems)
    task_id = task.id
    if call.outcome not in OUTCOMES:
        problems.append(row_problem(row, "outcome", Msg("unknown_outcome", outcome=call.outcome,
                                                     choices=", ".join(OUTCOMES))))
    if call.at.tzinfo is None or call.at > now:
        problems.append(row_problem(row, "at", Msg("history_in_future", at=call.at.isoformat(), now=now.isoformat())))
    if staff and call.by not in staff:
        problems.append(row_problem(row, "by", Msg("history_unknown_caller", user=call.by)))
    if closed_by is not None:
        problems.append(row_problem(row, "at", Msg("history_after_closed", id=task_id, row=closed_by)))
    if call.outcome == Outcome.BOOKED or call.booked_at is not None:
        spec = plugins.specialty(task.specialty) if call.outcome == Outcome.BOOKED else None
        booking = booking_problem(task, spec.procedure(task.procedure) if spec else None, call.outcome,
                                  call.booked_at, call.outcome == Outcome.BOOKED and invites_back(plugins, task))
        if booking is not None:
            problems.append(row_problem(row, booking[0], Msg(booking[1], **booking[2])))
    parsed: list[tuple[str, Any, str, float | None]] = []
    if call.answers:
        if call.outcome not in REACHED_OUTCOMES:
            problems.append(row_problem(row, "answers", Msg("answers_only_when_reached", outcome=call.outcome)))
        else:
            key = (task.specialty, task.procedure, task.milestone)
            asked = questions.get(key)
            if asked is None:
                asked = questions[key] = plugins.questions(*key)
            for name, value in call.answers.items():
                question = asked.get(name)
                if question is None:
                    problems.append(row_problem(row, name, Msg("unknown_question", key=name,
                                                            keys=", ".join(sorted(asked)))))
                    continue
                if question.treated_only and task.trigger not in TREATED_TRIGGERS:
                    problems.append(row_problem(row, name, Msg("question_treated_only", key=name)))
                    continue
                try:  # the same answer to the same question is parsed and encoded once
                    memo = (key, name, value)
                    answer = answers_of.get(memo)
                except TypeError:  # not hashable (a list of choices)
                    memo = answer = None
                if answer is None:
                    try:
                        value_ = question.parse_answer(value)
                    except ValueError as exc:
                        problems.append(RowProblem(row, name, str(exc), None, exc))
                        continue
                    number = (float(value_) if isinstance(value_, int | float) and not isinstance(value_, bool)
                              else None)
                    answer = (name, question.dimension, json.dumps(value_), number)
                    if memo is not None:
                        answers_of[memo] = answer
                parsed.append(answer)
    return None if len(problems) > bad else parsed


def load_attempts(session: Session, config: ChainConfig, plugins: Plugins, calls: Iterable[PastCall], *,
                  user: str, now: datetime, given_up: Iterable[int] = ()) -> HistoryResult:
    """Load past calls and their answers in one unit of work (the module's docstring); nothing is
    written when any call has a problem (:class:`ImportFailed`, every problem with its row)."""
    from core import access

    access.require(config, user, access.IMPORT)
    with collection_paused():
        # the load's rows freed before collection resumes (else its first pass walks them all)
        return _load_calls(session, config, plugins, list(calls), user=user, now=now, given_up=set(given_up))


def _load_calls(session: Session, config: ChainConfig, plugins: Plugins, calls: list[PastCall], *, user: str,
                now: datetime, given_up: set[int]) -> HistoryResult:
    conn = session.connection()
    counts = rollups.DayCounts(rollups.offset(conn))  # the day rows the load writes, added up after its plan
    reading = _read(session, calls, given_up)
    if not reading.tasks:  # no task named exists: every call is a problem (or there are none)
        _plan(session, config, plugins, reading, now=now, given_up=given_up)
        return HistoryResult()
    sites = sorted({task.site for task in reading.tasks.values()})  # their turns, before the rows go in
    load = _pg_load if conn.dialect.name == "postgresql" else _sqlite_load
    with unit_of_work(session, config, sites=sites, user=user, now=now, action=ACTION) as uow:
        session.flush()
        # the attempts go in as they are planned: a problem found on a later row takes back what was
        # written (the savepoint), nothing else
        with conn.begin_nested(), rollups.held_back(conn, counts):
            plan, first = load(session, conn, config, plugins, reading, now=now, given_up=given_up,
                               counts=counts, n=len(calls))
        result = HistoryResult(attempts=len(plan.attempts), answers=len(plan.answers), tasks=len(plan.tasks),
                               statuses=dict(plan.statuses), first_attempt_id=first)
        uow.audit(ACTION, entity="attempts", entity_id=first,
                  detail={"attempts": result.attempts, "answers": result.answers, "tasks": result.tasks,
                          "statuses": result.statuses, "sites": sorted(plan.sites)})
    return result


def _pg_load(session: Session, conn: Any, config: ChainConfig, plugins: Plugins, reading: _Reading, *,
             now: datetime, given_up: set[int], counts: rollups.DayCounts, n: int
             ) -> tuple[HistoryPlan, int | None]:
    """PostgreSQL: the attempts stream into their ``COPY`` as they are planned (the server inserts the rows
    before while Python checks the next), then the answers and the tasks (:func:`_write`)."""
    ids = _attempt_ids(conn, n)
    with copy_stream(conn, f"COPY attempts ({', '.join(STREAMED)}) FROM STDIN") as write_row:
        rows = iter(ids)
        phone = str(Channel.PHONE)
        plan = _plan(session, config, plugins, reading, now=now, given_up=given_up,
                     stream=lambda row: write_row((next(rows), *row, phone)))
    return plan, _write(conn, plan, now, ids, lambda: _count_days(counts, plan, reading, prepare=True))


def _sqlite_load(session: Session, conn: Any, config: ChainConfig, plugins: Plugins, reading: _Reading, *,
                 now: datetime, given_up: set[int], counts: rollups.DayCounts, n: int
                 ) -> tuple[HistoryPlan, int | None]:
    """SQLite: every statement runs in a worker thread (:class:`_Writer`), the attempts a chunk at a time as
    they are planned, then the answers and the tasks (:func:`_write`) while the day rows are added up, then
    the day rows.
    The attempts take their ids from the table: SQLite gives each row without one the largest id + 1,
    and the load's rows, inserted in order by this one writer (the transaction holds the database's
    write lock), take top + 1 ... top + n."""
    top = int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM attempts").scalar_one())
    with _Writer(conn) as writer:
        add, flush = writer.stream("attempts", ATTEMPT_COLUMNS, extra={"channel": "'" + str(Channel.PHONE) + "'"})
        plan = _plan(session, config, plugins, reading, now=now, given_up=given_up, stream=add)
        flush()
        ids = range(top + 1, top + 1 + len(plan.attempts))
        first = _write(conn, plan, now, ids, lambda: _count_days(counts, plan, reading, prepare=True), writer)
        # the day rows made while the tasks' UPDATE runs, then appended beside the day tables after it (the
        # main thread waits meanwhile: an executemany takes the GIL row by row)
        counts.write(writer, append=True)  # type: ignore[arg-type]
    if plan.attempts:  # cannot fail without AUTOINCREMENT, or with one writer at a time
        last = conn.exec_driver_sql("SELECT MAX(id) FROM attempts").scalar_one()
        ends = [tuple(row) for row in conn.exec_driver_sql(
            "SELECT task_id, at FROM attempts WHERE id IN (?, ?) ORDER BY id", (ids[0], ids[-1]))]
        expected = [plan.attempts[0][:2], plan.attempts[-1][:2]][:min(2, len(ids))]
        if last != ids[-1] or ends != expected:
            raise RuntimeError("attempt ids not consecutive")
    return plan, first


class _Writer:
    """SQLite: a load's statements, in order, in one worker thread, each over its rows as one JSON text
    (``json_each``): the driver leaves the GIL for a whole statement, so Python plans the next rows
    meanwhile on another core (SQLite runs inside this process; an ``executemany`` would take the GIL
    back row by row). The main thread does not touch the connection until the block ends, which waits
    for every statement (and on an error, for the one running; those not started are dropped)."""

    FIRST, CHUNK = 512, 8192  # attempts per statement while they are planned: the first, at most
    SWITCH = 0.0005  # seconds: the interpreter's switch interval meanwhile (a statement done waits no longer)

    def __init__(self, conn: Any):
        from concurrent.futures import Future, ThreadPoolExecutor

        self.conn = conn
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="followup-history")
        self.sent: list[Future[Any]] = []
        self.switch = sys.getswitchinterval()

    def __enter__(self) -> _Writer:
        # the thread takes the GIL back after each statement: from a busy main thread, within the
        # interval (5 ms by default, a pause between every two statements)
        sys.setswitchinterval(min(self.switch, self.SWITCH))
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if kind is not None:
                for future in self.sent:
                    future.cancel()
            self.pool.shutdown(wait=True)
            if kind is None:
                self._raise()
        finally:
            self.sent.clear()
            sys.setswitchinterval(self.switch)

    def _raise(self) -> None:
        for future in self.sent:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    @property
    def dialect(self) -> Any:
        return self.conn.dialect

    def exec_driver_sql(self, sql: str, params: Any = None) -> None:
        """``sql`` queued (the same call as the connection's); a statement failed before: raised here."""
        self._raise()
        self.sent.append(self.pool.submit(self.conn.exec_driver_sql, sql, params))

    def load(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]],
             extra: Mapping[str, str] | None = None) -> None:
        """Rows in driver values (numbers, text, None) inserted by one statement; ``extra``: columns whose
        value is the same SQL literal in every row."""
        if not rows:
            return
        try:
            data = json.dumps(rows, ensure_ascii=False, allow_nan=False, check_circular=False)
        except ValueError:  # a value JSON cannot carry (not a number): the driver's own way, row by row
            _load(self.conn, table, columns, rows, extra, run=self.exec_driver_sql)
            return
        names = _column_list(self.conn, columns, extra)
        picks = ", ".join([*(f"json_extract(value, '$[{i}]')" for i in range(len(columns))),
                           *(extra or {}).values()])
        # json_each walks the array in order: the rows get their ids (SQLite's largest + 1) in order
        self.exec_driver_sql(f"INSERT INTO {table} ({names}) SELECT {picks} FROM json_each(?)", (data,))

    def stream(self, table: str, columns: Sequence[str], extra: Mapping[str, str] | None = None
               ) -> tuple[Callable[[tuple[Any, ...]], None], Callable[[], None]]:
        """(add, flush): rows given to ``add`` go in a chunk at a time; ``flush`` sends the last ones."""
        chunk: list[tuple[Any, ...]] = []
        size = self.FIRST  # small at first: the thread starts while the plan goes on

        def flush() -> None:
            nonlocal size
            if chunk:
                self.load(table, columns, chunk[:], extra)
                chunk.clear()
                size = min(2 * size, self.CHUNK)

        def add(row: tuple[Any, ...]) -> None:
            chunk.append(row)
            if len(chunk) >= size:
                flush()

        return add, flush


def _instants(pg: bool) -> Any:
    """Aware instant -> the driver's value of a UTC column (core.db.models.UTCDateTime's, faster):
    naive UTC for psycopg, SQLAlchemy's SQLite text format."""
    utc = UTC

    if pg:
        def naive(value: datetime | None) -> Any:
            if value is None:
                return None
            if value.tzinfo is not utc:
                value = value.astimezone(utc)
            return value.replace(tzinfo=None)

        return naive

    stamp = utc_text()

    def text(value: datetime | None) -> Any:
        return None if value is None else stamp(value)

    return text


def _attempt_ids(conn: Any, n: int) -> Sequence[int]:
    """PostgreSQL: the sequence's next ``n`` values in one statement; only when another writer took some
    meanwhile (they are not consecutive) the values themselves. Those a load does not use are gaps."""
    sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence('attempts', 'id')").scalar_one()
    literal = "'" + str(sequence).replace("'", "''") + "'"  # a constant: a looked-up one costs 3 us a value
    first, last, values = conn.exec_driver_sql(
        "SELECT min(v), max(v), CASE WHEN max(v) - min(v) = count(*) - 1 THEN NULL ELSE array_agg(v) END "
        f"FROM (SELECT nextval({literal}::regclass) AS v FROM generate_series(1, %(n)s)) AS s", {"n": n}).one()
    return range(first, last + 1) if values is None else sorted(values)


def _write(conn: Any, plan: HistoryPlan, now: datetime, ids: Sequence[int], meanwhile: Callable[[], None],
           writer: _Writer | None = None) -> int | None:
    """The plan's answers and tasks, set-based, its attempts being in with ``ids``; returns the first
    attempt id (the load's ids follow it). ``meanwhile`` (adding up the day rows) runs while the tasks'
    ``UPDATE`` does: on PostgreSQL the statement waits in a thread (the server works, the driver waits
    without the GIL), on SQLite the statements are ``writer``'s (its thread), and the block that holds
    it waits for them."""
    pg = conn.dialect.name == "postgresql"
    run = conn.exec_driver_sql if writer is None else writer.exec_driver_sql
    stage = (f"CREATE TEMPORARY TABLE {STAGE} AS SELECT {', '.join(TASK_COLUMNS)} FROM tasks WITH NO DATA" if pg
             else f"CREATE TEMPORARY TABLE {STAGE} AS SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE 0")
    run(stage)
    load = writer.load if writer is not None else partial(_load, conn)
    load("answers", ANSWER_COLUMNS,
         [(task_id, ids[index], question, dimension, text, number)
          for index, task_id, question, dimension, text, number in plan.answers])
    load(STAGE, TASK_COLUMNS, plan.tasks)
    sets = ", ".join(f"{c} = COALESCE(u.{c}, tasks.{c})" if c in KEPT else f"{c} = u.{c}"
                     for c in TASK_COLUMNS[1:])
    stamp = _instants(pg)(now)
    update = (f"UPDATE tasks SET {sets}, claimed_until = NULL, updated_at = {'%(now)s' if pg else '?'} "
              f"FROM {STAGE} AS u WHERE tasks.id = u.id")
    if pg:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="followup-history") as pool:
            updated = pool.submit(conn.exec_driver_sql, update, {"now": stamp})
            meanwhile()  # no statement on conn until the UPDATE is back
            updated.result()
    else:
        run(update, (stamp,))
        meanwhile()  # while the writer's thread runs the statements
    run(f"DROP TABLE {STAGE}")
    return ids[0] if plan.attempts else None


def _column_list(conn: Any, columns: Sequence[str], extra: Mapping[str, str] | None) -> str:
    """The quoted names of ``columns`` and then of ``extra``'s (an insert's column list)."""
    quote = conn.dialect.identifier_preparer.quote
    return ", ".join(quote(c) for c in [*columns, *(extra or ())])


def _load(conn: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]],
          extra: Mapping[str, str] | None = None, run: Callable[..., Any] | None = None) -> None:
    """Rows already in driver values: ``COPY`` (psycopg) or one ``executemany`` (sqlite3, by ``run``:
    the connection's, or a :class:`_Writer`'s); ``extra``: columns whose value is the same SQL literal
    in every row (SQLite)."""
    if not rows:
        return
    names = _column_list(conn, columns, extra)
    if conn.dialect.name == "postgresql":
        copy_rows(conn, f"COPY {table} ({names}) FROM STDIN", rows)
    else:
        marks = ", ".join(["?"] * len(columns) + list((extra or {}).values()))
        (run or conn.exec_driver_sql)(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
