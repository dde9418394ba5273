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
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "chain.yaml"
PG_URL = os.environ.get("FOLLOWUP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


@pytest.fixture(scope="session")
def _pg_template(pg_server: str, _pg_admin: Any) -> list[tuple[str, Any, bool]]:
    """The statements the migrations run on an empty PostgreSQL schema, recorded once per test run.

    Each test's schema replays them (one round trip in a pipeline) instead of running Alembic again.
    The schema names are random, so test runs from several checkouts can share one server.
    """
    from sqlalchemy import event, text

    from core.db.engine import get_engine
    from core.db.migrate import upgrade

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _schema_url(pg_server, schema)
    recorded: list[tuple[str, Any, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        recorded.append((statement, parameters, executemany))

    engine = get_engine(url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        upgrade(url)
    finally:
        event.remove(engine, "before_cursor_execute", record)
        engine.dispose()
        with _pg_admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return recorded


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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite file, then a PostgreSQL schema (each test its own).

    Both are copies of one migration per test run (see ``_sqlite_template``, ``_pg_template``).
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
    statements = request.getfixturevalue("_pg_template")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _pg_clone(admin, schema, statements)
    url = _schema_url(base, schema)
    try:
        yield url
    finally:
        from sqlalchemy import text

        from core.db.engine import get_engine

        get_engine(url).dispose()
        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


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
