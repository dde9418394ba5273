"""Follow-ups beyond a procedure's milestones (issue 15), through the CLI on SQLite and PostgreSQL.

Visits and interruptions (triggers), bookings from calls that invite the patient back,
referrals, the weekly call-quality review, telephone manners and the value tier on the card.
Week of Monday 2026-12-07 (ISO 2026-W50); SH-DENT calls 10:00-11:30 and 15:30-17:00.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from clinic_data import task_id, write_csv
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-12-04T18:00+08:00"  # Friday evening
PATIENTS = ["patient_id", "name", "gender", "birth_date", "phone", "site", "value_tier", "referred_by"]
EPISODES = ["episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at", "trigger"]


def tasks(cli, url: str, patient: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    args = ("--patient", patient) if patient else ()
    return json.loads(cli("tasks", *args, "--format", "json", db=url).output)


def month_report(cli, url: str, now: str = "2026-12-20T09:00+08:00") -> dict:  # type: ignore[no-untyped-def]
    return json.loads(cli("report", "month", "--period", "2026-12", "--format", "json", db=url, now=now).output)


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """V1 paid for a cleaning on Thursday (trigger 到诊); I1 postponed treatment on Friday 16:00 (trigger column,
    no procedure); R1 had an implant three months ago (review due); A2 (aesthetic) came on Thursday."""
    cli("import", str(write_csv(tmp_path / "p.csv", PATIENTS, [
        ["V1", "王芳", "F", "1980-02-03", "13812340001", "SH-DENT", "VIP", ""],
        ["I1", "李雷", "M", "1985-06-30", "13812340002", "SH-DENT", "", "V1"],
        ["R1", "赵敏", "F", "1970-01-01", "13812340003", "SH-DENT", "", ""],
        ["A2", "周婷", "F", "1992-09-09", "13812340004", "SH-AES", "", ""],
    ])), db=db_url, now=NOW)
    cli("import", str(write_csv(tmp_path / "e.csv", EPISODES, [
        ["EV1", "V1", "SH-DENT", "dental", "洗牙套餐", "2026-12-03T10:00", "到诊"],
        ["EI1", "I1", "SH-DENT", "dental", "", "2026-12-04T16:00", "interruption"],
        ["ER1", "R1", "SH-DENT", "dental", "implant", "2026-09-04T10:00", ""],
        ["EA2", "A2", "SH-AES", "aesthetic", "visit", "2026-12-03T15:00", ""],
    ])), db=db_url, now=NOW)
    cli("schedule", db=db_url, now=NOW)
    return db_url


def test_visits_and_interruptions_are_scheduled_from_their_trigger(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    visit = [t for t in tasks(cli, clinic, "V1")]
    assert [(t["procedure"], t["milestone"], t["due_at"]) for t in visit] == [
        ("visit", "next_day", "2026-12-04T10:00+08:00")]  # the day after, first calling slot
    # postponed Friday 16:00: called within one working day, Monday's first slot
    assert [(t["procedure"], t["milestone"], t["due_at"]) for t in tasks(cli, clinic, "I1")] == [
        ("interruption", "why_1wd", "2026-12-07T10:00+08:00")]
    assert [(t["procedure"], t["milestone"]) for t in tasks(cli, clinic, "A2")] == [("visit", "next_day")]
    # what the visit was for is on the card
    card = cli("script", str(visit[0]["id"]), "--locale", "en", db=clinic, now=NOW, user="zhang.li").output
    assert re.search(r"Service paid for +: 洗牙套餐", card)
    rows = json.loads(cli("protocols", "--format", "json").output)
    new = {(r["specialty"], r["procedure"], r["trigger"], r["milestone"]) for r in rows
           if r["trigger"] in ("visit", "interruption")}
    assert new == {("dental", "visit", "visit", "next_day"), ("aesthetic", "visit", "visit", "next_day"),
                   ("dental", "interruption", "interruption", "why_1wd"),
                   ("aesthetic", "interruption", "interruption", "why_1wd")}


def test_an_unknown_or_unoffered_trigger_is_a_located_error(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = write_csv(tmp_path / "bad.csv", EPISODES, [
        ["EX1", "V1", "SH-DENT", "dental", "", "2026-12-04T10:00", "discharge"],
        ["EX2", "V1", "SH-DENT", "dental", "", "2026-12-04T10:00", "holiday"],
    ])
    result = cli("import", str(bad), "--locale", "en", db=clinic, now=NOW, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "row 2" in result.output and "dental has no procedure for trigger discharge" in result.output
    assert "row 3" in result.output and "unknown trigger 'holiday'" in result.output
    assert [t for t in tasks(cli, clinic) if t["episode_id"].startswith("EX")] == []


def test_interruption_reasons_are_coded_and_counted(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    t = task_id(cli, clinic, "I1", "why_1wd")
    bad = cli("record", str(t), "--outcome", "reached", "--answer", "interruption_reason=weather", "--locale", "en",
              db=clinic, now="2026-12-07T10:05+08:00", user="zhang.li", ok=False)
    assert bad.exit_code == 1 and "expected one of cost, time, fear, result, other" in bad.output
    data = json.loads(cli("record", str(t), "--outcome", "reached", "--answer", "interruption_reason=3",
                          "--answer", "wants_rebook=no", "--format", "json",
                          db=clinic, now="2026-12-07T10:05+08:00", user="zhang.li").output)
    kinds = sorted(a["kind"] for a in data["actions"])
    assert kinds == ["escalate", "extra_call"]  # fear: the dentist calls; no rebooking: call again
    figures = month_report(cli, clinic)["followups"]["interruptions"]
    assert figures["answered"] == 1
    assert figures["by_reason"] == {"cost": 0, "time": 0, "fear": 1, "result": 0, "other": 0}
    assert figures["by_site"] == [{"site": "SH-DENT", "specialty": "dental", "reason": "fear", "n": 1}]


def test_a_review_call_can_book_the_patient_back(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    review = task_id(cli, clinic, "R1", "review_3mo")
    at = "2026-12-07T10:10+08:00"
    missing = cli("record", str(review), "--outcome", "booked", "--locale", "en", db=clinic, now=at, user="zhang.li",
                  ok=False)
    assert missing.exit_code == 1 and "needs --booked-at" in missing.output
    past = cli("record", str(review), "--outcome", "booked", "--booked-at", "2026-12-01T10:00", "--locale", "en",
               db=clinic, now=at, user="zhang.li", ok=False)
    assert past.exit_code == 1 and "not in the future" in past.output
    stray = cli("record", str(review), "--outcome", "reached", "--booked-at", "2026-12-10T10:00", "--locale", "en",
                db=clinic, now=at, user="zhang.li", ok=False)
    assert stray.exit_code == 1 and "only goes with outcome booked" in stray.output
    visit = task_id(cli, clinic, "V1", "next_day")  # a satisfaction call does not invite anyone back
    refused = cli("record", str(visit), "--outcome", "booked", "--booked-at", "2026-12-10T10:00", "--locale", "en",
                  db=clinic, now=at, user="zhang.li", ok=False)
    assert refused.exit_code == 1 and "does not invite the patient back" in refused.output
    assert [t["attempts"] for t in tasks(cli, clinic) if t["id"] in (review, visit)] == [0, 0]

    cli("record", str(review), "--outcome", "booked", "--booked-at", "2026-12-10T10:00", "--answer",
        "wants_booking=yes", db=clinic, now=at, user="zhang.li")
    booked = next(t for t in tasks(cli, clinic, "R1") if t["id"] == review)
    assert (booked["status"], booked["booked_at"]) == ("booked", "2026-12-10T10:00+08:00")
    bookings = month_report(cli, clinic)["followups"]["bookings"]
    assert bookings == {"reviews_booked": 1, "by_site": [{"site": "SH-DENT", "specialty": "dental", "n": 1}]}
    assert month_report(cli, clinic)["sales"]["booked"] == 0  # not a sales lead


def test_referrals_from_calls_and_imports_count_per_site_and_referrer(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    unknown = write_csv(tmp_path / "r.csv", PATIENTS, [
        ["N1", "新人", "F", "1990-01-01", "13812340009", "SH-DENT", "", "NOBODY"],
        ["N2", "自荐", "F", "1990-01-01", "13812340008", "SH-DENT", "", "N2"],
    ])
    result = cli("import", str(unknown), "--locale", "en", db=clinic, now=NOW, ok=False)
    assert "referrer 'NOBODY' is neither in the database nor in this file" in result.output
    assert "a patient cannot refer themselves" in result.output
    visit = task_id(cli, clinic, "V1", "next_day")
    data = json.loads(cli("record", str(visit), "--outcome", "reached", "--answer", "overall_satisfaction=5",
                          "--answer", "referral_accepted=yes", "--answer", "birthday=5月12日", "--format", "json",
                          db=clinic, now="2026-12-04T10:10+08:00", user="zhang.li").output)
    referral = next(a for a in data["actions"] if a["kind"] == "referral")
    assert referral["accepted"] is True
    figures = month_report(cli, clinic)["followups"]["referrals"]
    # I1 was imported naming V1; V1 accepted the invitation on the call
    assert (figures["accepted"], figures["referred"]) == (1, 1)
    assert figures["by_site"] == [{"site": "SH-DENT", "accepted": 1, "referred": 1}]
    assert figures["by_referrer"] == [{"patient_id": "V1", "patient_name": "王芳", "accepted": 1, "referred": 1}]


def test_the_weekly_call_review_is_repeatable_and_scored_by_supervisors(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    ids = []
    for patient, milestone, at in (("V1", "next_day", "2026-12-04T10:10+08:00"),
                                   ("I1", "why_1wd", "2026-12-07T10:10+08:00"),
                                   ("R1", "review_3mo", "2026-12-07T10:20+08:00")):
        t = task_id(cli, clinic, patient, milestone)
        out = json.loads(cli("record", str(t), "--outcome", "reached", "--recording", f"rec/{patient}.mp3",
                             "--format", "json", db=clinic, now=at, user="zhang.li").output)
        ids.append(out["attempt_id"])
    first = json.loads(cli("qa", "sample", "--week", "2026-W50", "--per-coordinator", "1", "--format", "json",
                           db=clinic, user="chen.jing").output)
    again = json.loads(cli("qa", "sample", "--week", "2026-W50", "--per-coordinator", "1", "--format", "json",
                           db=clinic, user="chen.jing").output)
    assert first == again and len(first) == 1  # one call of zhang.li's two that week, the same every time
    pick = first[0]
    assert pick["attempt_id"] in ids[1:] and pick["coordinator"] == "zhang.li"
    assert pick["recording"].startswith("rec/")
    everything = json.loads(cli("qa", "sample", "--week", "2026-W50", "--format", "json", db=clinic,
                                user="chen.jing").output)
    assert sorted(r["attempt_id"] for r in everything) == ids[1:]
    bad_week = cli("qa", "sample", "--week", "2026-48", "--locale", "en", db=clinic, user="chen.jing", ok=False)
    assert bad_week.exit_code == 1 and "is not an ISO week" in bad_week.output

    own = cli("qa", "score", str(ids[1]), "--score", "90", "--locale", "en", db=clinic, user="zhang.li", ok=False)
    assert own.exit_code == 1 and "only a manager or admin scores calls" in own.output
    out_of_range = cli("qa", "score", str(ids[1]), "--score", "101", db=clinic, user="chen.jing", ok=False)
    assert out_of_range.exit_code == 2
    cli("qa", "score", str(ids[1]), "--score", "70", "--note", "hold too long", db=clinic, user="chen.jing",
        now="2026-12-08T09:00+08:00")
    cli("qa", "score", str(ids[2]), "--score", "90", db=clinic, user="chen.jing", now="2026-12-08T09:05+08:00")
    coordinators = month_report(cli, clinic)["coordinators"]
    assert [(c["coordinator"], c["qa_reviewed"], c["qa_avg_score"]) for c in coordinators] == [("zhang.li", 2, 80.0)]
    scored = json.loads(cli("qa", "sample", "--week", "2026-W50", "--format", "json", db=clinic,
                            user="chen.jing").output)
    assert sorted(r["score"] for r in scored) == [70, 90]


def test_the_call_card_shows_manners_and_the_value_tier_in_both_languages(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t = task_id(cli, clinic, "V1", "next_day")
    zh = cli("script", str(t), "--locale", "zh_CN", db=clinic, now=NOW, user="zhang.li").output
    en = cli("script", str(t), "--locale", "en", db=clinic, now=NOW, user="zhang.li").output
    assert "客户等级" in zh and "★ vip" in zh and "Value tier" in en
    assert "电话礼仪" in zh and "免提" in zh and "一分钟" in zh
    assert "Telephone manners" in en and "speakerphone" in en and "redial at once" in en
    other = cli("script", str(task_id(cli, clinic, "R1", "review_3mo")), "--locale", "en", db=clinic, now=NOW,
                user="zhang.li").output
    assert "Value tier" not in other
    config = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    chain = config / "chain.yaml"
    chain.write_text(chain.read_text(encoding="utf-8") + "\ncall_manners: []\n", encoding="utf-8")
    quiet = cli("script", str(t), "--locale", "en", db=clinic, now=NOW, user="zhang.li", config=chain).output
    assert "Telephone manners" not in quiet


# -- the month-end sweep, greetings and the value tier --------------------------------------------------------------
def _unreachable(cli, url: str, task: int) -> None:  # type: ignore[no-untyped-def]
    """Three counted failed attempts, the last one powered off: the follow-up ends unsuccessful."""
    for at, outcome in (("2026-12-07T10:05", "no_answer"), ("2026-12-07T15:35", "no_answer"),
                        ("2026-12-08T10:05", "powered_off")):
        cli("record", str(task), "--outcome", outcome, db=url, now=f"{at}+08:00", user="zhang.li")


def test_the_month_end_sweep_calls_the_unreachable_once_more(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    interrupted = task_id(cli, clinic, "I1", "why_1wd")
    _unreachable(cli, clinic, interrupted)
    refused = task_id(cli, clinic, "V1", "next_day")  # reached and final: not swept
    cli("record", str(refused), "--outcome", "refused", db=clinic, now="2026-12-04T10:05+08:00", user="zhang.li")
    out = json.loads(cli("schedule", "--format", "json", db=clinic, now="2026-12-20T08:00+08:00").output)
    assert out["swept"] == 1
    swept = next(t for t in tasks(cli, clinic, "I1") if t["id"] == interrupted)
    # Friday 25 December is a working day: the site's first calling slot
    assert (swept["status"], swept["next_attempt_at"], swept["swept_at"]) == (
        "open", "2026-12-25T10:00+08:00", "2026-12-20T08:00+08:00")
    again = json.loads(cli("schedule", "--format", "json", db=clinic, now="2026-12-21T08:00+08:00").output)
    assert again["swept"] == 0  # once per follow-up
    day = json.loads(cli("worklist", "--date", "2026-12-25", "--format", "json", db=clinic,
                         now="2026-12-25T09:00+08:00", user="zhang.li").output)
    assert [line["task_ids"] for line in day if line["patient_id"] == "I1"] == [[interrupted]]
    card = cli("script", str(interrupted), "--locale", "en", db=clinic, now="2026-12-25T10:00+08:00",
               user="zhang.li").output
    assert "Month-end sweep: unreachable earlier this month (powered off)" in card
    cli("record", str(interrupted), "--outcome", "reached", "--answer", "interruption_reason=time", db=clinic,
        now="2026-12-25T10:05+08:00", user="zhang.li")
    assert next(t for t in tasks(cli, clinic, "I1") if t["id"] == interrupted)["status"] == "completed"
    sweep = month_report(cli, clinic, now="2026-12-31T12:00+08:00")["followups"]["sweep"]
    assert sweep == {"swept": 1, "recovered": 1, "by_site": [{"site": "SH-DENT", "swept": 1, "recovered": 1}]}
    for fmt in ("table", "html"):
        shown = cli("report", "month", "--period", "2026-12", "--locale", "en", "--format", fmt, db=clinic,
                    now="2026-12-31T12:00+08:00").output
        assert "Recovered by the sweep" in shown and "Month-end sweep calls" in shown, fmt


def test_no_sweep_after_the_sweep_days_and_a_failed_sweep_call_is_final_again(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    interrupted = task_id(cli, clinic, "I1", "why_1wd")
    _unreachable(cli, clinic, interrupted)
    late = json.loads(cli("schedule", "--format", "json", db=clinic, now="2026-12-28T08:00+08:00").output)
    assert late["swept"] == 0  # the 25th-27th are past: next month's sweep is for next month's follow-ups
    cli("schedule", db=clinic, now="2026-12-24T08:00+08:00")
    cli("record", str(interrupted), "--outcome", "cannot_connect", db=clinic, now="2026-12-25T10:05+08:00",
        user="zhang.li")
    final = next(t for t in tasks(cli, clinic, "I1") if t["id"] == interrupted)
    assert (final["status"], final["attempts"]) == ("unsuccessful", 4)
    assert month_report(cli, clinic, now="2026-12-31T12:00+08:00")["followups"]["sweep"]["recovered"] == 0


def test_greetings_come_a_few_days_before_each_year(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    visit = task_id(cli, clinic, "V1", "next_day")
    bad = cli("record", str(visit), "--outcome", "reached", "--answer", "birthday=13-40", "--locale", "en",
              db=clinic, now="2026-12-04T10:05+08:00", user="zhang.li", ok=False)
    assert bad.exit_code == 1 and "write a month and day" in bad.output
    cli("record", str(visit), "--outcome", "reached", "--answer", "birthday=12月24日", "--answer",
        "anniversary=02-29", db=clinic, now="2026-12-04T10:05+08:00", user="zhang.li")
    out = json.loads(cli("schedule", "--format", "json", db=clinic, now="2026-12-05T08:00+08:00").output)
    assert out["greetings"] == 2
    greetings = {t["milestone"]: t for t in tasks(cli, clinic, "V1") if t["purpose"] == "greeting"}
    # three days before: Monday 21 December; 29 February 2027 does not exist: the 28th, three days before
    assert {k: (t["channel"], t["due_at"]) for k, t in greetings.items()} == {
        "greeting_birthday_2026": ("sms", "2026-12-21T10:00+08:00"),
        "greeting_anniversary_2027": ("sms", "2027-02-25T10:00+08:00"),
    }
    again = json.loads(cli("schedule", "--format", "json", db=clinic, now="2026-12-06T08:00+08:00").output)
    assert again["greetings"] == 0 and again["cancelled"] == 0  # kept by reconcile, one per year
    script = cli("script", str(greetings["greeting_birthday_2026"]["id"]), "--locale", "en", db=clinic,
                 now="2026-12-21T10:00+08:00", user="zhang.li").output
    assert "Your birthday is coming up" in script and "How satisfied" not in script
    # next year's birthday greeting once this one's day has passed
    later = json.loads(cli("schedule", "--format", "json", db=clinic, now="2026-12-25T08:00+08:00").output)
    assert later["greetings"] == 1
    # a chain without an SMS channel calls; a chain can switch greetings off
    config = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    chain = config / "chain.yaml"
    text = chain.read_text(encoding="utf-8")
    shipped = "greetings: {enabled: true, days_before: 3, channel: auto}"
    assert shipped in text
    chain.write_text(text.replace(shipped, "greetings: {channel: phone}"), encoding="utf-8")
    cli("record", str(task_id(cli, clinic, "A2", "next_day")), "--outcome", "reached", "--answer",
        "birthday=03-01", db=clinic, now="2026-12-04T15:05+08:00", user="wang.fang", config=chain)
    cli("schedule", db=clinic, now="2026-12-26T08:00+08:00", config=chain)
    assert [t["channel"] for t in tasks(cli, clinic, "A2") if t["purpose"] == "greeting"] == ["phone"]
    chain.write_text(text.replace(shipped, "greetings: {enabled: false}"), encoding="utf-8")
    off = json.loads(cli("schedule", "--format", "json", db=clinic, now="2027-03-05T08:00+08:00",
                         config=chain).output)
    assert off["greetings"] == 0


def test_valued_patients_come_next_after_clinical_calls(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("import", str(write_csv(tmp_path / "more.csv", EPISODES, [
        ["EV2", "R1", "SH-DENT", "dental", "scaling", "2026-12-06T09:00", ""],
        ["EV3", "V1", "SH-DENT", "dental", "scaling", "2026-12-06T11:00", ""],
    ])), db=clinic, now=NOW)
    cli("schedule", db=clinic, now="2026-12-06T12:00+08:00")
    day = json.loads(cli("worklist", "--date", "2026-12-07", "--format", "json", db=clinic,
                         now="2026-12-07T09:00+08:00", user="zhang.li").output)
    order = [(line["patient_id"], line["value_tier"]) for line in day]
    # R1's cleaning check is due first (10:00), but V1 is a VIP: called first among the routine calls
    assert order[0] == ("V1", "vip") and ("R1", None) in order
    claimed = json.loads(cli("claim", "--count", "1", "--format", "json", db=clinic, now="2026-12-07T10:00+08:00",
                             user="zhang.li").output)["claimed"]
    v1 = {t["id"] for t in tasks(cli, clinic, "V1") if t["status"] == "open" and t["purpose"] != "greeting"}
    assert set(claimed) == v1  # the VIP patient's calls, not R1's earlier one


def test_the_demo_has_one_of_each(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    cli("demo", "--locale", "en", db=db, now="2026-12-07T09:00+08:00")
    everything = tasks(cli, db)
    assert {t["procedure"] for t in everything} >= {"visit", "interruption"}
    assert any(t["swept_at"] for t in everything)
    assert any(t["status"] == "booked" and t["booked_at"] and t["purpose"] in ("review", "rebook", "invitation")
               for t in everything)
    assert any(t["purpose"] == "greeting" for t in everything)
    report = json.loads(cli("report", "month", "--period", "2026-12", "--format", "json", db=db,
                            now="2026-12-07T09:00+08:00").output)
    assert report["followups"]["referrals"]["referred"] >= 1
    assert report["followups"]["sweep"]["swept"] >= 1
    assert sum(c["qa_reviewed"] for c in report["coordinators"]) == 1


def test_a_birthday_greeting_goes_out_by_sms_and_counts_as_done(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    chain = config / "chain.yaml"
    folder = tmp_path / "messages"
    chain.write_text(chain.read_text(encoding="utf-8").replace(
        "sms: {plugin: file, folder: var/messages}", f"sms: {{plugin: file, folder: {folder}}}"), encoding="utf-8")
    visit = task_id(cli, clinic, "V1", "next_day")
    cli("record", str(visit), "--outcome", "reached", "--answer", "birthday=12-24", db=clinic,
        now="2026-12-04T10:05+08:00", user="zhang.li", config=chain)
    cli("schedule", db=clinic, now="2026-12-05T08:00+08:00", config=chain)
    greeting = next(t for t in tasks(cli, clinic, "V1") if t["purpose"] == "greeting")
    cli("send", db=clinic, now="2026-12-21T10:05+08:00", config=chain)
    sent = [p.read_text(encoding="utf-8") for p in folder.iterdir()]
    assert len(sent) == 1 and "生日快乐" in sent[0] and "138****0001" in sent[0]  # the file plugin masks it
    assert next(t for t in tasks(cli, clinic, "V1") if t["id"] == greeting["id"])["status"] == "completed"
    assert month_report(cli, clinic)["followups"]["greetings"] == {"due": 1, "done": 1}


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
       st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_a_day_to_greet_reads_every_way_and_comes_round_within_a_year(born: date, today: date) -> None:
    from core.greetings import next_day
    from core.monthday import parse_month_day

    expected = f"{born.month:02d}-{born.day:02d}"
    for written in (born.isoformat(), expected, f"{born.month}月{born.day}日", born.strftime("%d %B")):
        assert parse_month_day(written) == expected, written
    coming = next_day(expected, today)
    assert today <= coming <= today + timedelta(days=366)
    assert (coming.month, coming.day) == (born.month, born.day) or (born.month, born.day, coming.day) == (2, 29, 28)


def test_sweep_greeting_and_interruption_figures_read_their_partial_indexes(
    tmp_path: Path, _sqlite_template: Path
) -> None:
    """The report's sweep, greeting and interruption figures read the few rows of their partial indexes
    (migrations 0014, 0015), not the whole tasks table or every answer of the period's calls."""
    import sqlite3
    from datetime import UTC, datetime

    from sqlalchemy import event

    from core.db.engine import get_engine, session_scope
    from core.reports.followups import greetings, interruption_reasons, sweep
    from core.reports.queries import Scope

    path = tmp_path / "plans.db"
    shutil.copyfile(_sqlite_template, path)
    with sqlite3.connect(path) as raw:  # the statistics of a chain's year: a million tasks, a few swept or greetings
        raw.execute("ANALYZE")
        raw.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'tasks'")
        raw.executemany("INSERT INTO sqlite_stat1 VALUES ('tasks', ?, ?)", [
            ("ix_tasks_worklist", "1000000 20000 4000 2"), ("ix_tasks_due", "1000000 150000 2"),
            ("ix_tasks_swept", "2000 2"), ("ix_tasks_greetings", "20000 60"), ("ix_tasks_leads", "100000 4"),
        ])
        raw.execute("DELETE FROM sqlite_stat1 WHERE tbl IN ('answers', 'attempts')")
        raw.executemany("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", [
            ("answers", "ix_answers_attempt_id", "400000 3"), ("answers", "ix_answers_task_id", "400000 3"),
            ("answers", "ix_answers_interruptions", "2000 1"), ("attempts", "ix_attempts_report", "2000000 2 2 2 2"),
            ("attempts", "ix_attempts_task_id", "2000000 2"),
        ])
    url = f"sqlite:///{path}"
    statements: list[tuple[str, tuple]] = []
    event.listen(get_engine(url), "before_cursor_execute",
                 lambda conn, cursor, sql, params, *_: statements.append((sql, params)))
    scope = Scope(sites=["SH-DENT", "SH-AES"])
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    with session_scope(url) as session:
        for figures, table, index in ((sweep, "tasks", "ix_tasks_swept"), (greetings, "tasks", "ix_tasks_greetings"),
                                      (interruption_reasons, "answers", "ix_answers_interruptions")):
            statements.clear()
            figures(session, scope, start, end)
            sql, params = next((s, p) for s, p in statements if f"FROM {table}" in s)
            rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            plan = " ".join(row[-1] for row in rows)
            assert f"USING INDEX {index}" in plan, plan
    get_engine(url).dispose()
