"""Migrations carry existing data forward: a database from an earlier release keeps its calls."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import insert, text

from core.db.engine import get_engine
from core.db.migrate import alembic_config, alembic_head, current_revision, head_revision, upgrade
from core.db.models import Episode, Patient, Task
from core.db.uow import outside


def _to(url: str, revision: str, up: bool) -> None:
    cfg = alembic_config(url)
    with get_engine(url).begin() as connection:
        cfg.attributes["connection"] = connection
        (command.upgrade if up else command.downgrade)(cfg, revision)


def test_0003_gives_existing_attempts_their_tasks_site(db_url: str) -> None:
    _to(db_url, "0002", up=False)
    assert current_revision(db_url) == "0002"
    when = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    with get_engine(db_url).begin() as conn, outside(conn):  # a database of an earlier release
        conn.execute(insert(Patient), [{"id": 1, "external_id": "P1", "name": "x", "gender": "F",
                                        "phone": "13800000000", "site": "SH-DENT", "locale": "zh_CN"}])
        conn.execute(insert(Episode), [{"id": 1, "external_id": "E1", "patient_id": 1, "site": "SH-DENT",
                                        "specialty": "dental", "procedure": "implant", "trigger": "procedure",
                                        "occurred_at": when, "attributes": {}}])
        conn.execute(insert(Task), [
            {"id": task_id, "episode_id": 1, "patient_id": 1, "site": site, "specialty": "dental",
             "procedure": "implant", "milestone": f"m{task_id}", "purpose": "check", "channel": "phone",
             "urgency": "routine", "due_at": when, "window_start": when, "window_end": when, "target_at": when,
             "offset": "1d", "window_earliest": "0d", "window_latest": "1d", "attempts": 1}
            for task_id, site in ((1, "SH-DENT"), (2, "BJ-HOSP"))
        ])
        # The attempts table as 0002 had it: no site column.
        conn.execute(text("INSERT INTO attempts (id, task_id, at, by, outcome) "
                          "VALUES (1, 1, '2026-11-02 02:05:00', 'zhang.li', 'no_answer'), "
                          "(2, 2, '2026-11-02 02:05:00', 'zhang.li', 'no_answer')"))
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    with get_engine(db_url).connect() as conn:
        sites = conn.execute(text("SELECT id, site FROM attempts ORDER BY id")).all()
    assert [tuple(row) for row in sites] == [(1, "SH-DENT"), (2, "BJ-HOSP")]


def test_the_head_every_command_checks_is_alembics_head() -> None:
    assert head_revision() == alembic_head(), "a new migration sets HEAD_REVISION in core/db/migrate.py"


def test_0018_lets_a_bulk_load_hold_back_the_triggers_and_its_downgrade_does_not(db_url: str) -> None:
    """PostgreSQL's triggers on inserted calls stand aside in a transaction that says so (0018); before 0018
    they count whatever the transaction says. (SQLite's are dropped by the loader: 0018 changes nothing there.)"""
    from core.db import rollups

    def counted_while_held() -> int:
        with get_engine(db_url).connect() as conn, outside(conn):
            tx = conn.begin()
            conn.execute(insert(Patient), [{"id": 1, "external_id": "P1", "name": "x", "gender": "F",
                                            "phone": "13800000000", "site": "SH-DENT", "locale": "zh_CN"}])
            conn.execute(insert(Episode), [{"id": 1, "external_id": "E1", "patient_id": 1, "site": "SH-DENT",
                                            "specialty": "dental", "procedure": "implant", "trigger": "procedure",
                                            "occurred_at": when, "attributes": {}}])
            conn.execute(insert(Task), [{"id": 1, "episode_id": 1, "patient_id": 1, "site": "SH-DENT",
                                         "specialty": "dental", "procedure": "implant", "milestone": "m1",
                                         "purpose": "check", "channel": "phone", "urgency": "routine",
                                         "due_at": when, "window_start": when, "window_end": when,
                                         "target_at": when, "offset": "1d", "window_earliest": "0d",
                                         "window_latest": "1d"}])
            conn.execute(text(f"SELECT set_config('{rollups.HELD_SETTING}', 'on', true)"))
            conn.execute(text("INSERT INTO attempts (task_id, at, site, \"by\", outcome, channel) "
                              "VALUES (1, '2026-11-02 02:05:00', 'SH-DENT', 'zhang.li', 'no_answer', 'phone')"))
            counted = conn.execute(text("SELECT COALESCE(SUM(attempts), 0) FROM report_call_days")).scalar_one()
            tx.rollback()
            return int(counted)

    when = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    if get_engine(db_url).dialect.name != "postgresql":
        _to(db_url, "0017", up=False)
        upgrade(db_url)
        assert current_revision(db_url) == head_revision()
        return
    assert counted_while_held() == 0
    _to(db_url, "0017", up=False)
    assert counted_while_held() == 1
    upgrade(db_url)
    assert counted_while_held() == 0
