"""The database layer: planner statistics after bulk writes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.db.engine import analyze, get_engine


def _stats(url: str) -> int:
    with get_engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            exists = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar()
            if not exists:
                return 0
            return int(conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'patients'")).scalar_one())
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'patients' "
            "AND schemaname = current_schema() AND last_analyze IS NOT NULL"
        )).scalar_one())


def test_analyze_gives_the_planner_statistics_and_keeps_the_data(db_url: str) -> None:
    with get_engine(db_url).begin() as conn:
        conn.execute(text(
            "INSERT INTO patients (external_id, name, gender, phone, site, locale, do_not_contact, phone_invalid, "
            "created_at, updated_at) VALUES ('P1', 'x', 'F', '13800000000', 'SH-DENT', 'zh_CN', false, false, "
            "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"
        ))
    assert _stats(db_url) == 0
    analyze(db_url)
    assert _stats(db_url) >= 1
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patients")).scalar_one() == 1


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_every_table_of_the_models_is_the_migrated_database(db_url: str) -> None:
    """The models (the four tables mapped on import and those mapped on first use) describe the
    migrated database: no table, column or declared index is missing on either side."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.db.models import Base, load_all

    load_all()
    assert len(Base.metadata.tables) == 21
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    structural = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column",
                                              "add_index")]
    assert structural == []


def test_a_command_maps_only_the_tables_it_names() -> None:
    """Importing the models maps patients, episodes, tasks and attempts (and the sites); a table of
    another part (complaints, the outbox, the report's day counts) is mapped when first named."""
    import json
    import subprocess
    import sys

    code = (
        "import json, core.db.models as m\n"
        "before = sorted(m.Base.metadata.tables)\n"
        "from core.db.models import Complaint\n"
        "print(json.dumps([before, sorted(m.Base.metadata.tables), Complaint.__tablename__]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after, table = json.loads(out)
    assert before == ["attempts", "episodes", "patients", "sites", "tasks"]
    assert table == "complaints"
    assert {"complaints", "answers", "escalations"} <= set(after) and "outbox" not in after
