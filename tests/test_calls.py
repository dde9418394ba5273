"""Recording calls: every outcome path, retries in another calling window, the attempt ceiling.

Calendar facts used (chinesecalendar, 2026 published): 2026-11-23 is a Monday;
2026-11-28/29 is a weekend; 2026-10-01..07 is the National Day holiday;
Saturday 2026-10-10 is a make-up working day (调休); SH-DENT is closed on
2026-12-31 (stock-taking) and 2027-01-01 is New Year's Day. SH-DENT calls
10:00-11:30 and 15:30-17:00; SH-AES and BJ-HOSP 09:00-11:30 and 14:30-17:30.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clinic_data import seed
from clinic_data import task_id as tid
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[1]
FAILED = ("no_answer", "busy", "powered_off", "out_of_service", "cannot_connect", "not_convenient")


@cache
def chain():  # type: ignore[no-untyped-def]
    from core.config import load_config

    return load_config(ROOT / "config" / "chain.yaml")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH) if "+" not in text else datetime.fromisoformat(text)



@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """D2: extraction on Monday 2026-11-16 10:00 at SH-DENT, its 1-week check due Monday 2026-11-23 10:00
    (window Sunday 22nd 10:00 to Wednesday 25th 10:00). A1: a hair consultation lead at SH-AES (ceiling 7)."""
    now = "2026-11-23T08:00+08:00"
    seed(cli, tmp_path, db_url, [
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"],
    ], [
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E4", "A1", "SH-AES", "hair", "consultation", "2026-11-20T16:00", "邓涛"],
    ], now=now)
    return db_url



def record(cli, url: str, task: int, outcome: str, now: str, *extra: str, user: str = "zhang.li",  # type: ignore[no-untyped-def]
           ok: bool = True):
    """``followup record --format json``; its errors in English (--locale en)."""
    result = cli("record", str(task), "--outcome", outcome, "--format", "json", "--locale", "en", *extra, db=url,
                 now=now, user=user, ok=ok)
    return json.loads(result.output) if ok else result


def stored(url: str, task_id: int):  # type: ignore[no-untyped-def]
    """The task, its attempts and answers as the database holds them."""
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Answer, Attempt, AuditEntry, Patient, Task

    with session_scope(url) as session:
        task = session.get(Task, task_id)
        attempts = session.execute(
            select(Attempt).where(Attempt.task_id == task_id).order_by(Attempt.id)).scalars().all()
        answers = session.execute(select(Answer).where(Answer.task_id == task_id)).scalars().all()
        audits = session.execute(select(AuditEntry).where(AuditEntry.entity == "task", AuditEntry.entity_id == task_id,
                                                          AuditEntry.action == "attempt")).scalars().all()
        patient = session.get(Patient, task.patient_id)
        return task, list(attempts), list(answers), list(audits), patient


# -- failed attempts, retries and the ceiling ----------------------------------------------------


def test_three_failed_attempts_make_the_follow_up_unsuccessful(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    first = record(cli, clinic, t, "no_answer", "2026-11-23T10:05+08:00", "--note", "rang 10 times")
    assert (first["task"]["status"], first["task"]["failed_attempts"], first["task"]["max_attempts"]) == ("open", 1, 3)
    # morning failed -> the afternoon window, at least 2 h later
    assert first["task"]["next_attempt_at"] == "2026-11-23T15:30+08:00"
    assert first["task"]["overdue"] is False

    second = record(cli, clinic, t, "busy", "2026-11-23T15:35+08:00")
    # afternoon failed -> the next morning (Tuesday), still inside the window (ends Wednesday 10:00)
    assert second["task"]["next_attempt_at"] == "2026-11-24T10:00+08:00"
    assert second["task"]["failed_attempts"] == 2 and second["task"]["overdue"] is False

    third = record(cli, clinic, t, "powered_off", "2026-11-24T10:02+08:00")
    assert third["task"]["status"] == "unsuccessful"
    assert third["task"]["failed_attempts"] == 3 and third["task"]["next_attempt_at"] is None

    task, attempts, _, audits, _ = stored(clinic, t)
    assert [(a.by, a.outcome) for a in attempts] == [("zhang.li", "no_answer"), ("zhang.li", "busy"),
                                                       ("zhang.li", "powered_off")]
    assert attempts[0].note == "rang 10 times"
    assert attempts[0].at == at("2026-11-23T10:05")
    assert len(audits) == 3
    # done: no fourth attempt, and off the worklist
    again = record(cli, clinic, t, "no_answer", "2026-11-24T15:30+08:00", ok=False)
    assert again.exit_code == 1 and "is unsuccessful, not open" in again.output
    assert stored(clinic, t)[0].attempts == 3
    worklist = json.loads(cli("worklist", "--format", "json", "--date", "2026-11-24", db=clinic,
                              now="2026-11-24T15:30+08:00", user="zhang.li").output)
    assert all(t not in line["task_ids"] for line in worklist)


@pytest.mark.parametrize("outcome", FAILED)
def test_every_unreachable_outcome_counts_as_a_failed_attempt(cli, clinic: str, outcome: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    data = record(cli, clinic, t, outcome, "2026-11-23T10:05+08:00")
    assert data["outcome"] == outcome
    assert (data["task"]["status"], data["task"]["attempts"], data["task"]["failed_attempts"]) == ("open", 1, 1)
    assert data["task"]["next_attempt_at"] == "2026-11-23T15:30+08:00"


def test_hair_leads_are_tried_seven_times_before_giving_up(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "A1", "lead_care")
    now = "2026-11-23T09:05+08:00"
    for n in range(1, 8):
        data = record(cli, clinic, t, "no_answer", now, user="wang.fang")
        assert data["task"]["max_attempts"] == 7
        assert data["task"]["failed_attempts"] == n
        if n < 7:
            assert data["task"]["status"] == "open"
            now = data["task"]["next_attempt_at"]
    assert data["task"]["status"] == "unsuccessful"


def test_a_failure_past_the_window_stays_open_and_overdue(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")  # window ends with Wednesday 25th (a window in days ends with the day)
    data = record(cli, clinic, t, "no_answer", "2026-11-25T16:20+08:00")
    assert data["task"]["status"] == "open"
    assert data["task"]["next_attempt_at"] == "2026-11-26T10:00+08:00"
    assert data["task"]["overdue"] is True
    lines = json.loads(cli("worklist", "--format", "json", db=clinic, now="2026-11-26T10:00+08:00",
                           user="zhang.li").output)
    line = next(ln for ln in lines if t in ln["task_ids"])
    assert line["overdue"] is True and line["attempts"] == 1


def test_a_friday_afternoon_failure_is_retried_on_monday_morning(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    data = record(cli, clinic, t, "cannot_connect", "2026-11-27T16:00+08:00")
    assert data["task"]["next_attempt_at"] == "2026-11-30T10:00+08:00"


def test_the_next_script_knows_how_many_attempts_failed(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    record(cli, clinic, t, "no_answer", "2026-11-23T10:05+08:00", "--note", "voicemail full")
    record(cli, clinic, t, "busy", "2026-11-23T15:35+08:00")
    sheet = cli("script", str(t), "--locale", "en", db=clinic, now="2026-11-24T10:00+08:00", user="zhang.li").output
    assert "We have tried you 2 times before (no answer ×1, busy ×1)" in sheet
    # the card lists the earlier attempts in clinic time, with who and what happened
    assert "2026-11-23 10:05 no_answer (zhang.li): voicemail full" in sheet
    assert "2026-11-23 15:35 busy (zhang.li)" in sheet
    zh = cli("script", str(t), db=clinic, now="2026-11-24T10:00+08:00", user="zhang.li").output
    assert "之前给您打过2次电话（1次没有人接，1次占线）" in zh


# -- the other outcomes -----------------------------------------------------------------------------


def test_wrong_number_flags_the_phone_and_ends_the_task(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    data = record(cli, clinic, t, "wrong_number", "2026-11-23T10:05+08:00", "--note", "a restaurant answered")
    assert data["task"]["status"] == "wrong_number"
    assert data["task"]["failed_attempts"] == 0
    assert [a["kind"] for a in data["actions"]] == ["fix_phone"]
    task, attempts, _, _, patient = stored(clinic, t)
    assert patient.phone_invalid is True
    assert attempts[0].note == "a restaurant answered"


def test_refusal_ends_the_task_without_counting_as_unreachable(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "A1", "lead_care")
    now = "2026-11-23T09:05+08:00"
    for _ in range(2):
        now = record(cli, clinic, t, "no_answer", now, user="wang.fang")["task"]["next_attempt_at"]
    data = record(cli, clinic, t, "refused", now, "--note", "not interested", user="wang.fang")
    assert data["task"]["status"] == "refused"
    assert data["task"]["failed_attempts"] == 2  # the refusal is not a third failure
    assert data["task"]["next_attempt_at"] is None


def test_a_callback_at_the_requested_time_is_not_a_failure(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    data = record(cli, clinic, t, "callback_requested", "2026-11-23T10:05+08:00", "--callback-at", "2026-11-23T12:15")
    assert data["task"]["status"] == "open"
    assert data["task"]["failed_attempts"] == 0 and data["task"]["attempts"] == 1
    assert data["task"]["next_attempt_at"] == "2026-11-23T12:15+08:00"  # the patient's time, lunch or not
    assert stored(clinic, t)[1][0].callback_at == at("2026-11-23T12:15")


@pytest.mark.parametrize(("extra", "message"), [
    ((), "needs --callback-at"),
    (("--callback-at", "2026-11-23T09:00"), "is not in the future"),
    (("--callback-at", "2026-11-23T22:30"), "quiet hours"),
    (("--callback-at", "sometime"), "is not a time I understand"),
    (("--callback-at", "今天上午9点"), "is not in the future"),
])
def test_a_bad_callback_time_is_refused_and_nothing_is_stored(cli, clinic: str, extra: tuple, message: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, t, "callback_requested", "2026-11-23T10:05+08:00", *extra, ok=False)
    assert result.exit_code == 1 and message in result.output
    task, attempts, _, audits, _ = stored(clinic, t)
    assert (task.attempts, attempts, audits) == (0, [], [])


def test_callback_time_only_goes_with_a_callback(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, t, "no_answer", "2026-11-23T10:05+08:00", "--callback-at", "2026-11-23T16:00",
                    ok=False)
    assert result.exit_code == 1 and "only goes with outcome callback_requested" in result.output


def test_booked_is_for_sales_follow_ups_and_calls_that_invite_the_patient_back(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    lead = tid(cli, clinic, "A1", "lead_care")
    data = record(cli, clinic, lead, "booked", "2026-11-23T09:05+08:00", "--answer", "interested_in_booking=yes",
                  user="wang.fang")
    assert data["task"]["status"] == "booked"
    dental = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, dental, "booked", "2026-11-23T10:05+08:00", ok=False)
    assert result.exit_code == 1 and "does not invite the patient back" in result.output
    assert stored(clinic, dental)[0].attempts == 0


def test_reached_completes_the_task_and_stores_the_answers(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    data = record(cli, clinic, t, "reached", "2026-11-23T10:05+08:00", "--answer", "pain_level=2",
                  "--answer", "swelling=mild", "--answer", "fever=no", "--answer", "overall_satisfaction=4",
                  "--note", "healing well")
    assert data["task"]["status"] == "completed" and data["task"]["next_attempt_at"] is None
    _, attempts, answers, _, _ = stored(clinic, t)
    assert {a.question: a.value for a in answers} == {"pain_level": 2, "swelling": "mild", "fever": False,
                                                      "overall_satisfaction": 4}
    assert attempts[0].note == "healing well" and attempts[0].outcome == "reached"


# -- answers are validated before anything is stored -------------------------------------------------


@pytest.mark.parametrize(("answer", "message"), [
    ("fever=5", "fever: answer yes or no, got '5'"),
    ("pain_level=11", "pain_level: expected 0–10, got 11"),
    ("pain_level=a lot", "pain_level: expected a whole number"),
    ("swelling=huge", "swelling: expected one of none, mild, severe"),
    ("favourite_colour=blue", "unknown question 'favourite_colour'"),
])
def test_an_invalid_answer_is_a_clear_error_and_nothing_is_stored(cli, clinic: str, answer: str, message: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    other = "swelling=none" if answer.startswith("pain_level") else "pain_level=3"  # a valid answer beside it
    result = record(cli, clinic, t, "reached", "2026-11-23T10:05+08:00", "--answer", other,
                    "--answer", answer, ok=False)
    assert result.exit_code == 1
    assert message in result.output
    task, attempts, answers, audits, _ = stored(clinic, t)
    assert (task.status, task.attempts, attempts, answers, audits) == ("open", 0, [], [], [])


def test_answers_need_a_reached_patient(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, t, "no_answer", "2026-11-23T10:05+08:00", "--answer", "fever=no", ok=False)
    assert result.exit_code == 1 and "only be recorded when the patient was reached" in result.output
    assert stored(clinic, t)[0].attempts == 0


def test_a_coordinator_cannot_record_for_another_site(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, t, "reached", "2026-11-23T10:05+08:00", user="wang.fang", ok=False)
    assert result.exit_code == 1 and "wang.fang works for SH-AES, not for site SH-DENT" in result.output
    script = cli("script", str(t), "--locale", "en", db=clinic, now="2026-11-23T10:05+08:00", user="wang.fang",
                 ok=False)
    assert script.exit_code == 1 and "not for site SH-DENT" in script.output
    assert "李强" not in script.output


def test_unknown_outcome_is_refused(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, t, "voicemail", "2026-11-23T10:05+08:00", ok=False)
    assert result.exit_code == 1 and "unknown outcome 'voicemail'" in result.output
    task, attempts, _, audits, _ = stored(clinic, t)
    assert (task.status, task.attempts, attempts, audits) == ("open", 0, [], [])


def test_an_unknown_task_is_a_one_line_error(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    result = record(cli, clinic, 99999, "reached", "2026-11-23T10:05+08:00", ok=False)
    assert result.exit_code == 1 and result.output.strip() == "Error: no task 99999"
    script = cli("script", "99999", "--locale", "en", db=clinic, now="2026-11-23T10:05+08:00", user="zhang.li",
                 ok=False)
    assert script.exit_code == 1 and script.output.strip() == "Error: no task 99999"


def test_an_answer_without_a_key_is_refused_and_nothing_is_stored(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = tid(cli, clinic, "D2", "check_1w")
    result = record(cli, clinic, t, "reached", "2026-11-23T10:05+08:00", "--answer", "fever", ok=False)
    assert result.exit_code == 1 and "--answer 'fever': write KEY=VALUE" in result.output
    task, attempts, answers, audits, _ = stored(clinic, t)
    assert (task.status, task.attempts, attempts, answers, audits) == ("open", 0, [], [], [])


# -- next_attempt_time on the calendar -----------------------------------------------------------------


@pytest.mark.parametrize(("site", "failed", "expected"), [
    ("SH-DENT", "2026-11-23T10:05", "2026-11-23T15:30"),  # morning -> afternoon
    ("SH-DENT", "2026-11-23T16:40", "2026-11-24T10:00"),  # afternoon -> next morning
    ("SH-DENT", "2026-11-23T12:30", "2026-11-23T15:30"),  # failed at lunch (a clinical call): first window 2 h on
    ("SH-AES", "2026-11-23T09:00", "2026-11-23T14:30"),   # 11:00 would still be the morning window
    ("SH-AES", "2026-11-23T13:00", "2026-11-23T15:00"),   # outside any window: just 2 h later
    ("SH-AES", "2026-11-27T15:00", "2026-11-30T09:00"),   # Friday afternoon -> Monday morning
    ("SH-AES", "2026-09-30T15:00", "2026-10-08T09:00"),   # the National Day week is skipped
    ("SH-AES", "2026-10-09T15:00", "2026-10-10T09:00"),   # Saturday 10 October is a make-up working day
    ("SH-DENT", "2026-12-30T16:00", "2027-01-04T10:00"),  # closed 31 Dec, New Year's Day, weekend
    ("BJ-HOSP", "2026-11-23T17:20", "2026-11-24T09:00"),
])
def test_next_attempt_time_on_the_calendar(site: str, failed: str, expected: str) -> None:
    from core.planner import planner

    assert planner(chain(), site).retry(at(failed)) == at(expected)


def _window_index(site, moment: datetime) -> int | None:  # type: ignore[no-untyped-def]
    windows = sorted(site.calling_windows, key=lambda w: w.start)
    local = moment.astimezone(site.timezone).time()
    return next((i for i, w in enumerate(windows) if w.contains(local)), None)


def _valid_retry(site, calendar, failed_index: int | None, moment: datetime) -> bool:  # type: ignore[no-untyped-def]
    index = _window_index(site, moment)
    if index is None or not calendar.is_working_day(moment.astimezone(site.timezone).date()):
        return False
    return not (failed_index is not None and len(site.calling_windows) > 1 and index == failed_index)


@settings(max_examples=300, deadline=None)
@given(
    site_code=st.sampled_from(["SH-DENT", "SH-AES", "BJ-HOSP"]),
    failed=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(SH)),
)
def test_a_retry_is_always_in_another_calling_window_of_a_working_day(site_code: str, failed: datetime) -> None:
    from core.planner import planner

    site = chain().site(site_code)
    calendar = site.calendar(chain())
    got = planner(chain(), site).retry(failed)
    failed_index = _window_index(site, failed)
    assert got >= failed + timedelta(hours=2)
    assert _valid_retry(site, calendar, failed_index, got), (failed, got)
    # ...and the earliest such moment: no valid instant between "2 h later" and the answer
    earliest = failed + timedelta(hours=2)
    candidates = [earliest]
    day = earliest.astimezone(site.timezone).date()
    while day <= got.astimezone(site.timezone).date():
        candidates += [datetime.combine(day, w.start, site.timezone) for w in site.calling_windows]
        day += timedelta(days=1)
    assert not [c for c in candidates if earliest <= c < got and _valid_retry(site, calendar, failed_index, c)]


# -- any sequence of outcomes ----------------------------------------------------------------------------

_serial = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from([("SH-DENT", "dental", "extraction", "check_1w", "zhang.li"),
                          ("SH-AES", "hair", "consultation", "lead_care", "wang.fang")]),
    outcomes=st.lists(st.sampled_from([*FAILED, *FAILED, "callback_requested", "reached", "refused", "wrong_number"]),
                      min_size=1, max_size=10),
    delays=st.lists(st.integers(min_value=0, max_value=600), min_size=10, max_size=10),
)
def test_no_sequence_of_outcomes_breaks_the_ceiling_or_the_calling_windows(  # type: ignore[no-untyped-def]
    db_url: str, plugins, kind: tuple, outcomes: list[str], delays: list[int],
) -> None:
    from core.calls import CallError, record_call
    from core.db.engine import session_scope
    from core.db.models import Episode, Patient, Task
    from core.planner import planner
    from core.scheduling import schedule

    site_code, specialty, procedure, milestone, user = kind
    config = chain()
    site = config.site(site_code)
    calendar = site.calendar(config)
    n = next(_serial)
    with session_scope(db_url) as session:
        patient = Patient(external_id=f"H{n}", name="测试", gender="F", phone="13800000000", site=site_code)
        session.add(patient)
        session.flush()
        episode = Episode(external_id=f"HE{n}", patient_id=patient.id, site=site_code, specialty=specialty,
                          procedure=procedure, trigger="procedure", occurred_at=at("2026-11-20T10:00"), attributes={})
        session.add(episode)
        session.flush()
        schedule(session, config, plugins, at("2026-11-20T11:00"), episode_ids=[episode.id])
        task_id = session.query(Task.id).filter(Task.episode_id == episode.id, Task.milestone == milestone).scalar()
    now = at("2026-11-23T09:00") if site_code == "SH-AES" else at("2026-11-23T10:00")
    failures = 0
    for outcome, delay in zip(outcomes, delays, strict=False):
        callback = planner(config, site).retry(now) if outcome == "callback_requested" else None
        with session_scope(db_url) as session:
            task = session.get(Task, task_id)
            was_open = task.status == "open"
            try:
                result = record_call(session, config, plugins, task_id, outcome=outcome, user=user, now=now,
                                     callback_at=callback)
            except CallError:
                assert not was_open  # only a finished task refuses another attempt
                continue
            task = result.task
            if outcome in FAILED:
                failures += 1
            assert task.failed_attempts == failures <= task.max_attempts
            assert (task.status == "unsuccessful") == (failures == task.max_attempts)
            if task.status == "open":
                nxt = task.next_attempt_at
                if outcome in FAILED:
                    assert nxt >= now + timedelta(hours=2)
                    assert _valid_retry(site, calendar, _window_index(site, now), nxt), (now, nxt)
                else:
                    assert nxt == callback
                now = nxt + timedelta(minutes=delay % 60)
            else:
                assert task.status in ("unsuccessful", "completed", "refused", "wrong_number")
                assert task.next_attempt_at is None or task.status != "open"
    with session_scope(db_url) as session:
        task = session.get(Task, task_id)
        assert task.failed_attempts <= task.max_attempts
        assert task.max_attempts == (7 if procedure == "consultation" else 3)
        event(f"{procedure}: ended {task.status}")



def test_a_third_party_milestone_invites_back_by_its_own_flag() -> None:
    """Which calls may end `booked` is the plugin's word (milestone `invites_back`), not a list of purposes in
    core: a purpose core has never heard of books, a review purpose without the flag does not."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from core.calls import booking_problem, invites_back
    from core.protocol import Milestone

    drops = Milestone.model_validate({"key": "drops_check", "purpose": "eye_drops_check", "invites_back": True,
                                      "names": {"zh_CN": "滴眼复查", "en": "Eye drops check"},
                                      "offset": "3d", "window": ["2d", "5d"]})
    plain = drops.model_copy(update={"key": "review_call", "purpose": "review", "invites_back": False})
    plugins = SimpleNamespace(milestones=lambda specialty, procedure: [("eye", drops), ("eye", plain)])
    at = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)
    for milestone, books in ((drops, True), (plain, False)):
        task = SimpleNamespace(specialty="eye", procedure="cataract", milestone=milestone.key,
                               purpose=milestone.purpose)
        assert invites_back(plugins, task) is books
        problem = booking_problem(task, None, "booked", at, invites_back(plugins, task))
        assert (problem is None) is books, problem
        if not books:
            assert problem is not None and problem[1] == "booked_not_inviting"
