"""Alembic migrations, run programmatically (``followup db upgrade``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from core.db.engine import get_engine, normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; running it again changes nothing."""
    cfg = alembic_config(url)
    with get_engine(url).begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
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
