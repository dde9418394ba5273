"""One call, one complaint (issue 14 item 14): every category it touches, the staff member named in `staff`,
the criticism in the description, first to the role the site names (default 执行院长助理, seed 002)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clinic_data import seed
from clinic_data import task_id as tid
from conftest import ROOT

NOW = "2026-11-23T10:05+08:00"


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    seed(cli, tmp_path, db_url, [
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["H1", "刘建国", "M", "1948-05-05", "13512345616", "BJ-HOSP"],
    ], [
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E5", "H1", "BJ-HOSP", "inpatient", "discharge", "2026-11-17T10:00", "王建华"],
    ])
    return db_url


def record(cli, url: str, task: int, *answers: str, user: str, note: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    args = ["record", str(task), "--outcome", "reached", "--format", "json"]
    for a in answers:
        args += ["--answer", a]
    if note:
        args += ["--note", note]
    return json.loads(cli(*args, db=url, now=NOW, user=user).output)


def complaints(cli, url: str, user: str = "chen.jing") -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli("complaints", "list", "--format", "json", db=url, now=NOW, user=user).output)


def test_low_satisfaction_a_criticism_and_a_complaint_are_one_complaint(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    data = record(cli, clinic, tid(cli, clinic, "D2", "check_1w"), "overall_satisfaction=1", "complaint=是",
                  "staff_criticism=陈志远拔牙时很不耐烦", user="zhang.li", note="想要个说法")
    assert [a["kind"] for a in data["actions"]].count("complaint") == 1
    [row] = complaints(cli, clinic)
    assert row["categories"] == ["staff_or_service", "other"] and row["category"] == "staff_or_service"
    assert row["staff"] == "陈志远"
    assert "陈志远拔牙时很不耐烦" in row["description"] and "想要个说法" in row["description"]
    assert row["handler"] == "执行院长助理"


def test_several_dissatisfied_dimensions_are_one_complaint_with_every_category(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    record(cli, clinic, tid(cli, clinic, "H1", "post_discharge"), "sat_attitude=1", "sat_tests_fees_reasonable=1",
           "sat_medical_quality=2", user="liu.min")
    [row] = complaints(cli, clinic)
    assert set(row["categories"]) == {"staff_or_service", "rules_misunderstanding", "treatment_effect"}
    assert row["staff"] is None  # nobody was named


def test_the_site_names_who_answers_complaints_first(cli, tmp_path: Path, clinic: str) -> None:  # type: ignore[no-untyped-def]
    chain_dir = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    site = chain_dir / "sites" / "sh-dent.yaml"
    handler = "complaint_handler: {zh_CN: 客服主管, en: patient service lead}\n"
    site.write_text(site.read_text(encoding="utf-8") + handler, encoding="utf-8")
    cli("record", str(tid(cli, clinic, "D2", "check_1w")), "--outcome", "reached", "--answer", "complaint=yes",
        db=clinic, now=NOW, user="zhang.li", config=chain_dir / "chain.yaml")
    [row] = complaints(cli, clinic)
    assert row["handler"] == "客服主管"
