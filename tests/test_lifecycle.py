"""One task lifecycle (issue 12): what a clinic sees when a record or a protocol changes.

Every test goes through the CLI, on SQLite and PostgreSQL: import, re-import with a
correction, ``schedule`` (which reconciles), ``schedule --dry-run``, ``schedule --replan``,
do-not-contact set and lifted by import.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, write_csv

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-21T09:00+08:00"


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """A copy of the demo chain that a test may edit (site overrides)."""
    return Path(shutil.copytree(ROOT / "config", tmp_path / "config")) / "chain.yaml"


def _import(cli, tmp, url: str, chain: Path, name: str, header: list[str], rows: list[list[str]],  # type: ignore[no-untyped-def]
            now: str = NOW) -> None:
    cli("import", str(write_csv(tmp / name, header, rows)), db=url, now=now, config=chain)


def _schedule(cli, url: str, chain: Path, *args: str, now: str = NOW) -> str:  # type: ignore[no-untyped-def]
    return cli("schedule", "--locale", "en", *args, db=url, now=now, config=chain).output


def _tasks(cli, url: str, chain: Path, patient: str = "P1") -> dict[str, dict]:  # type: ignore[no-untyped-def]
    rows = json.loads(cli("tasks", "--patient", patient, "--format", "json", db=url, config=chain).output)
    return {t["milestone"]: t for t in rows}


def _implant(cli, tmp: Path, url: str, chain: Path, occurred: str, *extra: str,  # type: ignore[no-untyped-def]
             header: list[str] | None = None) -> None:
    _import(cli, tmp, url, chain, "episodes.csv", header or EPISODE_HEADER,
            [["E1", "P1", "SH-DENT", "dental", "implant", occurred, "陈志远", *extra]])


@pytest.fixture
def implant(cli, tmp_path: Path, db_url: str, chain: Path) -> str:  # type: ignore[no-untyped-def]
    """P1 with an implant on 2026-11-20 at SH-DENT, scheduled."""
    _import(cli, tmp_path, db_url, chain, "patients.csv", PATIENT_HEADER,
            [["P1", "王秀英", "F", "1961-04-12", "13812345601", "SH-DENT"]])
    _implant(cli, tmp_path, db_url, chain, "2026-11-20T10:00")
    assert "4 tasks created" in _schedule(cli, db_url, chain)
    return db_url


def _date(text: str) -> str:
    return text[:10]


def test_a_his_correction_moves_the_open_tasks_due_and_window_together(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, implant: str, chain: Path) -> None:
    before = _tasks(cli, implant, chain)
    assert _date(before["review_3mo"]["due_at"]) == "2027-02-22"
    _implant(cli, tmp_path, implant, chain, "2026-10-01T10:00")  # the HIS had the wrong date
    out = _schedule(cli, implant, chain, now="2026-11-21T10:00+08:00")
    assert "4 moved" in out and "0 tasks created" in out, out
    after = _tasks(cli, implant, chain)
    review = after["review_3mo"]
    assert _date(review["due_at"]) == "2027-01-04"
    start, end = (datetime.fromisoformat(review[k]) for k in ("window_start", "window_end"))
    assert start <= datetime.fromisoformat(review["due_at"]) <= end  # the window moved with it
    assert end < datetime.fromisoformat(before["review_3mo"]["window_start"])
    assert {t["id"] for t in after.values()} == {t["id"] for t in before.values()}  # moved, not recreated
    # Running it again changes nothing.
    assert "0 moved, 0 cancelled, 4 left as they were" in _schedule(cli, implant, chain)


def test_a_corrected_procedure_cancels_what_no_longer_applies_and_keeps_calls_made(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, implant: str, chain: Path) -> None:
    first = _tasks(cli, implant, chain)["check_24h"]
    cli("record", str(first["id"]), "--outcome", "reached", "--answer", "bleeding_stopped=yes", db=implant,
        now="2026-11-21T10:30+08:00", user="zhang.li", config=chain)
    _import(cli, tmp_path, implant, chain, "episodes.csv", EPISODE_HEADER,
            [["E1", "P1", "SH-DENT", "dental", "extraction", "2026-11-20T10:00", "陈志远"]])
    out = _schedule(cli, implant, chain, now="2026-11-21T11:00+08:00")
    assert "cancelled" in out
    tasks = _tasks(cli, implant, chain)
    assert tasks["check_24h"]["status"] == "completed"  # a final task is never touched
    assert {tasks[m]["status"] for m in ("review_3mo", "review_6mo", "review_1y")} == {"cancelled"}
    assert {m for m, t in tasks.items() if t["status"] == "open"}  # the extraction's own calls exist


def test_an_episode_cancelled_in_the_his_cancels_its_open_tasks(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, implant: str, chain: Path) -> None:
    _implant(cli, tmp_path, implant, chain, "2026-11-20T10:00", "已取消", header=[*EPISODE_HEADER, "状态"])
    assert "4 cancelled" in _schedule(cli, implant, chain)
    assert {t["status"] for t in _tasks(cli, implant, chain).values()} == {"cancelled"}
    # Back to active: the tasks come back (the same rows, reopened).
    _implant(cli, tmp_path, implant, chain, "2026-11-20T10:00", "正常", header=[*EPISODE_HEADER, "状态"])
    _schedule(cli, implant, chain)
    assert {t["status"] for t in _tasks(cli, implant, chain).values()} == {"open"}


def test_a_site_override_moves_open_tasks_and_a_disabled_milestone_cancels_them(  # type: ignore[no-untyped-def]
        cli, implant: str, chain: Path) -> None:
    site = chain.parent / "sites" / "sh-dent.yaml"
    site.write_text(site.read_text(encoding="utf-8") + (
        "overrides:\n"
        "  - milestone: dental.implant.review_3mo\n    offset: 4mo\n    window: [3mo, 5mo]\n"
        "  - milestone: dental.implant.review_6mo\n    disabled: true\n"
    ), encoding="utf-8")
    dry = json.loads(cli("schedule", "--dry-run", "--format", "json", db=implant, now=NOW, config=chain).output)
    assert {(c["milestone"], c["change"]) for c in dry} == {("review_3mo", "moved"), ("review_6mo", "cancelled")}
    for change in dry:
        assert set(change) == {"task_id", "episode_id", "milestone", "change", "before", "after"}
        assert set(change["before"]) == {"due_at", "window_start", "window_end", "status"}
    moved = next(c for c in dry if c["change"] == "moved")
    assert _date(moved["after"]["due_at"]) == "2027-03-22" and moved["before"]["status"] == "open"
    # The dry run wrote nothing.
    assert _date(_tasks(cli, implant, chain)["review_3mo"]["due_at"]) == "2027-02-22"
    assert "1 moved, 1 cancelled" in _schedule(cli, implant, chain)
    tasks = _tasks(cli, implant, chain)
    assert _date(tasks["review_3mo"]["due_at"]) == "2027-03-22"
    assert tasks["review_6mo"]["status"] == "cancelled"


def test_dry_run_summary_in_chinese(cli, implant: str, chain: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _implant(cli, tmp_path, implant, chain, "2026-10-01T10:00")
    out = cli("schedule", "--dry-run", "--locale", "zh_CN", db=implant, now=NOW, config=chain).output
    assert "调整 4 个" in out and "试运行" in out
    assert _date(_tasks(cli, implant, chain)["review_3mo"]["due_at"]) == "2027-02-22"  # nothing written


def test_do_not_contact_from_an_import_suppresses_and_a_later_import_reopens(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, implant: str, chain: Path) -> None:
    header = [*PATIENT_HEADER, "do_not_contact"]
    _import(cli, tmp_path, implant, chain, "patients.csv", header,
            [["P1", "王秀英", "F", "1961-04-12", "13812345601", "SH-DENT", "是"]])
    assert {t["status"] for t in _tasks(cli, implant, chain).values()} == {"suppressed"}
    worklist = json.loads(cli("worklist", "--site", "SH-DENT", "--format", "json", db=implant,
                              now="2026-11-21T10:00+08:00", user="zhang.li", config=chain).output)
    assert not worklist
    _import(cli, tmp_path, implant, chain, "patients.csv", header,
            [["P1", "王秀英", "F", "1961-04-12", "13812345601", "SH-DENT", "否"]])
    assert {t["status"] for t in _tasks(cli, implant, chain).values()} == {"open"}


def test_replan_moves_the_window_with_the_due_time(  # type: ignore[no-untyped-def]
        cli, implant: str, chain: Path, tmp_path: Path) -> None:
    # A provisional one-year review (2027 holidays not published yet), then the HIS date changes:
    # --replan restricts reconcile to provisional placements, and moves due and window together.
    _implant(cli, tmp_path, implant, chain, "2026-10-01T10:00")
    _schedule(cli, implant, chain, "--replan")
    review = _tasks(cli, implant, chain)["review_1y"]
    start, due, end = (datetime.fromisoformat(review[k]) for k in ("window_start", "due_at", "window_end"))
    assert start <= due <= end
    assert _date(review["due_at"]).startswith("2027-10")


def test_a_dry_run_with_nothing_to_change_says_so_in_one_line(cli, implant: str, chain: Path) -> None:  # type: ignore[no-untyped-def]
    out = cli("schedule", "--dry-run", "--locale", "en", db=implant, now=NOW, config=chain).output
    assert out.strip().splitlines() == [
        "1 episodes: 0 tasks created, 0 moved, 0 cancelled, 4 left as they were (dry run: nothing written)"]
    assert json.loads(cli("schedule", "--dry-run", "--format", "json", db=implant, now=NOW, config=chain).output) == []
