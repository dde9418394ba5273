"""The database layer: planner statistics after bulk writes."""

from __future__ import annotations

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
