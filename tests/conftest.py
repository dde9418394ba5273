"""Shared fixtures: databases on SQLite and PostgreSQL, the demo config, a CLI runner.

PostgreSQL tests use the server at ``FOLLOWUP_TEST_PG`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), each test in a schema of
its own. When the server is unreachable the tests skip, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "chain.yaml"
PG_URL = os.environ.get("FOLLOWUP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# No wall-clock limits (the machine is shared, tests run side by side): Hypothesis' 200 ms deadline per
# example and its too-slow health check would fail a correct property on a busy machine. The example
# counts stay as each test sets them.
settings.register_profile("followup", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("followup")


def _pg_available() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The per-user cache (core/cache.py) of this test run only: never the developer's own."""
    before = os.environ.get("FOLLOWUP_CACHE_DIR")
    os.environ["FOLLOWUP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("FOLLOWUP_CACHE_DIR", None)
    else:
        os.environ["FOLLOWUP_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def _writes_through_units_of_work() -> Iterator[None]:
    """Every write of tasks, attempts and answers goes through a unit of work (core/db/uow.py): the
    guard refuses any other, in this process and in the CLI processes tests start (the variable)."""
    from core.db.uow import GUARD_ENV, disable_guard, enable_guard

    os.environ[GUARD_ENV] = "1"
    enable_guard()
    yield
    disable_guard()
    os.environ.pop(GUARD_ENV, None)


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {problem}")
    return PG_URL


def _schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _dispose(url: str) -> None:
    from core.db.engine import get_engine

    get_engine(url).dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated once per test run; each test gets a copy of it."""
    from core.db.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "followup.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    _dispose(url)  # the last connection closes: the WAL is checkpointed into the file and removed
    return path


@pytest.fixture(scope="session")
def _pg_admin(pg_server: str) -> Iterator[Any]:
    from sqlalchemy import create_engine

    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()



@dataclass
class PgTemplate:
    """The migrated schema of this test run and what a test's schema is made from or reset to."""

    schema: str
    statements: list[tuple[str, Any, bool]]  # what the migrations ran, replayed by _pg_clone
    tables: list[tuple[str, bool]] = field(default_factory=list)  # (name, has rows after the migrations)
    sequences: list[tuple[str, int, bool]] = field(default_factory=list)  # (name, value, is_called)
    shape: str | None = None  # the catalogue fingerprint of a freshly cloned schema
    free: list[str] = field(default_factory=list)  # schemas a finished test left as they were made
    reuse: bool = True  # False once a reset failed (e.g. not a superuser): every test clones


@pytest.fixture(scope="session")
def _pg_template(pg_server: str, _pg_admin: Any) -> Iterator[PgTemplate]:
    """The statements the migrations run on an empty PostgreSQL schema, recorded once per test run.

    Each test's schema replays them (one round trip in a pipeline) instead of running Alembic again,
    or is a schema an earlier test used, emptied (see ``_pg_reset``). The schema names are random,
    so test runs from several checkouts, and pytest -n workers, can share one server. The migrated
    schema stays until the end of the run: it holds the rows the migrations insert.
    """
    from sqlalchemy import event, text

    from core.db.engine import get_engine
    from core.db.migrate import upgrade

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _schema_url(pg_server, schema)
    template = PgTemplate(schema, [])

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        template.statements.append((statement, parameters, executemany))

    engine = get_engine(url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        try:
            upgrade(url)
        finally:
            event.remove(engine, "before_cursor_execute", record)
            engine.dispose()
        with _pg_admin.connect() as conn:
            names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1"),
                                 {"s": schema}).scalars().all()
            template.tables = [
                (name, bool(conn.execute(text(f'SELECT EXISTS (SELECT FROM "{schema}"."{name}")')).scalar()))
                for name in names
            ]
            template.sequences = [tuple(row) for row in conn.execute(text(  # type: ignore[misc]
                "SELECT sequencename, coalesce(last_value, start_value), last_value IS NOT NULL"
                " FROM pg_sequences WHERE schemaname = :s ORDER BY 1"), {"s": schema})]
        yield template
    finally:
        with _pg_admin.connect() as conn:
            for name in [schema, *template.free]:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


# Everything about a schema's tables that a test could change other than their rows: relations and
# their kinds, columns, defaults, constraints, indexes, triggers (and whether they are enabled),
# functions, views, privileges, row security. A schema whose fingerprint differs from a fresh
# clone's is dropped, not reused; so is one that was analysed or vacuumed (see ``_pg_schema``).
_SHAPE = """
SELECT md5(string_agg(replace(item, %(qualified)s, ''), E'\\n' ORDER BY item)) FROM (
  SELECT concat_ws(' ', 'rel', c.relname, c.relkind, c.relpersistence, c.relowner::regrole, c.relacl::text,
                   c.relrowsecurity, c.relforcerowsecurity,
                   CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END) AS item
    FROM pg_class c WHERE c.relnamespace = %(ns)s::regnamespace
  UNION ALL
  SELECT concat_ws(' ', 'col', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, a.attisdropped, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = %(ns)s::regnamespace AND a.attnum > 0
  UNION ALL
  SELECT concat_ws(' ', 'con', c.relname, k.conname, pg_get_constraintdef(k.oid))
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %(ns)s::regnamespace
  UNION ALL
  SELECT concat_ws(' ', 'idx', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = %(ns)s::regnamespace
  UNION ALL
  SELECT concat_ws(' ', 'trg', t.tgenabled, CASE WHEN t.tgisinternal  -- foreign keys': named by their oid
                   THEN concat_ws(' ', c.relname, t.tgfoid::regproc, t.tgtype) ELSE pg_get_triggerdef(t.oid) END)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = %(ns)s::regnamespace
  UNION ALL
  SELECT concat_ws(' ', 'fn', p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc), p.proacl::text)
    FROM pg_proc p WHERE p.pronamespace = %(ns)s::regnamespace
  UNION ALL
  SELECT concat_ws(' ', 'seq', c.relname, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = %(ns)s::regnamespace
) shape
"""


def _pg_shape(admin: Any, schema: str) -> str | None:
    raw = admin.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(f'SET LOCAL search_path = "{schema}"')  # names in definitions: unqualified
            cur.execute(_SHAPE, {"ns": f'"{schema}"', "qualified": f"{schema}."})  # index definitions name it
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        raw.close()


def _pg_clone(admin: Any, schema: str, statements: list[tuple[str, Any, bool]]) -> None:
    raw = admin.raw_connection()
    try:
        conn = raw.driver_connection
        conn.autocommit = False
        with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")  # a test's schema need not survive a crash
            cur.execute(f'CREATE SCHEMA "{schema}"')
            cur.execute(f'SET LOCAL search_path = "{schema}"')
            for statement, parameters, many in statements:
                (cur.executemany if many else cur.execute)(statement, parameters)
        conn.autocommit = True
    finally:
        raw.close()


def _pg_reset(admin: Any, schema: str, template: PgTemplate) -> None:
    """Empty a schema a test used back to what a fresh clone holds, in one round trip: every table's
    rows deleted (triggers and foreign keys not firing: session_replication_role, superuser only), the
    rows the migrations inserted copied back from the migrated schema, each sequence set back."""
    raw = admin.raw_connection()
    try:
        conn = raw.driver_connection
        conn.autocommit = False
        with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute("SET LOCAL lock_timeout = '10s'")  # a connection the test left open: drop instead
            cur.execute("SET LOCAL session_replication_role = replica")
            for name, seeded in template.tables:
                cur.execute(f'DELETE FROM "{schema}"."{name}"')
                if seeded:
                    cur.execute(f'INSERT INTO "{schema}"."{name}" SELECT * FROM "{template.schema}"."{name}"')
            for name, value, called in template.sequences:
                cur.execute("SELECT setval(%s::regclass, %s, %s)", (f'"{schema}"."{name}"', value, called))
        conn.autocommit = True
    finally:
        raw.close()


# A schema whose planner statistics were gathered (by the test, or by a database-wide VACUUM or
# ANALYZE someone ran on the server) is not like a new one: tests/test_db.py expects none.
_ANALYSED = """
SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = %s
   AND num_nonnulls(last_analyze, last_autoanalyze, last_vacuum, last_autovacuum) > 0
"""


def _pg_schema(admin: Any, template: PgTemplate) -> str:
    """A schema for one test: one an earlier test left unchanged (emptied), else a new clone."""
    from sqlalchemy import text

    while template.free:
        schema = template.free.pop()
        raw = admin.raw_connection()
        try:
            with raw.driver_connection.cursor() as cur:
                analysed = cur.execute(_ANALYSED, (schema,)).fetchone()
        finally:
            raw.close()
        if analysed and not analysed[0]:
            return schema
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _pg_clone(admin, schema, template.statements)
    if template.shape is None:
        template.shape = _pg_shape(admin, schema)
    return schema


def _pg_release(admin: Any, schema: str, template: PgTemplate) -> None:
    """After a test: reuse its schema if the test changed only rows, else drop it."""
    from sqlalchemy import text

    try:
        if template.reuse and template.shape is not None and _pg_shape(admin, schema) == template.shape:
            try:
                _pg_reset(admin, schema, template)
            except Exception as exc:  # e.g. not a superuser: every later test gets a new clone
                template.reuse = "lock timeout" in str(exc)  # a lock this test left: only this schema
                raise
            template.free.append(schema)
            return
    except Exception:  # the schema is dropped below, as it was before schemas were reused
        pass
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite file, then a PostgreSQL schema (each test its own).

    Both come from one migration per test run (see ``_sqlite_template``, ``_pg_template``): a copy of
    the SQLite file; on PostgreSQL a replay of the migrations' statements, or a schema an earlier test
    used whose tables the test did not change, emptied and its sequences set back (``_pg_release``).
    """
    if request.param == "sqlite":
        path = tmp_path / "followup.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        _dispose(url)
        return
    base = request.getfixturevalue("pg_server")
    admin = request.getfixturevalue("_pg_admin")
    template = request.getfixturevalue("_pg_template")
    schema = _pg_schema(admin, template)
    url = _schema_url(base, schema)
    try:
        yield url
    finally:
        from core.db.engine import get_engine

        get_engine(url).dispose()
        get_engine.cache_clear()
        _pg_release(admin, schema, template)


@pytest.fixture
def config():  # type: ignore[no-untyped-def]
    from core.config import load_config

    return load_config(CONFIG)


@pytest.fixture
def plugins():  # type: ignore[no-untyped-def]
    from core.plugins import get_plugins

    return get_plugins()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``followup`` in-process: ``cli("tasks", "--format", "json", db=url, now=...)``."""
    from click.testing import CliRunner

    from core.cli.main import cli as group

    monkeypatch.chdir(ROOT)
    for var in ("FOLLOWUP_CONFIG", "FOLLOWUP_DATABASE_URL", "FOLLOWUP_NOW", "FOLLOWUP_USER"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str, db: str | None = None, now: str | None = None, user: str = "admin",
            config: str | Path | None = None, input: str | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
        opts: list[str] = ["--as", user]
        if db:
            opts += ["--db", db]
        if now:
            opts += ["--now", now]
        if config:
            opts += ["--config", str(config)]
        result = CliRunner().invoke(group, [*opts, *args], input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run
