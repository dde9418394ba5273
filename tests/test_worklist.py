"""The day's worklist: what a coordinator sees when they sit down on Monday 2026-11-23 at 09:00.

SH-DENT calls 10:00-11:30 and 15:30-17:00 (Asia/Shanghai).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, write_csv
from hypothesis import given
from hypothesis import strategies as st

NOW = "2026-11-23T09:00+08:00"  # Monday



@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """SH-DENT patients whose calls fall on Monday in every way that matters for ordering.

    D1 implant Sunday 15:00            clinical 24 h check, due Monday 11:00
    D2 extraction last Monday 10:00    clinical 2-3 h check overdue since the 16th + routine 1-week check today
    D3 scaling Sunday 10:00            routine, due Monday 10:00
    D4 scaling last Wednesday 10:00    routine, window closed Friday: overdue
    D5 scaling Monday 08:30            routine, window opens Tuesday: not today
    D6 scaling Sunday 16:00            routine, due Monday 16:00
    D7 implant Sunday 15:00            do not contact
    A1 hair consultation (SH-AES)
    """
    cli("import", str(write_csv(tmp_path / "p.csv", PATIENT_HEADER, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["D3", "张伟", "M", "1978-01-22", "13712345603", "SH-DENT"],
        ["D4", "刘洋", "F", "1995-06-30", "13612345604", "SH-DENT"],
        ["D5", "陈子涵", "F", "2015-11-08", "13512345605", "SH-DENT"],
        ["D6", "杨建国", "M", "1958-02-14", "13412345606", "SH-DENT"],
        ["D7", "赵敏", "F", "1990-12-01", "18812345607", "SH-DENT"],
        ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"],
    ])), db=db_url, now=NOW)
    cli("import", str(write_csv(tmp_path / "e.csv", EPISODE_HEADER, [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E3", "D3", "SH-DENT", "dental", "scaling", "2026-11-22T10:00", "林雪"],
        ["E4", "D4", "SH-DENT", "dental", "scaling", "2026-11-18T10:00", "林雪"],
        ["E5", "D5", "SH-DENT", "dental", "scaling", "2026-11-23T08:30", "林雪"],
        ["E6", "D6", "SH-DENT", "dental", "scaling", "2026-11-22T16:00", "林雪"],
        ["E7", "D7", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E8", "A1", "SH-AES", "hair", "consultation", "2026-11-20T16:00", "邓涛"],
    ])), db=db_url, now=NOW)
    cli("patients", "dnc", "D7", "--reason", "asked not to be called", db=db_url, now=NOW, user="admin")
    cli("schedule", db=db_url, now=NOW)
    return db_url


def worklist(cli, url: str, *args: str, user: str = "zhang.li", now: str = NOW) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli("worklist", "--format", "json", *args, db=url, now=now, user=user).output)


def test_order_clinical_then_overdue_then_due_time(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    lines = worklist(cli, clinic)
    assert [ln["patient_id"] for ln in lines] == ["D2", "D1", "D4", "D3", "D6"]
    by = {ln["patient_id"]: ln for ln in lines}
    assert (by["D2"]["urgency"], by["D2"]["overdue"]) == ("clinical", True)
    assert (by["D1"]["urgency"], by["D1"]["overdue"]) == ("clinical", False)
    assert by["D1"]["due_at"] == "2026-11-23T11:00+08:00"
    assert (by["D4"]["urgency"], by["D4"]["overdue"]) == ("routine", True)
    assert (by["D3"]["due_at"], by["D6"]["due_at"]) == ("2026-11-23T10:00+08:00", "2026-11-23T16:00+08:00")
    assert not by["D3"]["overdue"] and not by["D6"]["overdue"]


def test_one_line_per_patient_for_the_same_day(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d2 = next(ln for ln in worklist(cli, clinic) if ln["patient_id"] == "D2")
    assert d2["milestones"] == ["check_2h", "check_1w"]  # one call covers both
    assert len(d2["task_ids"]) == 2 and d2["procedures"] == ["extraction"]
    assert d2["due_at"] == "2026-11-16T12:00+08:00"  # the earliest of them


def test_only_windows_opened_by_the_end_of_the_day(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    assert "D5" not in [ln["patient_id"] for ln in worklist(cli, clinic)]
    tuesday = worklist(cli, clinic, "--date", "2026-11-24")
    assert "D5" in [ln["patient_id"] for ln in tuesday]


def test_do_not_contact_patients_never_appear_and_show_as_suppressed(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    for day in ("2026-11-23", "2026-11-24"):
        assert "D7" not in [ln["patient_id"] for ln in worklist(cli, clinic, "--date", day, user="chen.jing")]
    tasks = json.loads(cli("tasks", "--patient", "D7", "--format", "json", db=clinic, now=NOW).output)
    assert tasks and {t["status"] for t in tasks} == {"suppressed"}


def test_coordinators_see_only_their_sites(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    assert {ln["site"] for ln in worklist(cli, clinic)} == {"SH-DENT"}
    assert {ln["site"] for ln in worklist(cli, clinic, user="wang.fang")} == {"SH-AES"}
    assert {ln["site"] for ln in worklist(cli, clinic, user="chen.jing")} == {"SH-DENT", "SH-AES"}
    denied = cli("worklist", "--site", "SH-AES", db=clinic, now=NOW, user="zhang.li", ok=False)
    assert denied.exit_code == 1 and "zhang.li 负责 SH-DENT，不负责门店 SH-AES" in denied.output  # in her language


def test_phone_numbers_are_masked(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d2 = next(ln for ln in worklist(cli, clinic) if ln["patient_id"] == "D2")
    assert d2["phone"] == "139****5602"
    table = cli("worklist", db=clinic, now=NOW, user="zhang.li").output
    assert "13912345602" not in table


def test_mine_shows_what_i_hold_until_the_hold_expires(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    assert worklist(cli, clinic, "--mine") == []
    cli("claim", "--count", "1", db=clinic, now="2026-11-23T10:00+08:00", user="zhang.li")
    mine = worklist(cli, clinic, "--mine", now="2026-11-23T10:10+08:00")
    assert [ln["patient_id"] for ln in mine] == ["D2"] and mine[0]["assignee"] == "zhang.li"
    everyone = worklist(cli, clinic, user="chen.jing", now="2026-11-23T10:10+08:00")
    assert next(ln for ln in everyone if ln["patient_id"] == "D2")["assignee"] == "zhang.li"
    # 30 minutes later the hold is gone: not "mine", and nobody shown as holding it
    assert worklist(cli, clinic, "--mine", now="2026-11-23T10:31+08:00") == []
    later = worklist(cli, clinic, now="2026-11-23T10:31+08:00")
    assert next(ln for ln in later if ln["patient_id"] == "D2")["assignee"] is None


def test_a_recorded_attempt_releases_the_hold_on_the_worklist(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    cli("claim", "--count", "5", db=clinic, now="2026-11-23T10:00+08:00", user="zhang.li")
    d3 = next(ln for ln in worklist(cli, clinic, now="2026-11-23T10:00+08:00") if ln["patient_id"] == "D3")
    cli("record", str(d3["task_ids"][0]), "--outcome", "busy", db=clinic, now="2026-11-23T10:05+08:00", user="zhang.li")
    after = next(ln for ln in worklist(cli, clinic, now="2026-11-23T10:06+08:00") if ln["patient_id"] == "D3")
    assert after["assignee"] is None and after["attempts"] == 1
    assert after["due_at"] == "2026-11-23T15:30+08:00"
    assert "D3" not in [ln["patient_id"] for ln in worklist(cli, clinic, "--mine", now="2026-11-23T10:06+08:00")]


def test_csv_has_one_cell_per_list_and_table_highlights_overdue(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    out = cli("worklist", "--format", "csv", db=clinic, now=NOW, user="zhang.li").output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["patient_id"] for r in rows] == ["D2", "D1", "D4", "D3", "D6"]
    assert rows[0]["milestones"] == "check_2h;check_1w"
    assert len(rows[0]["task_ids"].split(";")) == 2
    assert rows[0]["phone"] == "139****5602"
    assert out.startswith("\ufeff")  # Excel reads the Chinese names right
    table = cli("worklist", "--locale", "en", db=clinic, now=NOW, user="zhang.li").output
    assert "SH-DENT: 5 call(s)" in table
    assert "OVERDUE" in table and "139****5602" in table  # readable at 80 columns, nothing cut
    chinese = cli("worklist", db=clinic, now=NOW, user="zhang.li").output  # the chain's language
    assert "SH-DENT：5 个电话" in chinese and "逾期" in chinese and "临床" in chinese
    assert "check_2h" not in chinese and "2–3小时回访" in chinese.replace("\n", "")


def test_completed_calls_leave_the_list(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d6 = next(ln for ln in worklist(cli, clinic) if ln["patient_id"] == "D6")
    cli("record", str(d6["task_ids"][0]), "--outcome", "reached", "--answer", "sensitivity=no",
        db=clinic, now="2026-11-23T16:05+08:00", user="zhang.li")
    assert "D6" not in [ln["patient_id"] for ln in worklist(cli, clinic, now="2026-11-23T16:06+08:00")]


def test_the_api_gives_typed_lines_and_reads_pending_changes(cli, clinic: str, config) -> None:  # type: ignore[no-untyped-def]
    """``worklist()`` itself, on both backends: aware UTC times, real booleans, as the CLI shows them.

    It reads in the session's transaction, after a flush: a patient marked do-not-contact
    there, not yet committed, is already off the list.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from core.db.engine import get_engine
    from core.db.models import Patient
    from core.worklist import WorklistLine
    from core.worklist import worklist as worklist_of

    now, day = datetime.fromisoformat(NOW), date(2026, 11, 23)
    with Session(get_engine(clinic)) as session:
        lines = worklist_of(session, config, day=day, now=now, sites=["SH-DENT"])
        assert [ln.patient_id for ln in lines] == ["D2", "D1", "D4", "D3", "D6"]
        for ln in lines:
            assert type(ln) is WorklistLine and ln.due_at.tzinfo is UTC
            assert type(ln.overdue) is bool and type(ln.phone_invalid) is bool and type(ln.attempts) is int
            assert all(type(task_id) is int for task_id in ln.task_ids)
        assert lines[0].due_at == datetime(2026, 11, 16, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
        assert (lines[0].phone, lines[0].overdue, lines[0].assignee) == ("139****5602", True, None)
        sh = ZoneInfo("Asia/Shanghai")
        assert [ln.as_dict(sh) for ln in lines] == worklist(cli, clinic)

        session.scalars(select(Patient).where(Patient.external_id == "D2")).one().do_not_contact = True
        pending = worklist_of(session, config, day=day, now=now, sites=["SH-DENT"])
        assert [ln.patient_id for ln in pending] == ["D1", "D4", "D3", "D6"]
        session.rollback()


def _mask_phone_by_regex(phone: str | None) -> str:
    """``mask_phone`` before its shortcut for digits-only numbers: the reference."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11:
        return f"{digits[-11:-8]}****{digits[-4:]}"
    if len(digits) >= 7:
        return f"{digits[:2]}***{digits[-2:]}"
    return "*" * len(digits)


PHONES = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet="0123456789 +-()"),
    st.text(alphabet="0123456789²٣１"),  # all digits to str.isdigit; "²" is not one to \d, "٣" and "１" are
    st.from_regex(r"(\+86)?1[3-9]\d{9}", fullmatch=True),
    st.integers(0, 10**15).map(str),
)


@given(PHONES)
def test_mask_phone_is_the_regular_expression_for_every_input(phone: str | None) -> None:
    from core.privacy import mask_phone

    assert mask_phone(phone) == _mask_phone_by_regex(phone)


def test_the_shortcut_of_mask_phone_is_exact_for_every_character() -> None:
    """``str.isdecimal`` holds for exactly the characters ``\\d`` matches: a string it accepts is its own digits."""
    digit = re.compile(r"\d")
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if c.isdecimal() != bool(digit.match(c))] == []
