"""Shared fixtures: databases on SQLite and PostgreSQL, the demo config, a CLI runner.

PostgreSQL tests use the server at ``FOLLOWUP_TEST_PG`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), each test in a schema of
its own. When the server is unreachable the tests skip, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {problem}")
    return PG_URL


def _pg_schema_url(base: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        from core.db.engine import get_engine

        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite file, then a PostgreSQL schema."""
    from core.db.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'followup.db'}"
        upgrade(url)
        yield url
        from core.db.engine import get_engine

        get_engine(url).dispose()
        return
    base = request.getfixturevalue("pg_server")
    for url in _pg_schema_url(base):
        upgrade(url)
        yield url
        from core.db.engine import get_engine

        get_engine(url).dispose()


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
