"""One unit of work for every write of tasks, attempts and answers (DESIGN.md §8 "One unit of work").

Every writer of those three tables goes through :func:`unit_of_work`::

    with unit_of_work(session, config, sites=[task.site], user=user, now=now, action="record") as uow:
        task = uow.lock_task(task_id)        # the newest committed row, locked until commit
        ...                                  # change rows through ``session`` (ORM or Core)
        uow.audit("attempt", entity="task", entity_id=task.id, patient_id=task.patient_id, detail={...})

What it does, so that no writer has to remember it:

* **access**: :meth:`UnitOfWork.check` is called with ``action`` and the sites on entry; it is the
  one place where roles decide who may do what (:func:`core.access.check_write`: the unit's
  action as one of core/access.py's, at each site). A writer that learns its sites only later
  calls ``uow.check(...)`` itself.
* **turns**: on PostgreSQL it takes the sites' turns (:func:`core.db.rollups.take_turns`: one
  writer of a site's day counts at a time, sites in one order) on entry; :meth:`UnitOfWork.turns`
  takes more when a writer learns them later (each site once per transaction). Nobody else calls
  ``take_turns``.
* **day counts**: the database's triggers keep them exact for every row written inside;
  :meth:`UnitOfWork.deferred` adds a bulk insert's tasks once at the end instead (scheduling).
* **audit**: :meth:`UnitOfWork.audit` writes the audit row with the unit's user and time.
* **SQLite**: a unit of work that starts the session's transaction starts it with ``BEGIN
  IMMEDIATE`` (writers wait for their turn instead of failing with "database is locked").
  Commands that read before they write open their session with ``session_scope(url,
  immediate=True)`` for the same reason.
* **the guard**: writes of tasks, attempts and answers made inside are let through by the guard
  (:func:`enable_guard`, on in the test suite): one made outside fails at once, so a new writer
  that bypasses the unit of work is caught by the first test that runs it. On leaving, the unit
  flushes the session, so its ORM changes are written while it is open.

Units nest: a unit opened inside another (an extra call planned while a call is recorded) shares
it. Deliberate writes outside one (migrations, tests that build a state by hand, benchmarks'
raw baselines) say so with :func:`outside`.

The reconcile (``followup schedule``, ``--replan``), the sweep and the greetings, do-not-contact
(``patients dnc`` and imports), claims, calls and extra calls, the questionnaire, the outbox and the
demo's simulated history all write through it. A new writer does the same: open a unit with the
sites it writes (all of them at once when it can: turns taken later come after the first ones),
change rows through the session, write its audit row with ``uow.audit``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from core.db import rollups
from core.db.models import Task

MARK = "followup_unit_of_work"  # Connection.info: how many units of work are open on it
GUARDED = ("tasks", "attempts", "answers")
GUARD_ENV = "FOLLOWUP_GUARD_WRITES"  # "1": the guard is on in every process (core/db/engine.py; the tests set it)


class UnitOfWorkBypassed(RuntimeError):
    """Tasks, attempts or answers written outside a unit of work: a bug in the writer."""


class UnitOfWork:
    """What one transaction's writer holds: the session, who and when, the turns taken."""

    def __init__(self, session: Session, config: Any, user: str, now: datetime):
        self.session, self.config, self.user, self.now = session, config, user, now
        self._turns: set[str] = set()

    # -- access --------------------------------------------------------------------------------
    def check(self, action: str, *, sites: Iterable[str] = (), patient_id: int | None = None) -> None:
        """May ``self.user`` do ``action`` (``record``, ``dnc``, ``claim``, ``schedule``, ``send`` ...)
        at these sites, for this patient? Raises if not.

        The access point of every write: roles (coordinator, doctor, manager, admin, by site) are
        decided here, in core, not in the CLI (core/access.py: :func:`core.access.check_write`).
        """
        from core import access

        access.check_write(self.config, self.user, action, sites)

    # -- turns ---------------------------------------------------------------------------------
    def turns(self, sites: Iterable[str]) -> None:
        """Take these sites' turns too (PostgreSQL), those not taken yet in this transaction."""
        new = set(sites) - self._turns
        if new:
            rollups.take_turns(self.session, new)
            self._turns |= new

    # -- rows ------------------------------------------------------------------------------------
    def lock_task(self, task_id: int) -> Task | None:
        """The task as last committed, locked until commit (``SELECT ... FOR UPDATE``; on SQLite the
        transaction already holds the write lock). Its counters then change exactly once."""
        return self.session.execute(
            select(Task).where(Task.id == task_id).with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()

    @contextmanager
    def deferred(self, sites: Iterable[str]) -> Iterator[rollups.Deferred]:
        """Bulk inserts of tasks (one scheduling run): their day counts added once, grouped, at the end
        (:func:`core.db.rollups.deferred`), after taking ``sites``' turns."""
        todo = sorted(set(sites) - self._turns)
        with rollups.deferred(self.session.connection(), self.now, sites=todo) as state:
            yield state
        self._turns |= set(todo)

    # -- audit -----------------------------------------------------------------------------------
    def audit(self, action: str, *, entity: str, entity_id: int | None = None, patient_id: int | None = None,
              detail: dict[str, Any] | None = None, user: str | None = None) -> None:
        """The audit row of a change (user and time of this unit unless given)."""
        from core.audit import audit

        audit(self.session, user=user or self.user, at=self.now, action=action, entity=entity, entity_id=entity_id,
              patient_id=patient_id, detail=detail)

    def audit_many(self, action: str, rows: list[dict[str, Any]]) -> None:
        """Several audit rows of this unit (keys as :meth:`audit`'s) in one statement: a claim of many tasks."""
        from core.audit import audit_many

        audit_many(self.session, [{"user": self.user, "at": self.now, "action": action, **row} for row in rows])


@contextmanager
def unit_of_work(session: Session, config: Any = None, *, sites: Iterable[str] = (), user: str, now: datetime,
                 action: str | None = None, turns: bool = True) -> Iterator[UnitOfWork]:
    """Write tasks, attempts and answers (see the module's docstring); nested units share the outer one.

    ``sites``: where it writes (access check, turns). ``turns=False``: take no turns now, because
    the writer changes no day count (a claim only holds tasks: it never waits for the sites'
    writers) or takes them itself later (:meth:`UnitOfWork.deferred`, at the end of a bulk insert).
    """
    sites = list(sites)
    outer: UnitOfWork | None = session.info.get(MARK)
    if outer is not None:
        if action:
            outer.check(action, sites=sites)
        if turns:
            outer.turns(sites)
        yield outer
        session.flush()
        return
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        conn = session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
    else:
        conn = session.connection()
    uow = UnitOfWork(session, config, user, now)
    if action:
        uow.check(action, sites=sites)
    info = conn.info  # the connection's own dict: still there if the transaction ends early
    info[MARK] = info.get(MARK, 0) + 1
    session.info[MARK] = uow
    try:
        if turns:
            uow.turns(sites)
        yield uow
        session.flush()
    finally:
        session.info.pop(MARK, None)
        info[MARK] -= 1


@contextmanager
def outside(bind: Session | Connection) -> Iterator[None]:
    """A deliberate write of tasks, attempts or answers outside a unit of work: migrations, a test
    that builds a state by hand (or checks that the triggers count any writer), a benchmark's raw
    baseline. Production writers use :func:`unit_of_work`."""
    info = (bind.connection() if isinstance(bind, Session) else bind).info
    info[MARK] = info.get(MARK, 0) + 1
    try:
        yield
        if isinstance(bind, Session):
            bind.flush()
    finally:
        info[MARK] -= 1


# -- the guard ---------------------------------------------------------------------------------------
_WRITE = re.compile(r'\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY)\s+"?(' + "|".join(GUARDED) + r')"?(?![\w.])',
                    re.IGNORECASE)


def _guard(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any,
           executemany: bool) -> None:
    if conn.info.get(MARK):
        return
    head = statement.lstrip()[:6].upper()
    if head in ("SELECT", "PRAGMA"):
        return
    found = _WRITE.search(statement)
    if found is not None:
        raise UnitOfWorkBypassed(
            f"{found.group(1)} written outside a unit of work (core/db/uow.py): "
            f"{' '.join(statement.split())[:120]}"
        )


def inside(conn: Connection, statement: str) -> None:
    """For a write the engine's events do not see (the driver's own ``COPY``): refused like any other
    outside a unit of work, when the guard is on."""
    if event.contains(Engine, "before_cursor_execute", _guard):
        _guard(conn, None, statement, None, None, False)


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile, for a bulk write (scheduling, a call history): it builds
    hundreds of thousands of rows and tuples that reference counting frees, and the collector would walk
    them again and again (6% of a schedule run, a third of a history's planning)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def copy_rows(conn: Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL ``COPY ... FROM STDIN`` of ``rows`` (driver values) on ``conn``'s psycopg connection,
    asking the write guard first (:func:`inside`): the one way core bulk-loads rows."""
    with copy_stream(conn, sql) as write_row:
        for row in rows:
            write_row(row)


@contextmanager
def copy_stream(conn: Connection, sql: str) -> Iterator[Callable[[Sequence[Any]], None]]:
    """:func:`copy_rows` for a writer that makes its rows as it goes: inside, each row given to the
    function yielded is sent (buffered) while the server inserts the rows before it. An error inside
    ends the ``COPY`` with that error (the transaction, or its savepoint, is then rolled back)."""
    inside(conn, sql)
    with conn.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
        yield copy.write_row


def enable_guard() -> None:
    """Refuse every INSERT, UPDATE, DELETE or COPY of tasks, attempts or answers made outside a unit
    of work, on every engine of this process (the test suite turns it on; so does
    ``FOLLOWUP_GUARD_WRITES=1``). One regular expression per non-SELECT statement."""
    if not event.contains(Engine, "before_cursor_execute", _guard):
        event.listen(Engine, "before_cursor_execute", _guard)


def disable_guard() -> None:
    if event.contains(Engine, "before_cursor_execute", _guard):
        event.remove(Engine, "before_cursor_execute", _guard)
