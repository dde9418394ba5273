"""What follows a call: escalations to the doctor, complaints within 3 days, referrals, extra calls,
do-not-contact, and the audit log that records every step.

Monday 2026-11-23 at SH-DENT (calls 10:00-11:30, 15:30-17:00) and SH-AES.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, seed, write_csv
from clinic_data import task_id as tid

NOW = "2026-11-23T10:05+08:00"



@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """D1 implant Sunday 15:00 (24 h check due Monday), D2 extraction the Monday before (2 calls due),
    A1 hair consultation lead at SH-AES."""
    now = "2026-11-23T08:00+08:00"
    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E4", "A1", "SH-AES", "hair", "consultation", "2026-11-20T16:00", "邓涛"],
    ], now=now)
    return db_url



def reached(cli, url: str, task: int, *answers: str, user: str = "zhang.li", now: str = NOW,  # type: ignore[no-untyped-def]
            note: str | None = None) -> dict:
    args = ["record", str(task), "--outcome", "reached", "--format", "json"]
    for a in answers:
        args += ["--answer", a]
    if note:
        args += ["--note", note]
    return json.loads(cli(*args, db=url, now=now, user=user).output)


def listing(cli, url: str, *args: str, user: str = "zhang.li", now: str = NOW) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli(*args, "--format", "json", db=url, now=now, user=user).output)


# -- escalations --------------------------------------------------------------------------------------


def test_a_red_flag_goes_to_the_attending_doctor(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D1", "check_24h")
    data = reached(cli, clinic, t, "bleeding_stopped=no", "pain_level=4")
    escalations = [a for a in data["actions"] if a["kind"] == "escalate"]
    assert len(escalations) == 1 and escalations[0]["doctor"] == "陈志远"
    rows = listing(cli, clinic, "escalations", "list")
    assert [(r["patient_id"], r["assignee"], r["status"], r["task_id"]) for r in rows] == \
        [("D1", "chen.zhiyuan", "open", t)]  # 陈志远 is on the staff list as chen.zhiyuan
    assert "出血未止住" in rows[0]["reason"]
    assert rows[0]["opened_at"] == "2026-11-23T10:05+08:00"


def test_several_red_flags_in_one_call_are_one_escalation_with_every_reason(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D1", "check_24h")
    reached(cli, clinic, t, "bleeding_stopped=no", "fever=yes")
    rows = listing(cli, clinic, "escalations", "list")
    assert len(rows) == 1
    assert "出血未止住" in rows[0]["reason"] and "发烧" in rows[0]["reason"]


def test_no_red_flag_no_escalation(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D1", "check_24h"), "bleeding_stopped=yes", "fever=no", "pain_level=2")
    assert listing(cli, clinic, "escalations", "list") == []


def test_resolving_an_escalation_says_how_and_by_whom(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D1", "check_24h"), "bleeding_stopped=no")
    [row] = listing(cli, clinic, "escalations", "list", "--status", "open")
    doctor = "chen.zhiyuan"
    empty = cli("escalations", "resolve", str(row["id"]), "--how", "  ", db=clinic, now=NOW, user=doctor, ok=False)
    assert empty.exit_code == 1 and "请说明处理方式（--how）" in empty.output  # the doctor reads Chinese
    out = cli("escalations", "resolve", str(row["id"]), "--how", "Dr Chen saw her at 11:00, sutured", "--locale", "en",
              db=clinic, now="2026-11-23T11:30+08:00", user=doctor).output
    assert f"Escalation {row['id']} resolved by chen.zhiyuan" in out
    [done] = listing(cli, clinic, "escalations", "list", "--status", "resolved")
    assert done["resolved_at"] == "2026-11-23T11:30+08:00"
    from core.db.engine import session_scope
    from core.db.models import Escalation

    with session_scope(clinic) as session:
        stored = session.get(Escalation, row["id"])
        assert (stored.resolved_by, stored.resolution) == ("chen.zhiyuan", "Dr Chen saw her at 11:00, sutured")
    again = cli("escalations", "resolve", str(row["id"]), "--how", "x", db=clinic, now=NOW, user="zhang.li", ok=False)
    assert again.exit_code == 1 and f"上报医生 {row['id']} 已由 chen.zhiyuan 处理过" in again.output
    assert listing(cli, clinic, "escalations", "list", "--status", "open") == []


def test_escalations_of_another_site_are_not_shown_or_resolvable(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D1", "check_24h"), "bleeding_stopped=no")
    assert listing(cli, clinic, "escalations", "list", user="wang.fang") == []
    assert len(listing(cli, clinic, "escalations", "list", user="chen.jing")) == 1
    [row] = listing(cli, clinic, "escalations", "list")
    denied = cli("escalations", "resolve", str(row["id"]), "--how", "x", db=clinic, now=NOW, user="ye.ming", ok=False)
    assert denied.exit_code == 1 and f"上报医生 {row['id']}：ye.ming 负责 SH-AES，不负责门店 SH-DENT" in denied.output


# -- complaints -----------------------------------------------------------------------------------------


def test_dissatisfaction_opens_a_complaint_due_in_three_days_naming_the_staff(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    data = reached(cli, clinic, t, "overall_satisfaction=1", "staff_criticism=前台护士态度不好",
                   note="waited 40 minutes")
    complaints = [a for a in data["actions"] if a["kind"] == "complaint"]
    assert [a["due_at"] for a in complaints] == ["2026-11-26T10:05+08:00"]  # one, due Thursday, clinic time
    [row] = listing(cli, clinic, "complaints", "list")
    assert (row["category"], row["categories"]) == ("staff_or_service", ["staff_or_service", "other"])
    assert row["staff"] == "前台护士"  # who was named; what was said is in the description
    assert row["status"] == "open" and row["overdue"] is False
    assert row["due_at"] == "2026-11-26T10:05+08:00"
    assert "前台护士态度不好" in row["description"] and "waited 40 minutes" in row["description"]


def test_an_explicit_complaint_and_dissatisfaction_are_one_complaint(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D2", "check_1w"), "overall_satisfaction=2", "complaint=yes")
    rows = listing(cli, clinic, "complaints", "list")
    assert len(rows) == 1 and rows[0]["category"] == "other"


def test_a_satisfied_patient_gets_a_referral_invitation_and_no_complaint(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    data = reached(cli, clinic, tid(cli, clinic, "D2", "check_1w"), "overall_satisfaction=5", "recommend=10")
    kinds = [a["kind"] for a in data["actions"]]
    assert kinds.count("referral") == 1
    assert "complaint" not in kinds
    assert listing(cli, clinic, "complaints", "list") == []


def test_complaint_life_cycle_and_overdue_highlight(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D2", "check_1w"), "complaint=yes")
    [row] = listing(cli, clinic, "complaints", "list")
    cid = str(row["id"])
    early = cli("complaints", "close", cid, db=clinic, now=NOW, user="chen.jing", ok=False)
    assert early.exit_code == 1 and f"投诉 {cid} 尚未答复：请先答复" in early.output
    # Thursday 10:06: past the 3-day deadline without a response
    late = "2026-11-26T10:06+08:00"
    [overdue] = listing(cli, clinic, "complaints", "list", now=late)
    assert overdue["overdue"] is True
    table = cli("complaints", "list", db=clinic, now=late, user="zhang.li").output
    assert "逾期" in table and "待答复" in table  # the chain's language: zh_CN
    assert "OVERDUE" in cli("complaints", "--locale", "en", db=clinic, now=late, user="zhang.li").output
    out = cli("complaints", "respond", cid, "--text", "Called back, apologised, free review booked",
              db=clinic, now=late, user="chen.jing").output
    assert f"投诉 {cid} 已答复（超过 3 天期限）" in out
    shown = json.loads(cli("complaints", "show", cid, "--format", "json", db=clinic, now=late).output)
    assert shown["status"] == "responded" and shown["overdue"] is False
    assert shown["response"] == "Called back, apologised, free review booked"
    cli("complaints", "close", cid, "--note", "patient satisfied", db=clinic, now=late, user="chen.jing")
    assert listing(cli, clinic, "complaints", "list", "--status", "closed", now=late)[0]["id"] == row["id"]
    again = cli("complaints", "close", cid, db=clinic, now=late, user="chen.jing", ok=False)
    assert again.exit_code == 1 and f"投诉 {cid} 已经结案" in again.output


def test_complaint_answered_in_time(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D2", "check_1w"), "complaint=yes")
    [row] = listing(cli, clinic, "complaints", "list")
    out = cli("complaints", "respond", str(row["id"]), "--text", "explained the fee", "--locale", "en", db=clinic,
              now="2026-11-24T09:00+08:00", user="zhang.li").output
    assert "on time" in out


def test_complaints_of_another_site_are_not_shown(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    reached(cli, clinic, tid(cli, clinic, "D2", "check_1w"), "complaint=yes")
    assert listing(cli, clinic, "complaints", "list", user="wang.fang") == []
    [row] = listing(cli, clinic, "complaints", "list")
    for args in (("show", str(row["id"])), ("respond", str(row["id"]), "--text", "x")):
        denied = cli("complaints", *args, db=clinic, now=NOW, user="wang.fang", ok=False)
        assert denied.exit_code == 1


# -- extra calls ---------------------------------------------------------------------------------------


def test_a_requested_extra_call_becomes_a_task(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    lead = tid(cli, clinic, "A1", "lead_care")
    data = reached(cli, clinic, lead, "interested_in_booking=yes", user="wang.fang", now="2026-11-23T09:30+08:00")
    [extra] = [a for a in data["actions"] if a["kind"] == "extra_call"]
    tasks = {t["id"]: t for t in json.loads(cli("tasks", "--patient", "A1", "--format", "json", db=clinic).output)}
    new = tasks[extra["task_id"]]
    assert (new["purpose"], new["status"], new["site"]) == ("extra_call", "open", "SH-AES")
    assert new["due_at"] == "2026-11-25T09:30+08:00"  # two days later, in a calling window
    sheet = cli("script", str(new["id"]), "--locale", "en", db=clinic, now="2026-11-25T09:30+08:00",
                user="wang.fang").output
    assert "Earlier attempts" in sheet


def test_an_extra_call_in_an_unpublished_year_stays_put_on_replan(cli, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """An extra call is measured from the call that asked for it, not from the treatment."""
    now = "2026-12-10T10:05+08:00"
    cli("import", str(write_csv(tmp_path / "p.csv", PATIENT_HEADER, [
        ["D8", "黄磊", "M", "1982-07-19", "18912345608", "SH-DENT"]])), db=db_url, now=now)
    cli("import", str(write_csv(tmp_path / "e.csv", EPISODE_HEADER, [
        ["E8", "D8", "SH-DENT", "dental", "extraction_needs_prosthesis", "2026-10-12T15:00", "陈志远"]])),
        db=db_url, now=now)
    cli("schedule", db=db_url, now=now)
    invitation = tid(cli, db_url, "D8", "invitation_2mo")
    data = reached(cli, db_url, invitation, "replacement_interest=undecided", now=now)
    [extra] = [a for a in data["actions"] if a["kind"] == "extra_call"]

    def extra_task() -> dict:
        return next(t for t in json.loads(cli("tasks", "--patient", "D8", "--format", "json", db=db_url).output)
                    if t["id"] == extra["task_id"])

    before = extra_task()
    assert before["due_at"].startswith("2027-01-1")  # a month after the call, not a month after the extraction
    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(db_url) as session:
        assert session.get(Task, extra["task_id"]).provisional is True  # 2027 holidays are not published yet
    cli("schedule", "--replan", db=db_url, now=now)
    assert extra_task()["due_at"] == before["due_at"]


# -- do not contact -------------------------------------------------------------------------------------


def test_do_not_contact_suppresses_every_open_task_and_is_undoable(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    cli("claim", "--count", "5", db=clinic, now=NOW, user="zhang.li")
    out = cli("patients", "dnc", "D2", "--reason", "patient asked: no more calls", db=clinic, now=NOW,
              user="admin").output
    assert "患者 D2：已设为勿扰，2 个待回访任务已屏蔽" in out
    tasks = json.loads(cli("tasks", "--patient", "D2", "--format", "json", db=clinic).output)
    assert {t["status"] for t in tasks} == {"suppressed"}
    assert "D2" not in [ln["patient_id"] for ln in listing(cli, clinic, "worklist", user="chen.jing")]  # manager
    assert "D2" not in [ln["patient_id"] for ln in listing(cli, clinic, "worklist", "--mine")]
    claimed = json.loads(cli("claim", "--format", "json", "--count", "9", db=clinic, now="2026-11-23T11:00+08:00",
                             user="zhang.li").output)["claimed"]
    assert not set(claimed) & {t["id"] for t in tasks}
    blocked = cli("record", str(tasks[0]["id"]), "--outcome", "reached", db=clinic, now=NOW, user="zhang.li", ok=False)
    assert blocked.exit_code == 1 and "已屏蔽（勿扰）" in blocked.output
    twice = cli("patients", "dnc", "D2", db=clinic, now=NOW, user="admin", ok=False)
    assert twice.exit_code == 1 and "患者 D2 已经设为勿扰" in twice.output

    out = cli("patients", "dnc", "D2", "--undo", "--locale", "en", db=clinic, now="2026-11-24T10:00+08:00",
              user="admin").output
    # Only the tasks whose window is still open come back; one whose moment passed stays suppressed.
    assert "1 task(s) reopened" in out
    tasks = json.loads(cli("tasks", "--patient", "D2", "--format", "json", db=clinic).output)
    undo = datetime.fromisoformat("2026-11-24T10:00+08:00")
    assert {(t["status"], datetime.fromisoformat(t["window_end"]) >= undo) for t in tasks} == {
        ("open", True), ("suppressed", False)}
    assert "D2" in [ln["patient_id"] for ln in listing(cli, clinic, "worklist", now="2026-11-24T10:00+08:00")]


def test_dnc_leaves_finished_tasks_alone(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    done = tid(cli, clinic, "D2", "check_1w")
    reached(cli, clinic, done, "pain_level=1")
    assert "1 open task(s) suppressed" in cli("patients", "dnc", "D2", "--locale", "en", db=clinic, now=NOW,
                                              user="admin").output
    cli("patients", "dnc", "D2", "--undo", db=clinic, now=NOW, user="admin")
    statuses = {t["milestone"]: t["status"]
                for t in json.loads(cli("tasks", "--patient", "D2", "--format", "json", db=clinic).output)}
    # check_2h was already overdue (its window closed): lifting the flag does not bring it back.
    assert statuses == {"check_2h": "suppressed", "check_1w": "completed"}


def test_only_an_admin_changes_do_not_contact(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    for user, role in (("zhang.li", "coordinator"), ("wang.fang", "coordinator"), ("chen.jing", "manager"),
                       ("chen.zhiyuan", "doctor")):
        denied = cli("patients", "dnc", "D2", db=clinic, now=NOW, user=user, ok=False)
        assert denied.exit_code == 1 and f"错误：{user}（{role}）无权设置勿扰" in denied.output
    assert "D2" in [t["patient_id"] for t in listing(cli, clinic, "tasks", "--status", "open", user="admin")]
    unknown = cli("patients", "dnc", "NOPE", "--locale", "en", db=clinic, now=NOW, user="admin", ok=False)
    assert unknown.exit_code == 1 and "no patient 'NOPE'" in unknown.output


# -- the audit log --------------------------------------------------------------------------------------


def test_every_step_is_in_the_audit_log_with_user_and_time(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D1", "check_24h")
    cli("claim", "--count", "5", "--format", "json", db=clinic, now="2026-11-23T10:00+08:00", user="zhang.li")
    reached(cli, clinic, t, "bleeding_stopped=no", "overall_satisfaction=1")
    [esc] = listing(cli, clinic, "escalations", "list")
    cli("escalations", "resolve", str(esc["id"]), "--how", "seen", db=clinic, now="2026-11-23T11:00+08:00",
        user="chen.zhiyuan")
    [comp] = listing(cli, clinic, "complaints", "list")
    cli("complaints", "respond", str(comp["id"]), "--text", "sorry", db=clinic, now="2026-11-23T12:00+08:00",
        user="chen.jing")
    cli("complaints", "close", str(comp["id"]), db=clinic, now="2026-11-23T12:05+08:00", user="chen.jing")
    cli("patients", "dnc", "D1", "--reason", "moved abroad", db=clinic, now="2026-11-23T13:00+08:00", user="admin")
    cli("patients", "dnc", "D1", "--undo", db=clinic, now="2026-11-23T13:05+08:00", user="admin")

    entries = json.loads(cli("audit", "--patient", "D1", "--format", "json", db=clinic, now=NOW).output)
    trail = [(e["at"], e["user"], e["action"]) for e in reversed(entries)]
    assert ("2026-11-23T10:00:00+08:00", "zhang.li", "claim") in trail
    assert ("2026-11-23T10:05:00+08:00", "zhang.li", "attempt") in trail
    assert ("2026-11-23T10:05:00+08:00", "zhang.li", "action:escalate") in trail
    assert ("2026-11-23T10:05:00+08:00", "zhang.li", "action:complaint") in trail
    assert ("2026-11-23T11:00:00+08:00", "chen.zhiyuan", "escalation:resolve") in trail
    assert ("2026-11-23T12:00:00+08:00", "chen.jing", "complaint:respond") in trail
    assert ("2026-11-23T12:05:00+08:00", "chen.jing", "complaint:close") in trail
    assert ("2026-11-23T13:00:00+08:00", "admin", "dnc:on") in trail
    assert ("2026-11-23T13:05:00+08:00", "admin", "dnc:off") in trail
    attempt = next(e for e in entries if e["action"] == "attempt")
    assert attempt["detail"]["outcome"] == "reached"
    assert sorted(attempt["detail"]["answers"]) == ["bleeding_stopped", "overall_satisfaction"]
    # never the patient's name or phone
    raw = cli("audit", "--format", "json", db=clinic, now=NOW).output
    assert "王秀英" not in raw and "13812345601" not in raw
    # other patients' entries are not in D1's history
    assert all(e["entity_id"] != tid(cli, clinic, "D2", "check_1w") or e["entity"] != "task" for e in entries)
