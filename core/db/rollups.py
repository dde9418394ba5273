"""Per-day counts the reports read instead of the rows: kept by the database itself.

A report sums three small tables (one row per day, site, specialty and a few more
keys) instead of reading a million tasks and two million calls:

``report_task_days``
    the counted tasks (not cancelled, suppressed or expired) due that day: due,
    attempted, reached, reached in window, unsuccessful, refused, wrong number, open,
    and the attempts of the reached ones;
``report_call_days``
    the calls made that day per coordinator: how many, how many reached the
    patient, the first and the last (calling hours);
``report_answer_days``
    the scored answers given that day (in calls that reached the patient) per
    question and dimension: n, sum, 4–5, 9–10, 0–6.

Triggers written here keep them exact on every insert, update and delete of
tasks, attempts and answers, whoever writes (the framework, an import, a
migration, someone's SQL): SQLite with row triggers, PostgreSQL with statement
triggers over transition tables, so a ``COPY`` of 2,000 tasks adds one grouped
upsert, not 2,000. An update that changes no count (a claim) changes no day row.

A bulk load of calls (core/callhistory.py) holds the triggers back, adds up its own
day rows and appends them beside each table, to ``report_task_day_parts``,
``report_call_day_parts`` and ``report_answer_day_parts`` (migration 0019; the same
columns, any number of rows per key, ``DayCounts.write(append=True)``): no key is
looked up, on PostgreSQL they are copied straight in. A day table's figures are its
rows and its parts added up per key: the reports sum them anyway, :func:`verify`
adds them up, :func:`rebuild` recounts into the day tables and empties the parts,
:func:`fold` adds the parts into the day tables.

A *day* is the UTC instant shifted by ``report_settings.offset_minutes`` (the
chain's UTC offset, 480 for China). A report uses the day rows only when each of
its boundaries is a midnight at that offset (always, for a timezone without
summer time); otherwise it counts the rows themselves (``core.reports.queries``).
``followup db upgrade`` sets the offset from the chain's timezone and rebuilds
the tables when it changes (:func:`ensure_offset`).

Two things are taken as never changing once written, as the framework never
changes them: a task's site and specialty as seen by its calls and answers (a
call's day rows use the task's specialty). :func:`verify` compares the tables
with a recount and :func:`rebuild` recounts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from core.db.models import UTCDateTime
from core.vocab import NOT_DUE_STATUSES, REACHED_OUTCOMES, REACHED_STATUSES, Outcome, TaskStatus

NOT_DUE = NOT_DUE_STATUSES
REACHED = REACHED_STATUSES  # final task statuses of a reached patient
ANSWERED = REACHED_OUTCOMES  # call outcomes recorded with answers
# call outcomes counted as reached per coordinator (older rows may say "completed")
CALL_REACHED = (TaskStatus.COMPLETED, TaskStatus.BOOKED, Outcome.REACHED)
DEFAULT_OFFSET = 480  # minutes east of UTC: China Standard Time


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


@dataclass(frozen=True)
class Rollup:
    table: str
    parts: str  # the rows bulk writers append beside it (migration 0019): summed with it
    keys: tuple[str, ...]
    counts: tuple[str, ...]  # summed
    extremes: tuple[tuple[str, str], ...] = ()  # (column, "min" | "max")

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + self.counts + tuple(c for c, _ in self.extremes)


TASKS = Rollup(
    "report_task_days",
    "report_task_day_parts",
    ("day", "site", "specialty"),
    ("due", "attempted", "reached", "reached_in_window", "unsuccessful", "refused", "wrong_number", "open",
     "reached_attempts"),
)
CALLS = Rollup(
    "report_call_days",
    "report_call_day_parts",
    ("day", "site", "specialty", "by"),
    ("attempts", "reached"),
    (("first_at", "min"), ("last_at", "max")),
)
ANSWERS = Rollup(
    "report_answer_days",
    "report_answer_day_parts",
    ("day", "site", "specialty", "question", "dimension"),
    ("n", "total", "top2", "promoters", "detractors"),
)
ROLLUPS = (TASKS, CALLS, ANSWERS)


# A task's attempts as the reports count them (docs/metrics.md: "attempted", "avg_attempts_per_reached"):
# every recorded attempt, also one not counted towards the failed-attempt limit (migration 0005).
# Migration 0004 created the triggers before that column existed: it passes LEGACY_ATTEMPTS.
ATTEMPTS = "attempts_logged"
LEGACY_ATTEMPTS = "attempts"


class Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL (and the attempts column counted)."""

    def __init__(self, name: str, attempts: str = ATTEMPTS):
        self.name = name
        self.pg = name == "postgresql"
        self.attempts = attempts

    def day(self, instant: str) -> str:
        """The rollup day of a UTC instant column (``c`` is report_settings)."""
        if self.pg:
            return f"CAST({instant} + make_interval(mins => c.offset_minutes) AS DATE)"
        return f"date({instant}, c.offset_minutes || ' minutes')"

    def day_start(self, day: str, days: int = 0) -> str:
        """The UTC instant a rollup day starts (``days`` later)."""
        if self.pg:
            return f"(CAST({day} AS TIMESTAMP) + make_interval(days => {days}, mins => -c.offset_minutes))"
        return f"datetime({day}, '{days:+d} days', (-c.offset_minutes) || ' minutes')"

    def q(self, name: str) -> str:
        return f'"{name}"'


# -- what each rollup counts, from base rows -------------------------------------------------------
# The base row is ``s`` (a task, an attempt or an answer; ``a`` is an answer's attempt): a table
# alias when ``rel`` (a table or a transition table) is given, else a SQLite trigger's NEW or OLD.
# ``c`` is the settings row. ``sign`` is "" to add and "-" to subtract.


def _select(d: Dialect, rollup: Rollup, exprs: list[str], froms: list[str], where: list[str]) -> str:
    assert len(exprs) == len(rollup.columns)
    columns = ", ".join(f"{e} AS {d.q(c)}" for e, c in zip(exprs, rollup.columns, strict=True))
    tables = ", ".join([*froms, "report_settings c"])
    return f"SELECT {columns} FROM {tables} WHERE {' AND '.join(['c.id = 1', *where])}"


def _task_source(d: Dialect, sign: str, *, rel: str | None = None, s: str = "s") -> str:
    reached = f"{s}.status IN {_in(REACHED)}"
    on_time = f"{reached} AND {s}.completed_at >= {s}.window_start AND {s}.completed_at <= {s}.window_end"

    def flag(cond: str) -> str:
        return f"{sign}(CASE WHEN {cond} THEN 1 ELSE 0 END)"

    exprs = [
        d.day(f"{s}.due_at"), f"{s}.site", f"{s}.specialty",
        f"{sign}1", flag(f"{s}.{d.attempts} > 0"), flag(reached), flag(on_time),
        flag(f"{s}.status = '{TaskStatus.UNSUCCESSFUL}'"),
        flag(f"{s}.status = '{TaskStatus.REFUSED}'"), flag(f"{s}.status = '{TaskStatus.WRONG_NUMBER}'"),
        flag(f"{s}.status = '{TaskStatus.OPEN}'"),
        f"{sign}(CASE WHEN {reached} THEN {s}.{d.attempts} ELSE 0 END)",
    ]
    return _select(d, TASKS, exprs, [f"{rel} s"] if rel else [], [f"{s}.status NOT IN {_in(NOT_DUE)}"])


def _call_source(d: Dialect, sign: str, *, rel: str | None = None, s: str = "s") -> str:
    extreme = ("CAST(NULL AS TIMESTAMP)" if d.pg else "NULL") if sign else f"{s}.at"
    exprs = [
        d.day(f"{s}.at"), f"{s}.site", "t.specialty", f"{s}.{d.q('by')}", f"{sign}1",
        f"{sign}(CASE WHEN {s}.outcome IN {_in(CALL_REACHED)} THEN 1 ELSE 0 END)", extreme, extreme,
    ]
    return _select(d, CALLS, exprs, [*([f"{rel} s"] if rel else []), "tasks t"], [f"t.id = {s}.task_id"])


def _answer_source(d: Dialect, sign: str, *, answers: str | None = None, attempts: str | None = None,
                   s: str = "s", a: str = "a") -> str:
    """``answers`` and ``attempts``: relations (else ``s`` / ``a`` are a trigger's NEW or OLD)."""
    exprs = [
        d.day(f"{a}.at"), f"{a}.site", "t.specialty", f"{s}.question", f"COALESCE({s}.dimension, {s}.question)",
        f"{sign}1", f"{sign}{s}.number", f"{sign}(CASE WHEN {s}.number >= 4 THEN 1 ELSE 0 END)",
        f"{sign}(CASE WHEN {s}.number >= 9 THEN 1 ELSE 0 END)", f"{sign}(CASE WHEN {s}.number <= 6 THEN 1 ELSE 0 END)",
    ]
    froms = [*([f"{answers} s"] if answers else []), *([f"{attempts} a"] if attempts else []), "tasks t"]
    where = [f"{a}.id = {s}.attempt_id", f"t.id = {s}.task_id", f"{s}.number IS NOT NULL",
             f"{a}.outcome IN {_in(ANSWERED)}"]
    return _select(d, ANSWERS, exprs, froms, where)


def _sets(rollup: Rollup, d: Dialect) -> str:
    r = rollup.table  # no alias: SQLite refuses one inside a trigger
    sets = [f"{d.q(c)} = {r}.{d.q(c)} + excluded.{d.q(c)}" for c in rollup.counts]
    for c, fn in rollup.extremes:
        better = "<" if fn == "min" else ">"
        sets.append(f"{d.q(c)} = CASE WHEN {r}.{d.q(c)} IS NULL OR excluded.{d.q(c)} {better} {r}.{d.q(c)} "
                    f"THEN excluded.{d.q(c)} ELSE {r}.{d.q(c)} END")
    return ", ".join(sets)


def _summed(d: Dialect, rollup: Rollup, sources: list[str]) -> str:
    """The rows of ``sources`` (each a SELECT of the rollup's columns) added up per key; groups whose counts
    all cancel out left out."""
    keys = ", ".join(d.q(k) for k in rollup.keys)
    agg = [d.q(k) for k in rollup.keys]
    agg += [f"SUM({d.q(c)})" for c in rollup.counts]
    agg += [f"{fn.upper()}({d.q(c)})" for c, fn in rollup.extremes]
    changed = " OR ".join(f"SUM({d.q(c)}) <> 0" for c in rollup.counts)
    return f"SELECT {', '.join(agg)} FROM ({' UNION ALL '.join(sources)}) AS d GROUP BY {keys} HAVING {changed}"


def _upsert(d: Dialect, rollup: Rollup, sources: list[str]) -> str:
    """Add the (signed) rows of ``sources`` to ``rollup``, grouped by its keys (PostgreSQL: one
    statement per trigger; groups whose counts all cancel out, as in a claim, are left alone)."""
    names = ", ".join(d.q(c) for c in rollup.columns)
    keys = ", ".join(d.q(k) for k in rollup.keys)
    return (
        f"INSERT INTO {rollup.table} ({names}) {_summed(d, rollup, sources)} "
        f"ORDER BY {keys} "  # the same lock order in every transaction
        f"ON CONFLICT ({keys}) DO UPDATE SET {_sets(rollup, d)}"
    )


def _upsert_row(d: Dialect, rollup: Rollup, source: str) -> str:
    """SQLite, one row at a time: add what ``source`` selects (it ends with WHERE, as upsert needs)."""
    names = ", ".join(d.q(c) for c in rollup.columns)
    keys = ", ".join(d.q(k) for k in rollup.keys)
    return f"INSERT INTO {rollup.table} ({names}) {source} ON CONFLICT ({keys}) DO UPDATE SET {_sets(rollup, d)}"


def _recount_extremes(d: Dialect, *, rel: str | None = None, s: str = "s") -> str:
    """After calls were removed or changed: first and last call again for the day rows they were in."""
    by, r = d.q("by"), CALLS.table  # no alias: SQLite refuses one inside a trigger
    scope = (f"FROM attempts x JOIN tasks y ON y.id = x.task_id, report_settings c "
             f"WHERE c.id = 1 AND x.site = {r}.site AND x.{by} = {r}.{by} "
             f"AND y.specialty = {r}.specialty AND x.at >= {d.day_start(f'{r}.day')} "
             f"AND x.at < {d.day_start(f'{r}.day', 1)}")
    froms = ", ".join([*([f"{rel} s"] if rel else []), "tasks t", "report_settings c"])
    touched = (f"SELECT {d.day(f'{s}.at')}, {s}.site, t.specialty, {s}.{by} FROM {froms} "
               f"WHERE c.id = 1 AND t.id = {s}.task_id")
    keys = f"({r}.day, {r}.site, {r}.specialty, {r}.{by})"
    return (f"UPDATE {r} SET first_at = (SELECT MIN(x.at) {scope}), last_at = (SELECT MAX(x.at) {scope}) "
            f"WHERE {keys} IN ({touched})")


# -- triggers ---------------------------------------------------------------------------------------
TASK_COLUMNS = ("status", ATTEMPTS, "due_at", "completed_at", "window_start", "window_end", "site", "specialty")
CALL_COLUMNS = ("task_id", "at", "site", "by", "outcome")
ANSWER_COLUMNS = ("task_id", "attempt_id", "question", "dimension", "number")
# Scheduling creates tasks spread over a year of days: row by row that is one day row updated per
# task. It defers, inside its own transaction, and adds its tasks once at the end, grouped
# (:func:`deferred`). PostgreSQL's insert trigger checks this; SQLite's is dropped meanwhile.
NOT_DEFERRED = "(SELECT deferred FROM report_settings WHERE id = 1) = 0"
# A bulk writer of calls (core/callhistory.py) adds up the day rows of its calls, answers and tasks
# itself and writes them once, grouped (:func:`held_back`): inside its transaction, these triggers
# stand aside. SQLite drops them meanwhile; PostgreSQL's ask a setting local to the transaction
# (migration 0018), which no other transaction sees.
HELD = ("trg_attempts_rollup_ins", "trg_answers_rollup_ins", "trg_tasks_rollup_upd")
HELD_SETTING = "followup.counts_held"
NOT_HELD = f"current_setting('{HELD_SETTING}', true) IS DISTINCT FROM 'on'"


def _changed(columns: Iterable[str], d: Dialect) -> str:
    return " OR ".join(f"OLD.{d.q(c)} IS NOT NEW.{d.q(c)}" for c in columns)


def _task_columns(d: Dialect) -> tuple[str, ...]:
    return tuple(d.attempts if c == ATTEMPTS else c for c in TASK_COLUMNS)


def _sqlite_triggers(attempts: str = ATTEMPTS) -> list[str]:
    d = Dialect("sqlite", attempts)
    out = []

    def trigger(name: str, event: str, table: str, body: list[str], when: str | None = None) -> None:
        condition = f" WHEN {when}" if when else ""
        out.append(f"CREATE TRIGGER {name} AFTER {event} ON {table}{condition} BEGIN " + "; ".join(body) + "; END")

    def up(rollup: Rollup, source: str) -> str:
        return _upsert_row(d, rollup, source)

    trigger("trg_tasks_rollup_ins", "INSERT", "tasks", [up(TASKS, _task_source(d, "", s="NEW"))])
    trigger("trg_tasks_rollup_upd", f"UPDATE OF {', '.join(_task_columns(d))}", "tasks",
            [up(TASKS, _task_source(d, "-", s="OLD")), up(TASKS, _task_source(d, "", s="NEW"))],
            _changed(_task_columns(d), d))
    trigger("trg_tasks_rollup_del", "DELETE", "tasks", [up(TASKS, _task_source(d, "-", s="OLD"))])

    trigger("trg_attempts_rollup_ins", "INSERT", "attempts", [up(CALLS, _call_source(d, "", s="NEW"))])
    trigger("trg_attempts_rollup_upd", f"UPDATE OF {', '.join(d.q(c) for c in CALL_COLUMNS)}", "attempts", [
        up(CALLS, _call_source(d, "-", s="OLD")), up(CALLS, _call_source(d, "", s="NEW")),
        _recount_extremes(d, s="OLD"),
        # the answers given in this call move with it (day, site, outcome)
        up(ANSWERS, _answer_source(d, "-", answers="answers", a="OLD")),
        up(ANSWERS, _answer_source(d, "", answers="answers", a="NEW")),
    ], _changed(CALL_COLUMNS, d))
    trigger("trg_attempts_rollup_del", "DELETE", "attempts",
            [up(CALLS, _call_source(d, "-", s="OLD")), _recount_extremes(d, s="OLD")])

    trigger("trg_answers_rollup_ins", "INSERT", "answers",
            [up(ANSWERS, _answer_source(d, "", attempts="attempts", s="NEW"))])
    trigger("trg_answers_rollup_upd", f"UPDATE OF {', '.join(ANSWER_COLUMNS)}", "answers", [
        up(ANSWERS, _answer_source(d, "-", attempts="attempts", s="OLD")),
        up(ANSWERS, _answer_source(d, "", attempts="attempts", s="NEW")),
    ], _changed(ANSWER_COLUMNS, d))
    trigger("trg_answers_rollup_del", "DELETE", "answers",
            [up(ANSWERS, _answer_source(d, "-", attempts="attempts", s="OLD"))])
    return out


def _pg_triggers(attempts: str = ATTEMPTS, *, held: bool = True) -> list[str]:
    """``held``: the triggers of :data:`HELD` stand aside when the transaction says so (migration 0018)."""
    d = Dialect("postgresql", attempts)
    unless_held = NOT_HELD if held else None
    out = []

    def trigger(table: str, event: str, referencing: str, body: list[str], when: str | None = None) -> None:
        name = f"trg_{table}_rollup_{event.lower()[:3]}"
        statements = "".join(f"{s};\n" for s in body)
        if when:
            statements = f"IF {when} THEN\n{statements}END IF;\n"
        out.append(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\nBEGIN\n"
                   f"{statements}RETURN NULL;\nEND\n$fn$")
        out.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")

    new, old, both = "NEW TABLE AS new_rows", "OLD TABLE AS old_rows", "OLD TABLE AS old_rows NEW TABLE AS new_rows"
    trigger("tasks", "INSERT", new, [_upsert(d, TASKS, [_task_source(d, "", rel="new_rows")])], NOT_DEFERRED)
    trigger("tasks", "UPDATE", both, [_upsert(d, TASKS, [_task_source(d, "-", rel="old_rows"),
                                                          _task_source(d, "", rel="new_rows")])], unless_held)
    trigger("tasks", "DELETE", old, [_upsert(d, TASKS, [_task_source(d, "-", rel="old_rows")])])
    trigger("attempts", "INSERT", new, [_upsert(d, CALLS, [_call_source(d, "", rel="new_rows")])], unless_held)
    trigger("attempts", "UPDATE", both, [
        _upsert(d, CALLS, [_call_source(d, "-", rel="old_rows"), _call_source(d, "", rel="new_rows")]),
        _recount_extremes(d, rel="old_rows"),
        _upsert(d, ANSWERS, [_answer_source(d, "-", answers="answers", attempts="old_rows"),
                             _answer_source(d, "", answers="answers", attempts="new_rows")]),
    ])
    trigger("attempts", "DELETE", old, [
        _upsert(d, CALLS, [_call_source(d, "-", rel="old_rows")]), _recount_extremes(d, rel="old_rows"),
    ])
    trigger("answers", "INSERT", new, [_upsert(d, ANSWERS, [_answer_source(d, "", answers="new_rows",
                                                                            attempts="attempts")])], unless_held)
    trigger("answers", "UPDATE", both, [_upsert(d, ANSWERS, [
        _answer_source(d, "-", answers="old_rows", attempts="attempts"),
        _answer_source(d, "", answers="new_rows", attempts="attempts")])])
    trigger("answers", "DELETE", old, [_upsert(d, ANSWERS, [_answer_source(d, "-", answers="old_rows",
                                                                            attempts="attempts")])])
    return out


def create_triggers(conn: Connection, attempts: str = ATTEMPTS, *, held: bool = True) -> None:
    """``attempts``: the task column counted as its attempts (only migrations before 0005 pass another);
    ``held``: PostgreSQL's triggers of :data:`HELD` can be held back (only 0018's downgrade passes False)."""
    statements = (_pg_triggers(attempts, held=held) if conn.dialect.name == "postgresql"
                  else _sqlite_triggers(attempts))
    for sql in statements:
        conn.exec_driver_sql(sql)


def drop_triggers(conn: Connection) -> None:
    for table in ("tasks", "attempts", "answers"):
        for event in ("ins", "upd", "del"):
            name = f"trg_{table}_rollup_{event}"
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")


# -- recount, check, offset -------------------------------------------------------------------------
def _recount_selects(d: Dialect) -> dict[str, str]:
    """Each rollup recounted from the base tables, as a grouped SELECT (no zero rows)."""
    out = {}
    for rollup, source in ((TASKS, _task_source(d, "", rel="tasks")), (CALLS, _call_source(d, "", rel="attempts")),
                           (ANSWERS, _answer_source(d, "", answers="answers", attempts="attempts"))):
        keys = ", ".join(d.q(k) for k in rollup.keys)
        agg = [d.q(k) for k in rollup.keys] + [f"SUM({d.q(c)})" for c in rollup.counts]
        agg += [f"{fn.upper()}({d.q(c)})" for c, fn in rollup.extremes]
        out[rollup.table] = f"SELECT {', '.join(agg)} FROM ({source}) AS d GROUP BY {keys}"
    return out


def rebuild(conn: Connection, attempts: str = ATTEMPTS, *, parts: bool = True) -> None:
    """Recount every rollup from the tasks, attempts and answers (inside the caller's transaction) into the
    day tables; their appended parts emptied (``parts``: False for the migrations before 0019)."""
    d = Dialect(conn.dialect.name, attempts)
    for rollup in ROLLUPS:
        conn.exec_driver_sql(f"DELETE FROM {rollup.table}")
        if parts:
            conn.exec_driver_sql(f"DELETE FROM {rollup.parts}")
        names = ", ".join(d.q(c) for c in rollup.columns)
        conn.exec_driver_sql(f"INSERT INTO {rollup.table} ({names}) {_recount_selects(d)[rollup.table]}")


def verify(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The rows where a rollup (a day table with its parts, added up per key) and a recount disagree, per
    table (empty: all agree). Rows whose counts are all zero are the same as no row.
    """
    d = Dialect(conn.dialect.name)
    recount = _recount_selects(d)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for rollup in ROLLUPS:
        names = ", ".join(d.q(c) for c in rollup.columns)
        stored = conn.exec_driver_sql(_summed(d, rollup, [f"SELECT {names} FROM {rollup.table}",
                                                          f"SELECT {names} FROM {rollup.parts}"])).all()
        fresh = conn.exec_driver_sql(recount[rollup.table]).all()
        norm = _normalizer(rollup)
        a, b = {norm(r) for r in stored}, {norm(r) for r in fresh}
        if a != b:
            out[rollup.table] = sorted(a ^ b, key=repr)
    return out


def fold(conn: Connection) -> None:
    """The appended parts added into the day tables, and emptied (the reports' figures do not change)."""
    d = Dialect(conn.dialect.name)
    for rollup in ROLLUPS:
        names = ", ".join(d.q(c) for c in rollup.columns)
        conn.exec_driver_sql(_upsert(d, rollup, [f"SELECT {names} FROM {rollup.parts}"]))
        conn.exec_driver_sql(f"DELETE FROM {rollup.parts}")


def _normalizer(rollup: Rollup) -> Callable[[Any], tuple[Any, ...]]:
    n_keys, n_counts = len(rollup.keys), len(rollup.counts)

    def norm(row: Any) -> tuple[Any, ...]:
        values = list(row)
        values[0] = values[0] if isinstance(values[0], str) else values[0].isoformat()
        for i in range(n_keys, n_keys + n_counts):
            values[i] = round(float(values[i] or 0), 6)
        for i in range(n_keys + n_counts, len(values)):
            v = values[i]
            values[i] = v if v is None or isinstance(v, str) else v.isoformat(sep=" ", timespec="microseconds")
        return tuple(values)

    return norm


SITE_LOCKS = 7203  # pg_advisory_xact_lock(SITE_LOCKS, hashtext(site)): one site's writers take turns


def take_turns(conn: Any, sites: Iterable[str]) -> None:
    """On PostgreSQL, wait until no other transaction is changing these sites' day counts.

    Writers that change several day rows in several statements (a call of several tasks,
    replanning) could otherwise lock them in opposite orders: a deadlock. Every writer that
    changes tasks, calls or answers of a site takes that site's turn first (sorted, so turns
    are taken in one order too); they would mostly wait for each other on the same day rows
    anyway. SQLite has one writer at a time already. ``conn``: a Connection or a Session.
    """
    dialect = conn.get_bind().dialect if hasattr(conn, "get_bind") else conn.dialect
    if dialect.name != "postgresql":
        return
    for site in sorted(set(sites)):
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:site))"), {"ns": SITE_LOCKS, "site": site})


class Deferred:
    """What a bulk insert of tasks inside :func:`deferred` leaves to be counted at the end.

    On SQLite, ``counts`` is where the writer adds up the day rows of the tasks it really
    inserted (:meth:`DayCounts.created`), as it goes: far cheaper than recounting the new rows
    from the table afterwards. A writer that cannot (a single-row insert) calls :meth:`recount`:
    then the new rows are counted from the table instead, all of them, and ``counts`` is dropped.
    On PostgreSQL ``counts`` is None: the new rows are recounted from the table.
    """

    def __init__(self, counts: DayCounts | None):
        self.counts = counts

    def recount(self) -> None:
        self.counts = None


@contextmanager
def deferred(conn: Connection, created_at: datetime, sites: Iterable[str] = ()) -> Iterator[Deferred]:
    """Tasks created inside (by one scheduling run, all stamped ``created_at``) are added to the
    day rows once, grouped, at the end, instead of one day row updated per task.

    Only the caller's transaction skips the per-task counting; every other writer's tasks are
    counted by the triggers as usual. SQLite (one writer at a time) drops the insert trigger
    and creates it again, both inside the transaction: checking a flag would cost each insert a
    lookup. PostgreSQL sets ``report_settings.deferred``, whose row lock also makes two
    scheduling runs take turns, and takes the turns of ``sites`` (:func:`take_turns`) before
    adding its counts. The new tasks are counted from the table at the end, unless the writer
    counted them itself (:class:`Deferred`, SQLite). An error inside leaves the transaction to be
    rolled back, and with it the trigger or the flag.
    """
    d = Dialect(conn.dialect.name)
    insert_trigger = ("trg_tasks_rollup_ins",)
    if d.pg:
        conn.execute(text("UPDATE report_settings SET deferred = 1 WHERE id = 1"))
        state = Deferred(None)
    else:
        _drop_sqlite_triggers(conn, insert_trigger)
        state = Deferred(DayCounts(offset(conn)))
    before = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM tasks")).scalar_one()
    yield state
    take_turns(conn, sites)
    if state.counts is not None:
        state.counts.write(conn)
    else:
        ours = f"(SELECT * FROM tasks WHERE id > {int(before)} AND created_at = :stamp)"
        stmt = text(_upsert(d, TASKS, [_task_source(d, "", rel=ours)])).bindparams(
            bindparam("stamp", type_=UTCDateTime())
        )
        conn.execute(stmt, {"stamp": created_at})
    if d.pg:
        conn.execute(text("UPDATE report_settings SET deferred = 0 WHERE id = 1"))
    else:
        _create_sqlite_triggers(conn, insert_trigger)


@contextmanager
def held_back(conn: Connection, counts: DayCounts) -> Iterator[None]:
    """Inside, this transaction's inserted calls and answers and updated tasks are not counted by the
    triggers (:data:`HELD`): the writer has added up their day rows in ``counts``, written once,
    grouped, at the end, appended to the day tables' parts (those written before are not written
    again). The writer has taken its sites' turns (:func:`take_turns`). Other transactions' writes
    are counted as usual meanwhile. An error inside leaves the transaction to be rolled back, and with
    it the dropped triggers or the setting.
    """
    pg = conn.dialect.name == "postgresql"
    if pg:
        conn.exec_driver_sql(f"SELECT set_config('{HELD_SETTING}', 'on', true)")
    else:
        _drop_sqlite_triggers(conn, HELD)
    yield
    if pg:
        conn.exec_driver_sql(f"SELECT set_config('{HELD_SETTING}', 'off', true)")
    else:
        _create_sqlite_triggers(conn, HELD)
    counts.write(conn, append=True)


def _drop_sqlite_triggers(conn: Connection, names: Iterable[str]) -> None:
    """Inside a bulk writer's transaction (SQLite): these day-count triggers, dropped until
    :func:`_create_sqlite_triggers` (or the rollback) puts them back."""
    for name in names:
        conn.exec_driver_sql(f"DROP TRIGGER {name}")


def _create_sqlite_triggers(conn: Connection, names: Iterable[str]) -> None:
    names = tuple(names)
    for sql in _sqlite_triggers():
        if any(f" {name} " in sql for name in names):
            conn.exec_driver_sql(sql)


class DayCounts:
    """Day rows of rows written in bulk while the triggers stand aside (SQLite's dropped, PostgreSQL's
    held back: :func:`held_back`), added up here and written once, grouped: what the triggers would
    have added row by row (or statement by statement, joining the tasks).

    The same rules as the SQL sources above (``_task_source``, ``_call_source``, ``_answer_source``);
    :func:`verify` compares the result with a recount. Instants and days are SQLite's stored text,
    compared as text like SQLite compares them. A loader of calls adds each task as it was (``sign``
    -1) and as it is (+1).
    """

    def __init__(self, minutes: int):
        self.shift = timedelta(minutes=minutes)
        # a day changes only at the offset's minute of an hour: an instant's hour (or minute) decides it
        self.cut = 13 if minutes % 60 == 0 else 16
        self.days: dict[Any, Any] = {}  # an instant's hour (or minute) -> its day
        self.tasks: dict[tuple[Any, ...], list[int]] = {}
        self.calls: dict[tuple[Any, ...], list[Any]] = {}
        self.answers: dict[tuple[Any, ...], list[Any]] = {}
        self.ready: list[tuple[Rollup, list[tuple[Any, ...]]]] = []  # rows made by :meth:`prepare`
        self._reached = frozenset(str(s) for s in REACHED)
        self._not_due = frozenset(str(s) for s in NOT_DUE)
        self._open = str(TaskStatus.OPEN)
        # a final status's own count (TASKS.counts' index), as plain strings: compared task after task
        self._final = {str(TaskStatus.UNSUCCESSFUL): 4, str(TaskStatus.REFUSED): 5,
                       str(TaskStatus.WRONG_NUMBER): 6, str(TaskStatus.OPEN): 7}
        self.call_reached = frozenset(str(s) for s in CALL_REACHED)
        # the per-row methods, as closures over the tables (a call costs two attribute lookups less a row)
        self.retask: Callable[..., None] = self._retasker()
        self.call: Callable[[Any, str, str, str, str], None] = self._caller()

    def day(self, instant: str) -> str:
        """The day (stored text) of an instant (stored text)."""
        key = instant[:self.cut]
        day = self.days.get(key)
        if day is None:
            moment = datetime.fromisoformat(key + (":00" if self.cut == 13 else ""))
            day = self.days[key] = (moment + self.shift).date().isoformat()
        return day

    def task(self, sign: int, site: str, specialty: str, status: str, attempts: int, due_at: Any,
             completed_at: Any, window_start: Any, window_end: Any) -> None:
        if status in self._not_due:
            return
        key = (self.day(due_at), site, specialty)
        row = self.tasks.get(key)
        if row is None:
            row = self.tasks[key] = [0] * len(TASKS.counts)
        row[0] += sign  # due
        self._count(row, sign, status, attempts, completed_at, window_start, window_end)

    def created(self, rows: Iterable[Sequence[Any]], due_at: int, site: int, specialty: int, status: int) -> None:
        """New task rows (no attempts, not completed), as :meth:`task` counts them, with ``due_at``, ``site``,
        ``specialty`` and ``status`` at these indexes: the usual open ones counted inline."""
        cut, days, tasks, not_due, open_ = self.cut, self.days, self.tasks, self._not_due, self._open
        n = len(TASKS.counts)
        for row in rows:
            state = row[status]
            if state in not_due:
                continue
            part = row[due_at][:cut]
            day = days.get(part)
            key = (day if day is not None else self.day(part), row[site], row[specialty])
            counts = tasks.get(key)
            if counts is None:
                counts = tasks[key] = [0] * n
            counts[0] += 1  # due
            if state == open_:
                counts[7] += 1
            else:
                self._count(counts, 1, state, 0, None, None, None)

    def _count(self, row: list[int], sign: int, status: str, attempts: int, completed_at: Any,
               window_start: Any, window_end: Any) -> None:
        """A task's counts but ``due`` on its day row (the triggers' rules, core/db/rollups.py TASKS)."""
        if attempts > 0:
            row[1] += sign
        if status in self._reached:
            row[2] += sign
            row[8] += sign * attempts
            if (completed_at is not None and window_start is not None and window_end is not None
                    and window_start <= completed_at <= window_end):
                row[3] += sign
        else:  # unsuccessful, refused, wrong number, open
            column = self._final.get(status)
            if column is not None:
                row[column] += sign

    def _retasker(self) -> Callable[..., None]:
        """``retask``, made once: the instance's tables and sets as locals, task after task."""
        days, day_of, cut, tasks, not_due, count = (self.days, self.day, self.cut, self.tasks, self._not_due,
                                                    self._count)
        n = len(TASKS.counts)

        def retask(site: str, specialty: str, due_at: Any, window_start: Any, window_end: Any,
                   was_status: str, was_attempts: int, was_completed: Any,
                   status: str, attempts: int, completed_at: Any) -> None:
            """A task changed from (``was_status``, ``was_attempts``, ``was_completed``) to (``status``,
            ``attempts``, ``completed_at``) on the same day row: :meth:`task` -1 then +1, with one lookup."""
            if was_status in not_due or status in not_due:
                self.task(-1, site, specialty, was_status, was_attempts, due_at, was_completed, window_start,
                          window_end)
                self.task(1, site, specialty, status, attempts, due_at, completed_at, window_start, window_end)
                return
            day = days.get(due_at[:cut])
            key = (day_of(due_at) if day is None else day, site, specialty)
            row = tasks.get(key)
            if row is None:
                row = tasks[key] = [0] * n
            count(row, -1, was_status, was_attempts, was_completed, window_start, window_end)
            count(row, 1, status, attempts, completed_at, window_start, window_end)

        return retask

    def _caller(self) -> Callable[[Any, str, str, str, str], None]:
        """``call`` (a call's day row), made once: the instance's tables as locals, call after call."""
        days, day_of, cut, calls, call_reached = self.days, self.day, self.cut, self.calls, self.call_reached

        def call(at: Any, site: str, specialty: str, by: str, outcome: str) -> None:
            day = days.get(at[:cut])
            key = (day_of(at) if day is None else day, site, specialty, by)
            row = calls.get(key)
            if row is None:
                calls[key] = [1, 1 if outcome in call_reached else 0, at, at]
                return
            row[0] += 1
            if outcome in call_reached:
                row[1] += 1
            if at < row[2]:
                row[2] = at
            elif at > row[3]:
                row[3] = at

        return call

    def answer(self, at: Any, site: str, specialty: str, question: str, dimension: str | None,
               number: float | None) -> None:
        """An answer given in a call that reached the patient (the caller checks the outcome)."""
        if number is None:
            return
        key = (self.day(at), site, specialty, question, dimension or question)
        row = self.answers.get(key)
        if row is None:
            row = self.answers[key] = [0, 0.0, 0, 0, 0]
        row[0] += 1
        row[1] += number
        if number >= 4:
            row[2] += 1
        if number >= 9:
            row[3] += 1
        if number <= 6:
            row[4] += 1

    def prepare(self) -> None:
        """The grouped rows made into the rows :meth:`write` sends, each table's sorted by its keys (the
        upserts then walk each table's key in order): a writer with time to spare while the database works
        (the call history, while the tasks' ``UPDATE`` runs) makes them then. The groups are emptied."""
        for rollup, groups in ((TASKS, self.tasks), (CALLS, self.calls), (ANSWERS, self.answers)):
            n = len(rollup.counts)
            rows = [(*key, *values) for key, values in groups.items() if any(values[:n])]
            groups.clear()
            if rows:
                try:
                    rows.sort()
                except TypeError:  # a key without a value (None among text): in the order they came
                    pass
                self.ready.append((rollup, rows))

    def write(self, conn: Connection, *, append: bool = False) -> None:
        """Add the grouped rows to the day tables; rows whose counts all cancel out are left alone.
        SQLite: one writer at a time. PostgreSQL: copied into a temporary table, then upserted: the
        writer holds its sites' turns (:func:`take_turns`), so no other writer of the framework changes
        these day rows meanwhile. ``append``: appended to the day tables' parts instead, as they are (a
        report adds them up with the day tables): no key looked up, on PostgreSQL copied straight in.
        Written, they are gone from here: a second write adds nothing. ``conn``: a connection, or what
        runs its statements (a bulk writer's thread)."""
        self.prepare()
        ready, self.ready = self.ready, []
        d = Dialect(conn.dialect.name)
        for rollup, rows in ready:
            names = ", ".join(d.q(c) for c in rollup.columns)
            keys = ", ".join(d.q(k) for k in rollup.keys)
            if append and d.pg:
                from core.db.uow import copy_rows

                copy_rows(conn, f"COPY {rollup.parts} ({names}) FROM STDIN", rows)
            elif append:
                conn.exec_driver_sql(f"INSERT INTO {rollup.parts} ({names}) "
                                     f"VALUES ({', '.join('?' for _ in rollup.columns)})", rows)
            elif d.pg:
                from core.db.uow import copy_rows

                stage = f"followup_{rollup.table}_stage"
                conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} AS SELECT {names} FROM {rollup.table} "
                                     "WITH NO DATA")
                copy_rows(conn, f"COPY {stage} ({names}) FROM STDIN", rows)
                conn.exec_driver_sql(f"INSERT INTO {rollup.table} ({names}) SELECT {names} FROM {stage} "
                                     f"ON CONFLICT ({keys}) DO UPDATE SET {_sets(rollup, d)}")
                conn.exec_driver_sql(f"DROP TABLE {stage}")
            else:
                conn.exec_driver_sql(
                    f"INSERT INTO {rollup.table} ({names}) VALUES ({', '.join('?' for _ in rollup.columns)}) "
                    f"ON CONFLICT ({keys}) DO UPDATE SET {_sets(rollup, d)}", rows)


def offset(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT offset_minutes FROM report_settings WHERE id = 1").scalar_one())


def set_offset(conn: Connection, minutes: int) -> bool:
    """Count days at ``minutes`` east of UTC; recounts everything when that changes. True if it did."""
    if offset(conn) == minutes:
        return False
    conn.exec_driver_sql(f"UPDATE report_settings SET offset_minutes = {int(minutes)} WHERE id = 1")
    rebuild(conn)
    return True


def zone_offset(tz: Any, at: datetime | None = None) -> int:
    """The offset (minutes) of ``tz`` at ``at`` (default: now)."""
    moment = (at or datetime.now(tz)).astimezone(tz)
    delta = moment.utcoffset() or timedelta(0)
    return int(delta.total_seconds() // 60)


def days_of(boundaries: Iterable[datetime], minutes: int) -> list[date] | None:
    """The rollup days the instants start, or None if one is not a midnight at ``minutes`` east of UTC."""
    out = []
    shift = timedelta(minutes=minutes)
    for b in boundaries:
        moved = b.astimezone(UTC).replace(tzinfo=None) + shift
        if moved.hour or moved.minute or moved.second or moved.microsecond:
            return None
        out.append(moved.date())
    return out
