"""Placement as the seeds say it (issue 14, items 1-5), through the CLI on both databases.

1. A reminder reaches the patient before what it reminds of (``before:`` an event of the procedure).
2. Same day means the same day: a clinical call takes the earliest allowed time inside its window.
3. Windows in days end with the day: "5-7 days after discharge" includes all of day 7.
4. Rest hours (the lunch break, chain setting) are avoided by every call when its window allows.
5. The patient's own time (``preferred_call_time``) and sites that call every day.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, write_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    return Path(shutil.copytree(ROOT / "config", tmp_path / "config")) / "chain.yaml"


def schedule(cli, tmp: Path, url: str, chain: Path, episodes: list[list[str]], *,  # type: ignore[no-untyped-def]
             patients: list[list[str]] | None = None, patient_header: list[str] | None = None,
             now: str = "2026-01-05T08:00+08:00") -> dict[tuple[str, str], dict]:
    people = patients or [[row[1], "王秀英", "F", "1961-04-12", f"1381234{i:04d}", row[2]]
                          for i, row in enumerate(episodes)]
    cli("import", str(write_csv(tmp / "patients.csv", patient_header or PATIENT_HEADER, people)), db=url, now=now,
        config=chain)
    cli("import", str(write_csv(tmp / "episodes.csv", EPISODE_HEADER, episodes)), db=url, now=now, config=chain)
    cli("schedule", db=url, now=now, config=chain)
    tasks = json.loads(cli("tasks", "--format", "json", db=url, config=chain).output)
    return {(t["episode_id"], t["milestone"]): t for t in tasks}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def inside(task: dict) -> bool:  # type: ignore[type-arg]
    return at(task["window_start"]) <= at(task["due_at"]) <= at(task["window_end"])


# -- 1. reminders before their event --------------------------------------------------------------


def test_rhinoplasty_reminders_reach_the_patient_before_the_splint_and_stitches_come_off(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    # Monday 28 September 15:00 at SH-AES: day 3 (1 Oct) to day 4 are the National Day holiday.
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-AES", "aesthetic", "rhinoplasty", "2026-09-28T15:00", "邓涛"]],
                     now="2026-09-28T16:00+08:00")
    splint, sutures = tasks["E1", "splint_removal"], tasks["E1", "suture_removal"]
    # The splint comes off on day 5 (3 Oct): the reminder is on the last working day before, 30 Sep.
    assert splint["due_at"] == "2026-09-30T14:30+08:00"
    assert at(splint["due_at"]) < at("2026-10-03T00:00+08:00") and inside(splint)
    assert at(sutures["due_at"]) < at("2026-10-08T00:00+08:00")  # the stitches come out on day 10
    # The card's script tells the patient the day: the reminder of a day-5 removal.
    script = cli("script", str(splint["id"]), db=db_url, now="2026-09-30T14:30+08:00", user="wang.fang",
                 config=chain).output
    assert "术后第5天拆鼻夹板" in script and "10月3日" in script


def test_a_site_that_removes_the_splint_on_day_7_moves_the_reminder_with_it(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    site = chain.parent / "sites" / "sh-aes.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("splint_removal: 5d", "splint_removal: 7d"),
                    encoding="utf-8")
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-AES", "aesthetic", "rhinoplasty", "2026-06-01T10:00", "邓涛"]],
                     now="2026-06-01T12:00+08:00")
    splint = tasks["E1", "splint_removal"]
    assert splint["due_at"] == "2026-06-04T10:00+08:00"  # the call stays on day 3 ...
    assert splint["window_end"] == "2026-06-06T23:59+08:00"  # ... its window [3d, 5d] ends before day 7
    script = cli("script", str(splint["id"]), "--locale", "en", db=db_url, now="2026-06-04T10:00+08:00",
                 user="wang.fang", config=chain).output
    assert "day 7" in script
    protocols = json.loads(cli("protocols", "aesthetic.rhinoplasty", "--site", "SH-AES", "--format", "json",
                               config=chain).output)
    assert {r["milestone"]: r for r in protocols}["splint_removal"]["before"] == {"event": "splint_removal",
                                                                                 "at": "7d"}


def test_double_eyelid_suture_reminder_comes_before_the_stitches_in_spring_festival(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    # 13 Feb 2026: the Spring Festival holiday runs 15-23 Feb; the stitches come out on day 6 (19 Feb).
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-AES", "aesthetic", "double_eyelid", "2026-02-13T10:00", "邓涛"]],
                     now="2026-02-13T12:00+08:00")
    reminder = tasks["E1", "suture_removal"]
    assert at(reminder["due_at"]) < at("2026-02-19T00:00+08:00"), reminder
    assert inside(reminder)


# -- 2. same day means the same day ---------------------------------------------------------------


@pytest.mark.parametrize(("finished", "due"), [
    ("2026-11-18T18:30", "2026-11-18T19:30+08:00"),  # 3 h later is 21:30, quiet: the same evening, not 08:00
    ("2026-06-19T19:00", "2026-06-19T20:00+08:00"),
])
def test_a_same_day_call_is_made_the_same_evening(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path, finished: str, due: str) -> None:
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-DENT", "dental", "root_canal_treatment", finished, "陈志远"]],
                     now=f"{finished}+08:00")
    task = tasks["E1", "check_same_day"]
    assert task["due_at"] == due and inside(task)


def test_a_missed_appointment_at_20_40_is_called_within_its_hour(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-DENT", "dental", "missed_appointment", "2026-11-18T20:40", "陈志远"]],
                     now="2026-11-18T20:41+08:00")
    task = tasks["E1", "rebook_1h"]
    assert task["due_at"] == "2026-11-18T20:40+08:00" and inside(task)


# -- 3. windows in days end with the day ------------------------------------------------------------


def test_day_7_after_discharge_is_inside_the_5_to_7_day_window(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "BJ-HOSP", "inpatient", "discharge", "2026-11-16T08:30", "刘医生"]],
                     now="2026-11-16T09:00+08:00")
    task = tasks["E1", "post_discharge"]
    assert task["due_at"] == "2026-11-23T09:00+08:00"
    assert task["window_end"] == "2026-11-23T23:59+08:00"
    assert inside(task)


# -- 4. rest hours ----------------------------------------------------------------------------------


def test_clinical_calls_wait_for_the_end_of_the_lunch_break(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    tasks = schedule(cli, tmp_path, db_url, chain, [
        ["E1", "P1", "SH-AES", "aesthetic", "rhinoplasty", "2026-11-21T12:30", "邓涛"],  # Saturday
        ["E2", "P2", "SH-AES", "aesthetic", "breast_augmentation", "2026-11-20T13:00", "邓涛"],
    ], now="2026-11-20T14:00+08:00")
    assert tasks["E1", "dressing_change"]["due_at"] == "2026-11-22T14:00+08:00"  # Sunday, after the break
    assert tasks["E2", "check_1d"]["due_at"] == "2026-11-21T14:00+08:00"


def test_rest_hours_are_the_chains_to_set(cli, tmp_path: Path, db_url: str, chain: Path) -> None:  # type: ignore[no-untyped-def]
    text = chain.read_text(encoding="utf-8")
    chain.write_text(text.replace("defaults:\n", "defaults:\n  rest_hours: null\n", 1), encoding="utf-8")
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-AES", "aesthetic", "rhinoplasty", "2026-11-21T12:30", "邓涛"]],
                     now="2026-11-21T14:00+08:00")
    assert tasks["E1", "dressing_change"]["due_at"] == "2026-11-22T12:30+08:00"


# -- 5. the patient's own time, and clinics that call every day ---------------------------------------


def test_a_routine_call_follows_the_patients_preferred_time(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    header = [*PATIENT_HEADER, "方便接听时间"]
    tasks = schedule(cli, tmp_path, db_url, chain, [
        ["E1", "P1", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E2", "P2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
    ], patients=[["P1", "王秀英", "F", "1961-04-12", "13812340001", "SH-DENT", "晚上"],
                 ["P2", "李强", "M", "1986-09-03", "13912340002", "SH-DENT", ""]],
        patient_header=header, now="2026-11-16T11:00+08:00")
    assert tasks["E1", "check_1w"]["due_at"] == "2026-11-23T18:00+08:00"  # after work, as the patient asked
    assert tasks["E2", "check_1w"]["due_at"] == "2026-11-23T10:00+08:00"  # the clinic's calling window
    card = cli("script", str(tasks["E1", "check_1w"]["id"]), db=db_url, now="2026-11-23T18:00+08:00",
               user="zhang.li", config=chain).output
    assert "18:00-20:30" in card


def test_an_unreadable_preferred_time_is_a_row_error(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [*PATIENT_HEADER, "preferred_call_time"],
                     [["P1", "王秀英", "F", "1961-04-12", "13812340001", "SH-DENT", "凌晨3点"]])
    result = cli("import", str(path), db=db_url, now="2026-11-16T11:00+08:00", config=chain, ok=False)
    assert result.exit_code != 0 and "凌晨3点" in result.output and "Traceback" not in result.output


def test_a_site_that_calls_every_day_keeps_a_sunday_call_on_sunday(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, db_url: str, chain: Path) -> None:
    site = chain.parent / "sites" / "sh-dent.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "calls_every_day: true\n", encoding="utf-8")
    # Extraction on Sunday 15 Nov: the one-week check's target is Sunday 22 Nov 10:00.
    tasks = schedule(cli, tmp_path, db_url, chain,
                     [["E1", "P1", "SH-DENT", "dental", "extraction", "2026-11-15T10:00", "陈志远"]],
                     now="2026-11-15T11:00+08:00")
    assert tasks["E1", "check_1w"]["due_at"] == "2026-11-22T10:00+08:00"
