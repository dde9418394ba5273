"""Follow-ups beyond a procedure's milestones (issue 15), through the CLI on SQLite and PostgreSQL.

Visits and interruptions (triggers), bookings from calls that invite the patient back,
referrals, the weekly call-quality review, telephone manners and the value tier on the card.
Week of Monday 2026-12-07 (ISO 2026-W50); SH-DENT calls 10:00-11:30 and 15:30-17:00.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clinic_data import task_id, write_csv

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
    assert "Service paid for : 洗牙套餐" in card
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
    assert own.exit_code == 1 and "only a supervisor or admin scores calls" in own.output
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
