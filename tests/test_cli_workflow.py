"""A coordinator's morning through the CLI: claim, read the card and script, call, record; Ctrl-C.

Monday 2026-11-23. SH-DENT (zhang.li) calls 10:00-11:30 and 15:30-17:00;
BJ-HOSP (liu.min) 09:00-11:30 and 14:30-17:30.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clinic_data import seed

NOW = "2026-11-23T10:05+08:00"
EPISODE_HEADER = ["episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at", "doctor",
                  "department", "diagnosis"]
# check_24h after an implant asks these, then core's general questions, in this order
IMPLANT_QUESTIONS = ["pain_level", "bleeding_stopped", "swelling", "numbness", "fever", "taking_medication",
                     "overall_satisfaction", "recommend", "staff_praise", "staff_criticism", "complaint", "suggestions"]



@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """D1 implant Sunday 15:00 (clinical 24 h check due Monday 11:00); D3 scaling Sunday 10:00 (routine,
    Monday 10:00); H1 discharged from BJ-HOSP cardiology on Tuesday 17th at 07:30 (call day 6)."""
    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D3", "张伟", "M", "1978-01-22", "13712345603", "SH-DENT"],
        ["H1", "刘建国", "M", "1948-03-02", "13612345699", "BJ-HOSP"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远", "种植科", "下颌后牙缺失"],
        ["E3", "D3", "SH-DENT", "dental", "scaling", "2026-11-22T10:00", "林雪", "牙周科", "牙龈炎"],
        ["H1E", "H1", "BJ-HOSP", "inpatient", "discharge", "2026-11-17T07:30", "王建华", "心内科", "冠心病"],
    ], episode_header=EPISODE_HEADER)
    return db_url


def tid(cli, url: str, patient: str) -> int:  # type: ignore[no-untyped-def]
    """The patient's first open call (tasks are listed by due time; an implant also has later reviews)."""
    return next(t["id"] for t in json.loads(cli("tasks", "--patient", patient, "--format", "json", db=url).output)
                if t["status"] == "open")


def answers_input(**given: str) -> str:
    """One line per implant question, Enter for the ones not given."""
    return "".join(given.get(q, "") + "\n" for q in IMPLANT_QUESTIONS)


def db_state(url: str, task_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Answer, Attempt, Task

    with session_scope(url) as session:
        task = session.get(Task, task_id)
        attempts = list(session.execute(select(Attempt).where(Attempt.task_id == task_id)).scalars())
        rows = session.execute(select(Answer).where(Answer.task_id == task_id)).scalars()
        answers = {a.question: a.value for a in rows}
        return task, attempts, answers


def claim(cli, url: str, user: str = "zhang.li", count: int = 5,  # type: ignore[no-untyped-def]
          now: str = "2026-11-23T10:00+08:00") -> list[int]:
    result = cli("claim", "--count", str(count), "--format", "json", db=url, now=now, user=user)
    return json.loads(result.output)["claimed"]


# -- the card and the script -----------------------------------------------------------------------


def test_the_preparation_card_shows_what_to_know_before_dialing(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    from core.db.engine import session_scope
    from core.db.models import Episode

    with session_scope(clinic) as session:  # discharge medication comes from the HIS as an episode attribute
        episode = session.query(Episode).filter_by(external_id="H1E").one()
        episode.attributes = {"discharge_medication": "阿司匹林 100mg qd; 阿托伐他汀 20mg qn"}
    t = tid(cli, clinic, "H1")
    cli("record", str(t), "--outcome", "no_answer", "--note", "no voicemail", db=clinic,
        now="2026-11-23T09:10+08:00", user="liu.min")
    sheet = cli("script", str(t), "--locale", "en", db=clinic, now="2026-11-23T14:30+08:00", user="liu.min").output
    card = dict(line.split(" : ", 1) for line in sheet.split("─" * 60)[1].strip().splitlines())
    card = {k.strip(): v for k, v in card.items()}
    assert card["Patient"] == "刘建国 (H1)"
    assert card["Age"] == "78" and card["Gender"] == "male"
    assert card["Procedure"].endswith("· 2026-11-17")  # the discharge day in Beijing, not the UTC date (16th)
    assert (card["Doctor"], card["Department"], card["Diagnosis"]) == ("王建华", "心内科", "冠心病")
    assert card["Discharge medication"] == "阿司匹林 100mg qd; 阿托伐他汀 20mg qn"
    assert card["Earlier attempts"] == "2026-11-23 09:10 no_answer (liu.min): no voicemail"
    assert "We called you earlier but nobody answered" in sheet  # the no answer, as it happened
    zh = cli("script", str(t), db=clinic, now="2026-11-23T14:30+08:00", user="liu.min").output
    assert "出院带药" in zh and "刘" in zh
    assert "2026-11-23 09:10 无人接听 (liu.min): no voicemail" in zh  # the outcome in the card's language


def test_the_card_warns_of_a_number_flagged_wrong_in_both_languages(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D3")
    cli("record", str(t), "--outcome", "wrong_number", db=clinic, now=NOW, user="zhang.li")
    en = cli("script", str(t), "--locale", "en", db=clinic, now=NOW, user="zhang.li").output
    assert "137****5603 ⚠ flagged wrong: correct it before calling" in en
    zh = cli("script", str(t), "--locale", "zh_CN", db=clinic, now=NOW, user="zhang.li").output
    assert "137****5603 ⚠ 号码已标记为错误：请先更正再拨打" in zh


def test_script_of_another_site_is_refused(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("script", str(tid(cli, clinic, "H1")), db=clinic, now=NOW, user="zhang.li", ok=False)
    assert result.exit_code == 1 and "错误：zhang.li 负责 SH-DENT，不负责门店 BJ-HOSP" in result.output  # her language
    assert "刘建国" not in result.output


# -- the interactive call ----------------------------------------------------------------------------


def test_a_reached_call_with_a_red_flag_ends_in_an_escalation(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d1 = tid(cli, clinic, "D1")
    assert d1 in claim(cli, clinic, count=1)  # clinical first
    typed = "reached\n" + answers_input(pain_level="3", bleeding_stopped="5\nno", taking_medication="yes",
                                        overall_satisfaction="4") + "still oozing a little\n"
    result = cli("call", "--locale", "en", db=clinic, now=NOW, user="zhang.li", input=typed)
    out = result.output
    assert "王秀英 (D1)" in out and "Dental implant surgery" in out  # the card
    assert "[Questions]" in out  # the script
    assert "Has the bleeding from the wound stopped?" in out and "[yes/no]" in out  # question with its allowed answers
    assert "bleeding_stopped: answer yes or no, got '5'" in out  # asked again, not stored
    assert f"Task {d1}: reached → completed" in out
    assert "→ escalate:" in out and "→ referral:" in out  # what happens next
    assert "Done: 1 call(s) recorded." in out

    task, attempts, answers = db_state(clinic, d1)
    assert task.status == "completed"
    assert [(a.by, a.outcome, a.note) for a in attempts] == [("zhang.li", "reached", "still oozing a little")]
    assert answers == {"pain_level": 3, "bleeding_stopped": False, "taking_medication": True, "overall_satisfaction": 4}
    listed = cli("escalations", "list", "--format", "json", db=clinic, now=NOW, user="zhang.li")
    [escalation] = json.loads(listed.output)
    assert (escalation["patient_id"], escalation["assignee"], escalation["status"]) == ("D1", "chen.zhiyuan", "open")


def test_ctrl_c_mid_session_keeps_what_was_recorded(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d1, d3 = tid(cli, clinic, "D1"), tid(cli, clinic, "D3")
    assert set(claim(cli, clinic)) == {d1, d3}
    # D1 (clinical, first): no answer. D3: reached, one answer typed... then the input stops (Ctrl-C).
    typed = "no_answer\n" + "reached\n" + "yes\n"
    result = cli("call", "--locale", "en", db=clinic, now=NOW, user="zhang.li", input=typed)
    assert result.exit_code == 0
    assert "Stopped. 1 call(s) recorded" in result.output

    task, attempts, _ = db_state(clinic, d1)
    assert [a.outcome for a in attempts] == ["no_answer"]
    assert (task.status, task.failed_attempts) == ("open", 1)
    task, attempts, answers = db_state(clinic, d3)
    assert (task.status, task.attempts, attempts, answers) == ("open", 0, [], {})  # nothing half-written
    mine = json.loads(cli("worklist", "--mine", "--format", "json", db=clinic, now="2026-11-23T10:10+08:00",
                          user="zhang.li").output)
    assert [ln["patient_id"] for ln in mine] == ["D3"]  # still held for her until the hold expires


def test_an_outcome_that_does_not_fit_asks_again_instead_of_looping(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d1 = tid(cli, clinic, "D1")
    claim(cli, clinic, count=1)
    typed = "booked\n" + "\n" + answers_input() + "\n" + "skip\n"  # no appointment time, the answers, no note
    result = cli("call", "--locale", "en", db=clinic, now=NOW, user="zhang.li", input=typed)
    assert f"Task {d1} not saved: check_24h (check_in) does not invite the patient back" in result.output
    assert "Done: 0 call(s) recorded." in result.output
    task, attempts, _ = db_state(clinic, d1)
    assert (task.status, attempts) == ("open", [])


def test_a_callback_time_is_asked_again_until_it_is_valid(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d1 = tid(cli, clinic, "D1")
    claim(cli, clinic, count=1)
    typed = ("callback_requested\n" + "soon\n" + "2026-11-23T08:00\n" + "tomorrow 3pm\n" + "n\n"
             + "16:00\n" + "y\n" + "\n")
    result = cli("call", "--locale", "en", db=clinic, now=NOW, user="zhang.li", input=typed)
    assert "is not a time I understand" in result.output and "is not in the future" in result.output
    # the time as understood, read back before it is saved; "n" asks again
    assert "Call back at: Tue 2026-11-24 15:00  Is that right?" in result.output
    assert "Call back at: Mon 2026-11-23 16:00" in result.output
    assert "next attempt: 2026-11-23T16:00+08:00" in result.output
    task, attempts, _ = db_state(clinic, d1)
    assert [a.outcome for a in attempts] == ["callback_requested"] and task.failed_attempts == 0


def test_call_works_only_through_my_own_claims(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    nothing = cli("call", db=clinic, now=NOW, user="zhang.li")  # prompts in her language: the chain's, zh_CN
    assert "您手上没有回访任务。请先领取：followup claim" in nothing.output
    assert "You hold no calls. Claim some first" in cli("call", "--locale", "en", db=clinic, now=NOW,
                                                          user="zhang.li").output
    taken = cli("claim", "--count", "1", db=clinic, now=NOW, user="admin").output  # a colleague takes a call
    assert taken.startswith("已领取 1 个回访任务")
    claim(cli, clinic, user="admin")  # ...and the rest of SH-DENT's
    assert "没有可领取的回访" in cli("claim", db=clinic, now=NOW, user="zhang.li").output
    assert "您手上没有回访任务" in cli("call", db=clinic, now=NOW, user="zhang.li").output
    denied = cli("call", "--site", "BJ-HOSP", db=clinic, now=NOW, user="zhang.li", ok=False)
    assert denied.exit_code == 1 and "不负责门店 BJ-HOSP" in denied.output


def test_record_json_returns_the_task_and_the_actions(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d1 = tid(cli, clinic, "D1")
    data = json.loads(cli("record", str(d1), "--outcome", "reached", "--answer", "fever=yes", "--format", "json",
                          db=clinic, now=NOW, user="zhang.li").output)
    assert set(data) == {"task", "outcome", "attempt_id", "counted", "previous_failed_at", "min_gap", "actions"}
    assert set(data["task"]) == {"id", "status", "attempts", "failed_attempts", "attempts_logged", "max_attempts",
                                 "next_attempt_at", "overdue", "milestone", "site"}
    assert (data["counted"], data["previous_failed_at"], data["min_gap"]) == (True, None, "2h")
    assert data["task"]["status"] == "completed" and data["outcome"] == "reached"
    assert [a["kind"] for a in data["actions"]] == ["escalate"]
    assert data["actions"][0]["doctor"] == "陈志远"


def test_one_call_covers_every_task_a_patient_has_that_day(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """Two due tasks of one patient are one call: one outcome, the shared questions asked once."""
    d1 = tid(cli, clinic, "D1")
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Task
    from core.db.uow import outside

    with session_scope(clinic) as session:  # give D1 a second due task: an extra call requested earlier
        task = session.get(Task, d1)
        twin = Task(**{c.name: getattr(task, c.name) for c in Task.__table__.columns if c.name != "id"})
        twin.milestone = "extra_1"
        twin.purpose = "extra_call"
        with outside(session):  # a state built by hand
            session.add(twin)
        twin_id = twin.id
    claim(cli, clinic, count=1)
    result = cli("call", "--locale", "en", db=clinic, now=NOW, user="zhang.li", input="no_answer\n")
    assert f"The same call also covers task {twin_id}" in result.output
    assert result.output.count("Outcome (") == 1  # asked once for both
    with session_scope(clinic) as session:
        rows = session.execute(select(Task.id, Task.failed_attempts).where(Task.id.in_([d1, twin_id]))).all()
    assert sorted(f for _, f in rows) == [1, 1]
