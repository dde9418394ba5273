"""Escalations as a closed loop (issue 14 item 13): opened by a rule or by the coordinator, assigned to the
attending doctor (else the site's on-call doctor), due within working hours, acknowledged and resolved by the
assignee, overdue ones highlighted in lists and counted in reports. SH-DENT, Monday 2026-11-23; the demo chain
has working hours 08:00-18:00, 4 working hours for clinical and 16 for routine escalations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clinic_data import seed
from clinic_data import task_id as tid

NOW = "2026-11-23T10:05+08:00"
KEYS = ["id", "task_id", "patient_id", "site", "reason", "severity", "assignee", "status", "opened_at", "due_at",
        "acknowledged_at", "resolved_at"]


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """D1 implant by 陈志远 (on staff as chen.zhiyuan); D2 extraction by 林雪 (not on staff: the on-call song.jia);
    D3 a prosthesis by 陈志远; A1 at SH-AES."""
    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["D3", "周敏", "F", "1979-03-03", "13912345603", "SH-DENT"],
        ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "林雪"],
        ["E3", "D3", "SH-DENT", "dental", "prosthesis", "2026-11-22T10:00", "陈志远"],
        ["E4", "A1", "SH-AES", "aesthetic", "double_eyelid", "2026-11-22T09:00", "邓涛"],
    ])
    return db_url


def listing(cli, url: str, *args: str, user: str = "zhang.li", now: str = NOW) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli("escalations", "list", *args, "--format", "json", db=url, now=now, user=user).output)


def red_flag(cli, url: str) -> dict:  # type: ignore[no-untyped-def]
    cli("record", str(tid(cli, url, "D1", "check_24h")), "--outcome", "reached", "--answer", "bleeding_stopped=no",
        db=url, now=NOW, user="zhang.li")
    [row] = listing(cli, url)
    return row


def test_a_red_flag_is_assigned_to_the_attending_doctor_with_a_deadline(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    row = red_flag(cli, clinic)
    assert list(row) == KEYS
    assert (row["patient_id"], row["severity"], row["assignee"], row["status"]) == \
        ("D1", "clinical", "chen.zhiyuan", "open")
    assert (row["opened_at"], row["due_at"]) == ("2026-11-23T10:05+08:00", "2026-11-23T14:05+08:00")  # 4 working hours
    assert row["acknowledged_at"] is None and row["resolved_at"] is None


def test_a_routine_escalation_has_the_longer_deadline_in_working_hours(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    cli("record", str(tid(cli, clinic, "D3", "check_1d")), "--outcome", "reached", "--answer", "bite_comfortable=no",
        db=clinic, now=NOW, user="zhang.li")
    [row] = listing(cli, clinic)
    # 16 working hours from Monday 10:05: 7h55 on Monday (to 18:00), the other 8h05 from Tuesday 08:00
    assert (row["severity"], row["due_at"]) == ("routine", "2026-11-24T16:05+08:00")


def test_the_coordinator_opens_one_on_their_own_judgement(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    task = tid(cli, clinic, "D2", "check_1w")
    out = cli("escalations", "open", str(task), "--reason", "说话含糊，像是很痛但不肯说", db=clinic,
              now="2026-11-23T16:00+08:00", user="zhang.li").output
    [row] = listing(cli, clinic, now="2026-11-23T16:00+08:00")
    # 林雪 is not on the staff list: the site's on-call doctor takes it; 2 hours today, 2 tomorrow from 08:00
    assert (row["task_id"], row["assignee"], row["due_at"]) == (task, "song.jia", "2026-11-24T10:00+08:00")
    assert out.strip() == f"已上报医生 {row['id']}：song.jia，请在 2026-11-24 10:00 前处理。"
    en = cli("escalations", "open", str(task), "--reason", "worried", "--severity", "routine", "--locale", "en",
             db=clinic, now="2026-11-23T16:00+08:00", user="zhang.li").output
    assert en.startswith("Escalation ") and "song.jia, due by" in en


@pytest.mark.parametrize(("args", "user", "said"), [
    (["--reason", "  "], "zhang.li", "上报医生需要写明原因"),
    (["--reason", "x"], "wang.fang", "wang.fang 负责 SH-AES，不负责门店 SH-DENT"),
])
def test_a_bad_open_stores_nothing(cli, clinic: str, args: list[str], user: str, said: str) -> None:  # type: ignore[no-untyped-def]
    task = tid(cli, clinic, "D2", "check_1w")
    result = cli("escalations", "open", str(task), *args, db=clinic, now=NOW, user=user, ok=False)
    assert result.exit_code == 1 and said in result.output and "Traceback" not in result.output
    assert listing(cli, clinic, user="chen.jing") == []


def test_mine_shows_the_doctor_their_patients_with_name_and_phone(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    red_flag(cli, clinic)
    mine = cli("escalations", "list", "--mine", db=clinic, now=NOW, user="chen.zhiyuan").output
    assert "王秀英" in mine and "13812345601" in mine  # the doctor calls the patient back
    assert listing(cli, clinic, "--mine", user="song.jia") == []
    assert [r["patient_id"] for r in listing(cli, clinic, "--mine", user="chen.zhiyuan")] == ["D1"]
    others = cli("escalations", "list", db=clinic, now=NOW, user="zhang.li").output
    assert "13812345601" not in others


def test_only_the_assignee_acknowledges_and_resolves(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    row = red_flag(cli, clinic)
    denied = cli("escalations", "ack", str(row["id"]), db=clinic, now=NOW, user="zhang.li", ok=False)
    assert denied.exit_code == 1 and "zhang.li（coordinator）无权处理上报医生记录" in denied.output  # a doctor's job
    denied = cli("escalations", "resolve", str(row["id"]), "--how", "x", db=clinic, now=NOW, user="song.jia", ok=False)
    assert denied.exit_code == 1
    out = cli("escalations", "ack", str(row["id"]), db=clinic, now="2026-11-23T10:30+08:00", user="chen.zhiyuan").output
    assert out.strip() == f"上报医生 {row['id']} 已由 chen.zhiyuan 确认收到，处理时限 2026-11-23 14:05。"
    [acked] = listing(cli, clinic)
    assert (acked["status"], acked["acknowledged_at"]) == ("acknowledged", "2026-11-23T10:30+08:00")
    cli("escalations", "resolve", str(row["id"]), "--how", "电话随访，已来院止血", db=clinic,
        now="2026-11-23T11:00+08:00", user="chen.zhiyuan")
    [done] = listing(cli, clinic)
    assert (done["status"], done["resolved_at"]) == ("resolved", "2026-11-23T11:00+08:00")


def test_overdue_escalations_are_highlighted_in_lists_and_reports(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    row = red_flag(cli, clinic)
    late = "2026-11-23T15:00+08:00"
    table = cli("escalations", "list", db=clinic, now=late, user="zhang.li").output
    assert "⚠ 逾期" in table
    assert "逾期" not in cli("escalations", "list", db=clinic, now=NOW, user="zhang.li").output
    report = json.loads(cli("report", "week", "--period", "2026-W48", "--site", "SH-DENT", "--format", "json",
                            db=clinic, now=late, user="chen.jing").output)
    assert report["escalations"]["overdue"] == 1
    [listed] = report["lists"]["open_escalations"]
    assert (listed["escalation_id"], listed["assignee"], listed["overdue"]) == (row["id"], "chen.zhiyuan", True)
    assert listed["phone"] == "138****5601"  # a report is not the doctor's call list
    html = tmp_path / "week.html"
    cli("report", "week", "--period", "2026-W48", "--site", "SH-DENT", "--format", "html", "--out", str(html),
        db=clinic, now=late, user="chen.jing")
    page = html.read_text(encoding="utf-8")
    assert "未处理的上报医生 (1)" in page and '<tr class="overdue">' in page.split("未处理的上报医生 (1)")[1]
    out = cli("escalations", "resolve", str(row["id"]), "--how", "seen", "--locale", "en", db=clinic, now=late,
              user="chen.zhiyuan").output
    assert "(after its deadline)" in out
    report = json.loads(cli("report", "week", "--period", "2026-W48", "--site", "SH-DENT", "--format", "json",
                            db=clinic, now=late, user="chen.jing").output)
    assert report["escalations"]["overdue"] == 0


def test_an_on_call_doctor_who_is_not_on_staff_is_a_config_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from conftest import ROOT

    chain_dir = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    site = chain_dir / "sites" / "sh-dent.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("on_call_doctor: song.jia", "on_call_doctor: song.jai"),
                    encoding="utf-8")
    result = cli("config", "check", config=chain_dir / "chain.yaml", ok=False)
    assert result.exit_code != 0 and "sh-dent.yaml" in result.output
    assert "on_call_doctor: 'song.jai' is not a staff member" in result.output
