"""Alembic migrations, run programmatically (``followup db upgrade``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.db.engine import get_engine, normalize_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; running it again changes nothing."""
    from alembic import command

    from core.db.uow import outside

    cfg = alembic_config(url)
    with get_engine(url).begin() as connection, outside(connection):  # migrations backfill rows themselves
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(url: str) -> str | None:
    """The database's revision: one SELECT (None for a database that was never migrated)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    with get_engine(url).connect() as connection:
        try:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:
            connection.rollback()
            if inspect(connection).has_table("alembic_version"):
                raise
            return None
    if len(rows) > 1:
        raise RuntimeError(f"the database has {len(rows)} migration heads: {sorted(r[0] for r in rows)}")
    return rows[0][0] if rows else None


# The newest migration. Every command compares the database's revision with it: a constant, not the
# migration files read again in every process. A new migration changes it (tests/test_migrations.py
# fails until it names Alembic's head).
HEAD_REVISION = "0019"


def head_revision() -> str:
    """The revision this version of the code needs the database at."""
    return HEAD_REVISION


def alembic_head() -> str | None:
    """The head as Alembic computes it (slow: imports every revision)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def set_day_offset(url: str, timezone: Any) -> bool:
    """Count the reports' per-day rows in the chain's days (core/db/rollups.py); True if that changed
    them (they are then recounted). A timezone with summer time counts in its January offset: reports
    over periods in the other offset count from the rows."""
    from datetime import datetime

    from core.db import rollups

    january = datetime(datetime.now().year, 1, 15, tzinfo=timezone)
    with get_engine(url).begin() as connection:
        return rollups.set_offset(connection, rollups.zone_offset(timezone, january))
