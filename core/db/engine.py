"""Engines for SQLite (embedded, WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


SQLITE_MMAP_BYTES = 1 << 30


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if os.environ.get("FOLLOWUP_GUARD_WRITES") == "1":  # writers outside a unit of work fail (the tests)
        from core.db.uow import enable_guard

        enable_guard()
    url = normalize_url(url)
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        from core.privacy import private_sqlite

        private_sqlite(make_url(url).database)  # patient data: readable by the owner only
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy emit BEGIN itself (so BEGIN IMMEDIATE is possible).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if ":memory:" not in url and url != "sqlite://":
                cursor.execute("PRAGMA journal_mode=WAL")
                # Read pages straight from the OS page cache instead of copying each one
                # through a read() call: reports scan months of tasks (docs/performance.md).
                cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # BEGIN IMMEDIATE for writers: session_scope(immediate=True), or a unit of work that starts
            # the transaction (core/db/uow.py) with the execution option sqlite_begin
            begin = conn.info.pop("begin", None) or conn.get_execution_options().get("sqlite_begin", "BEGIN")
            conn.exec_driver_sql(begin)

        _OPENED.append(engine)
        return engine
    # No ping before each checkout (a round trip per transaction: claims at queue speed, issue 13); a
    # long-running process (followup serve) recycles connections older than half an hour instead.
    engine = create_engine(url, pool_recycle=1800)
    _raise_psycopg_query_cache()
    _OPENED.append(engine)
    return engine


def _raise_psycopg_query_cache() -> None:
    """psycopg converts a query's ``%(name)s`` placeholders again on every execution when the query is
    longer than 4,096 bytes; a claim's statement names the coordinator's sites (4.4 kB for 50 sites), so
    it paid 85 us a round for it. Longer queries are remembered too (a module setting of psycopg's; a
    psycopg without it is left as it is)."""
    try:
        from psycopg import _queries
    except ImportError:  # a psycopg laid out otherwise: nothing to raise
        return
    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", None) == 4096:
        _queries.MAX_CACHED_STATEMENT_LENGTH = 32768


_OPENED: list[Engine] = []


def close_all() -> None:
    """Close every engine's connections (SQLite checkpoints its write-ahead log into the file)."""
    for engine in _OPENED:
        engine.dispose()
    _OPENED.clear()
    get_engine.cache_clear()
    _sessionmaker.cache_clear()


ANALYZED_TABLES = ("patients", "episodes", "tasks", "attempts", "answers")


def analyze(url: str) -> None:
    """Refresh the query planner's statistics (``ANALYZE``), outside any transaction.

    SQLite only knows its tables' sizes once analyzed; without that it reads a
    site's whole task list instead of a month's date range. PostgreSQL's
    autovacuum gets there by itself, later. Run after bulk writes: ``followup db
    upgrade`` and a large ``followup schedule`` do (docs/performance.md).
    """
    engine = get_engine(url)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # autocommit: the connect hook unset isolation_level
        try:
            raw.driver_connection.execute("ANALYZE")
        finally:
            raw.close()
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE " + ", ".join(ANALYZED_TABLES))


def session_factory(url: str) -> sessionmaker[Session]:
    return _sessionmaker(get_engine(url))


@lru_cache(maxsize=8)
def _sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """One per engine: a ``sessionmaker`` is a new subclass of Session, whose event dispatch SQLAlchemy
    builds again for its first instance (0.25 ms, a third of a claim's own Python, issue 13)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(url: str, *, immediate: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error (nothing half-written).

    ``immediate=True`` takes SQLite's write lock at BEGIN, so a read-then-write
    (claiming) cannot be interleaved with another writer.
    """
    engine = get_engine(url)
    conn = None
    if immediate and engine.dialect.name == "sqlite":
        conn = engine.connect()
        conn.info["begin"] = "BEGIN IMMEDIATE"
        session = Session(bind=conn, expire_on_commit=False)
    else:
        session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        if conn is not None:
            conn.close()
