"""``followup report``: figures counted by hand from a dataset built through the public CLI.

The dataset (week 2026-W47, Monday 16 – Sunday 22 November 2026, Asia/Shanghai):

SH-DENT, scaling (one next-day call each, window = 1–2 days after the cleaning),
coordinator zhang.li:

=====  ===========================================  ===========================
task   what happened                                 counts as
=====  ===========================================  ===========================
R001   reached 17th 10:30; overall 5, recommend 10,  reached on time
       praises 林雪, suggestion "=HYPERLINK(...)"
R002   reached 17th 11:00; overall 4, recommend 9,   reached on time
       praises 林雪, suggestion with a phone number
R003   reached 19th 15:40 (window closed 18th);      reached late; 2 complaints
       overall 2, recommend 3, criticises 宋佳
R004   no answer, powered off, no answer             unsuccessful (unreachable)
R005   powered off once                              open (unreachable)
R006   never called                                  open
R007   no answer, busy, reached 18th 16:00; overall  reached on time after 3
       3, recommend 7, fever -> escalation           attempts
R008   do-not-contact before the call                suppressed: not due
R009   previous week (W46): reached, overall 5,      previous period
       recommend 10
=====  ===========================================  ===========================

SH-AES, hair (wang.fang): one consultation lead booked, one visit-without-treatment
lead refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

NOW = "2026-11-23T09:00+08:00"  # Monday: the weekly summary of W47
IMPORT_AT = "2026-11-01T09:00+08:00"
HYPERLINK = '=HYPERLINK("http://evil.example","click")'

PATIENTS = """patient_id,name,gender,birth_date,phone,site,locale
R001,王秀英,F,1951-04-12,13812341234,SH-DENT,zh_CN
R002,李强,M,1986-09-03,13912340002,SH-DENT,zh_CN
R003,张伟,M,1978-01-22,13712340003,SH-DENT,zh_CN
R004,刘洋,F,1995-06-30,13612340004,SH-DENT,zh_CN
R005,陈子涵,F,1990-11-08,13912345678,SH-DENT,zh_CN
R006,杨建国,M,1958-02-14,13412340006,SH-DENT,zh_CN
R007,赵敏,F,1990-12-01,18812340007,SH-DENT,zh_CN
R008,黄磊,M,1982-07-19,18912340008,SH-DENT,zh_CN
R009,周婷,F,1993-03-25,15012340009,SH-DENT,zh_CN
H001,朱浩,M,1992-09-29,15612340010,SH-AES,zh_CN
H002,胡军,M,1979-12-12,15712340011,SH-AES,zh_CN
"""

EPISODES = """\
episode_id,patient_id,site,specialty,procedure,occurred_at,doctor,department,diagnosis,notes,restored
RE1,R001,SH-DENT,dental,scaling,2026-11-16T10:00:00+08:00,林雪,牙周科,,,
RE2,R002,SH-DENT,dental,scaling,2026-11-16T10:00:00+08:00,林雪,牙周科,,,
RE3,R003,SH-DENT,dental,scaling,2026-11-16T10:00:00+08:00,宋佳,牙周科,,,
RE4,R004,SH-DENT,dental,scaling,2026-11-16T10:00:00+08:00,宋佳,牙周科,,,
RE5,R005,SH-DENT,dental,scaling,2026-11-17T10:00:00+08:00,林雪,牙周科,,,
RE6,R006,SH-DENT,dental,scaling,2026-11-17T10:00:00+08:00,林雪,牙周科,,,
RE7,R007,SH-DENT,dental,scaling,2026-11-17T10:00:00+08:00,宋佳,牙周科,,,
RE8,R008,SH-DENT,dental,scaling,2026-11-17T10:00:00+08:00,宋佳,牙周科,,,
RE9,R009,SH-DENT,dental,scaling,2026-11-10T10:00:00+08:00,林雪,牙周科,,,
HE1,H001,SH-AES,hair,consultation,2026-11-16T10:00:00+08:00,邓涛,植发科,,,
HE2,H002,SH-AES,hair,visit_without_treatment,2026-11-16T10:00:00+08:00,邓涛,植发科,,,
"""


def _tasks(cli, url: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The first task of each patient (by due time): the one the week's calls are about."""
    rows = json.loads(cli("tasks", "--format", "json", db=url).output)
    found: dict[str, int] = {}
    for row in rows:
        found.setdefault(row["patient_id"], row["id"])
    return found


def _import(cli, url: str, tmp_path: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The patients and episodes imported and scheduled: no call made yet."""
    (tmp_path / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (tmp_path / "episodes.csv").write_text(EPISODES, encoding="utf-8")
    cli("import", str(tmp_path / "patients.csv"), db=url, now=IMPORT_AT)
    cli("import", str(tmp_path / "episodes.csv"), db=url, now=IMPORT_AT)
    cli("schedule", db=url, now=IMPORT_AT)
    return _tasks(cli, url)


def build(cli, url: str, tmp_path: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    t = _import(cli, url, tmp_path)
    cli(
        "patients",
        "dnc",
        "R008",
        "--reason",
        "asked not to be called",
        db=url,
        now="2026-11-17T12:00+08:00",
    )

    def record(patient: str, at: str, outcome: str, *answers: str, user: str = "zhang.li") -> None:
        args = ["record", str(t[patient]), "--outcome", outcome]
        for answer in answers:
            args += ["--answer", answer]
        cli(*args, db=url, now=at, user=user)

    record("R009", "2026-11-11T10:30+08:00", "reached", "overall_satisfaction=5", "recommend=10")
    record(
        "R001",
        "2026-11-17T10:30+08:00",
        "reached",
        "overall_satisfaction=5",
        "recommend=10",
        "staff_praise=林雪",
        f"suggestions={HYPERLINK}",
    )
    record(
        "R002",
        "2026-11-17T11:00+08:00",
        "reached",
        "overall_satisfaction=4",
        "recommend=9",
        "staff_praise= 林雪 ",
        "suggestions=周末也能预约就好了，请回电13800001111",
    )
    record("R004", "2026-11-17T10:05+08:00", "no_answer")
    record("R004", "2026-11-17T15:35+08:00", "powered_off")
    record("R004", "2026-11-18T10:05+08:00", "no_answer")
    record("R005", "2026-11-18T10:10+08:00", "powered_off")
    record("R007", "2026-11-18T10:15+08:00", "no_answer")
    record("R007", "2026-11-18T15:40+08:00", "busy")
    record(
        "R007",
        "2026-11-18T16:00+08:00",
        "reached",
        "overall_satisfaction=3",
        "recommend=7",
        "fever=yes",
    )
    record(
        "R003",
        "2026-11-19T15:40+08:00",
        "reached",
        "overall_satisfaction=2",
        "recommend=3",
        "staff_criticism=宋佳",
    )
    record("H001", "2026-11-17T10:00+08:00", "booked", user="wang.fang")
    record("H002", "2026-11-18T10:00+08:00", "refused", user="wang.fang")

    escalations = json.loads(cli("escalations", "list", "--format", "json", db=url).output)
    assert len(escalations) == 1
    cli(
        "escalations",
        "resolve",
        str(escalations[0]["id"]),
        "--how",
        "seen by Dr 宋佳",
        db=url,
        now="2026-11-18T20:00+08:00",
        user="song.jia",  # the attending doctor, assigned
    )
    complaints = json.loads(cli("complaints", "list", "--format", "json", db=url).output)
    # one call, one complaint with all its categories (low satisfaction and a criticism of 宋佳)
    assert [c["categories"] for c in complaints] == [["staff_or_service", "other"]]
    answered = complaints[0]
    cli(
        "complaints",
        "respond",
        str(answered["id"]),
        "--text",
        "已向患者致歉",
        db=url,
        now="2026-11-20T10:00+08:00",
        user="chen.jing",
    )
    cli(
        "complaints",
        "close",
        str(answered["id"]),
        db=url,
        now="2026-11-21T10:00+08:00",
        user="chen.jing",
    )
    return t


def report(cli, url: str, *args: str, now: str = NOW, user: str = "chen.jing", ok: bool = True):  # type: ignore[no-untyped-def]
    return cli("report", *args, db=url, now=now, user=user, ok=ok)


def report_json(cli, url: str, *args: str, **kw) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return json.loads(report(cli, url, *args, "--format", "json", **kw).output)


# -- the week counted by hand ----------------------------------------------------------------------
def test_weekly_figures_match_the_hand_count(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    r = report_json(cli, db_url, "--site", "SH-DENT")
    assert r["period"]["label"] == "2026-W47" and r["period"]["previous"] == "2026-W46"
    f = r["figures"]
    assert {
        k: f[k]
        for k in ("due", "attempted", "reached", "reached_in_window", "unsuccessful", "open")
    } == {
        "due": 7,
        "attempted": 6,
        "reached": 4,
        "reached_in_window": 3,
        "unsuccessful": 1,
        "open": 2,
    }
    assert f["coverage"] == round(6 / 7, 4)
    assert f["follow_up_rate"] == round(4 / 7, 4)
    assert f["on_time_rate"] == 0.75
    assert f["avg_attempts_per_reached"] == 1.5  # (1 + 1 + 1 + 3) / 4
    assert f["satisfaction_n"] == 4 and f["overall_satisfaction_rate"] == 0.5  # 5, 4 of 5, 4, 2, 3
    assert f["nps_n"] == 4 and f["nps"] == 25.0  # promoters 10, 9; detractor 3; passive 7
    assert f["small_sample"]["follow_up_rate"] is True

    assert (
        r["previous"]["due"] == 1
        and r["previous"]["follow_up_rate"] == 1.0
        and r["previous"]["nps"] == 100.0
    )
    assert r["delta"]["follow_up_rate"] == round(4 / 7 - 1, 4)
    assert r["delta"]["coverage"] == round(6 / 7 - 1, 4)
    assert r["delta"]["nps"] == -75.0 and r["delta"]["overall_satisfaction_rate"] == -0.5

    overall = next(s for s in r["satisfaction"] if s["dimension"] == "overall")
    assert overall == {
        "dimension": "overall",
        "n": 4,
        "mean": 3.5,
        "top2": 2,
        "top2_rate": 0.5,
        "small_sample": True,
        "label": "总体满意度",
    }
    assert all(
        s["dimension"] != "recommend" for s in r["satisfaction"]
    )  # 0–10: NPS, not a 1–5 scale

    assert r["complaints"] == {
        "opened": 1,
        "responded_within_3d": 1,
        "responded_within_3d_rate": 1.0,
        "overdue": 0,
        "closed": 1,
        "by_category": [  # the one complaint, under each of its categories
            {"category": "other", "opened": 1, "label": "其他"},
            {"category": "staff_or_service", "opened": 1, "label": "人员或服务"},
        ],
    }
    assert r["escalations"] == {"opened": 1, "resolved": 1, "overdue": 0, "median_hours_to_resolve": 4.0}
    assert r["staff"] == [
        {"staff": "林雪", "praise": 2, "criticism": 0},
        {"staff": "宋佳", "praise": 0, "criticism": 1},
    ]
    # zhang.li: 17th 10:05–15:35 (5.5 h, 4 calls), 18th 10:05–16:00 (5 h 55 min, 5 calls),
    # 19th one call (counted as 1 h)
    hours = 5.5 + (5 + 55 / 60) + 1
    assert r["coordinators"] == [
        {
            "coordinator": "zhang.li",
            "attempts": 10,
            "reached": 4,
            "calling_hours": round(hours, 2),
            "calls_per_hour": round(10 / hours, 2),
            "name": "张丽",
            "qa_reviewed": 0,  # no call of hers was scored (followup qa score)
            "qa_avg_score": None,
        }
    ]
    assert r["sales"]["leads"] == 0  # no sales procedures at a dental site

    lists = r["lists"]
    assert [(u["patient_id"], u["status"], u["last_outcome"]) for u in lists["unreachable"]] == [
        ("R004", "unsuccessful", "no_answer"),
        ("R005", "open", "powered_off"),
    ]
    assert lists["unreachable"][1]["phone"] == "139****5678"
    assert [(s["patient_id"], s["date"]) for s in lists["suggestions"]] == [
        ("R001", "2026-11-17"),
        ("R002", "2026-11-17"),
    ]
    assert lists["suggestions"][0]["text"] == HYPERLINK
    assert lists["suggestions"][1]["text"] == "周末也能预约就好了，请回电138****1111"
    assert lists["open_complaints"] == []  # the one complaint of the week was answered and closed
    assert set(r["definitions"]) >= {
        "due",
        "coverage",
        "follow_up_rate",
        "on_time_rate",
        "nps",
        "coordinators",
    }


def test_chain_wide_sales_and_breakdowns(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    r = report_json(cli, db_url, "week", "--by", "site", "--locale", "en", "--trend", "6")
    assert r["period"]["sites"] == ["BJ-HOSP", "SH-AES", "SH-DENT"]
    assert (
        r["figures"]["due"] == 9 and r["figures"]["reached"] == 5 and r["figures"]["refused"] == 1
    )
    assert r["sales"] == {
        "leads": 2,
        "followed_up": 2,
        "booked": 1,
        "conversion_rate": 0.5,
        "small_sample": True,
    }
    by_site = {row["key"]: row for row in r["breakdown"]}
    assert set(by_site) == {"SH-AES", "SH-DENT"}
    assert (
        by_site["SH-DENT"]["due"],
        by_site["SH-DENT"]["reached"],
        by_site["SH-DENT"]["nps"],
    ) == (7, 4, 25.0)
    assert (by_site["SH-AES"]["due"], by_site["SH-AES"]["reached"]) == (2, 1)
    assert by_site["SH-AES"]["label"] == "Kanghua Aesthetics Jing'an"
    assert {row["key"]: row["due"] for row in r["sites"]} == {
        "BJ-HOSP": 0,
        "SH-AES": 2,
        "SH-DENT": 7,
    }
    assert [t["period"] for t in r["trend"]] == [f"2026-W{w}" for w in range(42, 48)]
    assert [t["due"] for t in r["trend"]][-2:] == [1, 9]
    # The trend, the period and the one before come from one pass: they agree figure for figure.
    for row, figures in ((r["trend"][-1], r["figures"]), (r["trend"][-2], r["previous"])):
        assert {k: row[k] for k in ("due", "reached", "coverage", "nps")} == {
            k: figures[k] for k in ("due", "reached", "coverage", "nps")
        }
    # Only html draws the trend; other formats carry it when asked for (--trend N).
    assert report_json(cli, db_url, "week")["trend"] == []
    assert [t["period"] for t in report_json(cli, db_url, "week", "--trend", "2")["trend"]] == [
        "2026-W46",
        "2026-W47",
    ]

    specialty = report_json(cli, db_url, "--specialty", "hair", "--by", "procedure")
    assert specialty["figures"]["due"] == 2
    assert [(row["key"], row["due"]) for row in specialty["breakdown"]] == [
        ("hair.consultation", 1),
        ("hair.visit_without_treatment", 1),
    ]

    coord = report_json(cli, db_url, "--site", "SH-DENT", "--by", "coordinator")
    assert [
        (row["key"], row["due"], row["reached"], row["satisfaction_n"])
        for row in coord["breakdown"]
    ] == [("", 1, 0, 0), ("zhang.li", 6, 4, 4)]

    staff = report_json(cli, db_url, "--site", "SH-DENT", "--by", "staff")
    rows = {row["key"]: row for row in staff["breakdown"]}
    assert (rows["林雪"]["due"], rows["林雪"]["reached"], rows["林雪"]["praise"]) == (4, 2, 2)
    assert (rows["宋佳"]["due"], rows["宋佳"]["reached"], rows["宋佳"]["criticism"]) == (3, 2, 1)


def test_a_coordinator_reports_only_on_their_own_site(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    own = report_json(cli, db_url, user="zhang.li")
    assert own["period"]["sites"] == ["SH-DENT"] and own["figures"]["due"] == 7
    refused = report(cli, db_url, "--site", "SH-AES", user="zhang.li", ok=False)
    assert refused.exit_code == 1 and "不能查看门店 SH-AES" in refused.output  # her language: the chain's
    english = report(cli, db_url, "--site", "SH-AES", "--locale", "en", user="zhang.li", ok=False)
    assert "not on site SH-AES" in english.output


# -- one set of figures, five formats --------------------------------------------------------------
def _csv_rows(text: str) -> dict[tuple[str, str, str], str]:
    assert text.startswith("\ufeff")  # UTF-8 with a BOM: Excel on Windows shows the Chinese right
    reader = csv.reader(io.StringIO(text[1:]))
    assert next(reader) == ["section", "group", "key", "value"]
    return {(s, g, k): v for s, g, k, v in reader}


def _as_csv(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_json_csv_and_xlsx_carry_the_same_figures(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    build(cli, db_url, tmp_path)
    data = report_json(cli, db_url, "--site", "SH-DENT")
    rows = _csv_rows(report(cli, db_url, "--site", "SH-DENT", "--format", "csv").output)
    for key in (
        "due",
        "attempted",
        "reached",
        "coverage",
        "follow_up_rate",
        "on_time_rate",
        "unsuccessful",
        "nps",
        "overall_satisfaction_rate",
    ):
        assert rows[("figures", "", key)] == _as_csv(data["figures"][key]), key
    assert rows[("figures", "", "coverage")] == "0.8571"
    assert rows[("delta", "", "follow_up_rate")] == _as_csv(data["delta"]["follow_up_rate"])
    assert rows[("satisfaction", "overall", "mean")] == "3.5"
    assert rows[("complaints.by_category", "staff_or_service", "opened")] == "1"
    assert rows[("coordinators", "zhang.li", "attempts")] == "10"
    assert rows[("lists.unreachable", "2", "phone")] == "139****5678"
    assert (
        rows[("lists.suggestions", "1", "text")] == "'" + HYPERLINK
    )  # stays text in a spreadsheet

    out = tmp_path / "week.xlsx"
    report(cli, db_url, "--site", "SH-DENT", "--format", "xlsx", "--out", str(out))
    book = load_workbook(out)
    # sheets and headings in the reader's language (SH-DENT's: zh_CN), headings frozen
    assert book.sheetnames == ["回访概况", "月末补打名单", "建议与需求", "未结投诉", "未处理的上报医生", "指标说明",
                               "数据"]
    assert all(ws.freeze_panes for ws in book)
    human = list(book["回访概况"].iter_rows(values_only=True))
    assert human[2][:2] == ("指标", "2026-W47") and ("应回访", 7) == human[3][:2]
    assert not any(isinstance(v, str) and v in ("coverage", "first_day", "kind") for r in human for v in r)
    assert book["回访概况"].column_dimensions["A"].width >= 10  # sized to its labels
    figures = {  # the long layout, for machines: the same keys and values as the CSV
        (r[0], r[1] or "", r[2]): r[4]
        for r in book["数据"].iter_rows(min_row=2, values_only=True)
    }
    for (section, group, key), text in rows.items():
        if section.startswith("lists."):
            continue
        value = figures[(section, group, key)]
        if isinstance(value, (int, float)) and not isinstance(
            value, bool
        ):  # Excel keeps 25.0 as 25
            assert value == float(text), (section, group, key)
        else:
            assert _as_csv(value) == text, (section, group, key)
    assert figures[("figures", "", "due")] == 7 and figures[
        ("figures", "", "follow_up_rate")
    ] == round(4 / 7, 4)
    sheet = book["建议与需求"]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("内容") + 1)
    assert cell.value == HYPERLINK and cell.data_type == "s"
    unreachable = list(book["月末补打名单"].iter_rows(values_only=True))
    assert unreachable[0][3] == "电话" and [r[3] for r in unreachable[1:]] == ["136****0004", "139****5678"]
    assert not {r[6] for r in unreachable[1:]} & {"check_24h", "check_1w", "check_2h"}  # names, not keys
    definitions = {r[0]: r[2] for r in book["指标说明"].iter_rows(min_row=2, values_only=True)}
    assert definitions["coverage"] == data["definitions"]["coverage"]


def test_no_full_phone_number_in_any_format(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    build(cli, db_url, tmp_path)
    outputs = [
        report(cli, db_url, "--site", "SH-DENT", "--format", fmt).output
        for fmt in ("table", "json", "csv", "html")
    ]
    report(cli, db_url, "--site", "SH-DENT", "--format", "xlsx", "--out", str(tmp_path / "r.xlsx"))
    book = load_workbook(tmp_path / "r.xlsx")
    outputs.append(
        " ".join(str(c) for ws in book for row in ws.iter_rows(values_only=True) for c in row)
    )
    for text in outputs:
        assert "139****5678" in text
        for full in ("13912345678", "13612340004", "13800001111"):
            assert full not in text


def test_table_and_html_render_the_same_figures(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    table = report(cli, db_url, "--site", "SH-DENT", "--locale", "en").output
    assert "Follow-up rate" in table and "57.1%" in table and "85.7%" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    page = report(cli, db_url, "--site", "SH-DENT", "--format", "html", "--by", "site").output
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    # --trend 0: the page leaves the trend chart out instead of drawing an empty one.
    no_trend = report(cli, db_url, "--site", "SH-DENT", "--format", "html", "--trend", "0").output
    assert no_trend.count("<svg") == 2 and "57.1%" in no_trend
    assert "57.1%" in page and "回访率" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "").replace(
        "http://evil.example", ""
    )
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert (
        "=HYPERLINK(&#34;http://evil.example&#34;" in page
        or "=HYPERLINK(&quot;http://evil.example" in page
    )
    out = tmp_path / "r.html"
    report(
        cli, db_url, "--site", "SH-DENT", "--format", "html", "--out", str(out), "--locale", "en"
    )
    assert "Follow-up rate by site" in out.read_text(encoding="utf-8")


# -- empty periods and time ------------------------------------------------------------------------
def test_an_empty_period_gives_zeros_and_no_division_errors(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    r = report_json(cli, db_url, "month", "--period", "2020-02")
    f = r["figures"]
    assert (f["due"], f["attempted"], f["reached"], f["unsuccessful"], f["open"]) == (0, 0, 0, 0, 0)
    assert (
        f["coverage"] is None
        and f["follow_up_rate"] is None
        and f["on_time_rate"] is None
        and f["nps"] is None
    )
    assert (
        r["complaints"]["responded_within_3d_rate"] is None
        and r["escalations"]["median_hours_to_resolve"] is None
    )
    assert (
        r["sales"]["conversion_rate"] is None
        and r["satisfaction"] == []
        and r["lists"]["unreachable"] == []
    )
    assert r["delta"]["follow_up_rate"] is None
    for fmt in ("table", "csv", "html"):
        report(cli, db_url, "month", "--period", "2020-02", "--format", fmt, "--by", "coordinator")
    report(
        cli,
        db_url,
        "--format",
        "xlsx",
        "--out",
        str(tmp_path / "empty.xlsx"),
        "--period",
        "2020-W07",
    )


@pytest.mark.parametrize(
    ("now", "week"),
    [
        ("2026-11-23T09:00+08:00", "2026-W47"),  # Monday morning: last week
        ("2026-11-23T00:05+08:00", "2026-W47"),  # just after local midnight (still Sunday in UTC)
        ("2026-11-22T23:55+08:00", "2026-W46"),  # Sunday night: W47 is not complete yet
        ("2026-11-29T12:00+08:00", "2026-W47"),  # the following Sunday
    ],
)
def test_the_monday_rule(cli, db_url, now, week):  # type: ignore[no-untyped-def]
    period = report_json(cli, db_url, "--site", "SH-DENT", now=now)["period"]
    assert period["label"] == week
    monday = datetime.fromisoformat(period["start"])
    assert monday.weekday() == 0 and monday.hour == 0 and period["timezone"] == "Asia/Shanghai"


def test_quarter_boundaries_are_local_midnights(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.db.engine import session_scope
    from core.db.models import Task
    from core.db.uow import outside

    t = _import(cli, db_url, tmp_path)
    with session_scope(
        db_url
    ) as session:  # due times no scheduler would pick: right around midnight
        for patient, due in (
            ("R001", "2026-09-30T23:30+08:00"),
            ("R002", "2026-10-01T00:30+08:00"),
        ):
            with outside(session):
                session.execute(
                    update(Task).where(Task.id == t[patient]).values(due_at=datetime.fromisoformat(due))
                )
    q3 = report_json(cli, db_url, "quarter", "--period", "2026-Q3", "--site", "SH-DENT")
    q4 = report_json(cli, db_url, "--period", "2026-Q4", "--site", "SH-DENT")
    assert q3["period"]["start_utc"] == "2026-06-30T16:00:00+00:00"
    assert q3["period"]["end_utc"] == "2026-09-30T16:00:00+00:00" == q4["period"]["start_utc"]
    assert q3["figures"]["due"] == 1
    assert (
        q4["figures"]["due"] == 8
    )  # R002 (00:30 on 1 October) and the seven other November cleanings
    default = report_json(cli, db_url, "quarter", "--site", "SH-DENT", now="2026-10-01T00:10+08:00")
    assert default["period"]["label"] == "2026-Q3" and default["figures"]["due"] == 1
    before = report_json(cli, db_url, "quarter", "--site", "SH-DENT", now="2026-09-30T23:50+08:00")
    assert before["period"]["label"] == "2026-Q2"


def english_words_of(text: str) -> list[str]:
    from core.plugins import get_plugins
    from tests.test_zh_screens import NAMES, _codes, english_words

    return english_words(text, NAMES | _codes(get_plugins()) | {"nope", "November"})  # what was typed


def test_option_errors_are_clear(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    """Each mistake gives one line naming it (the runner re-raises any traceback)."""
    missing = tmp_path / "no-such-dir"
    for args, says in (
        (("month", "--period", "2026-W47"), "is a week"),
        (("--period", "November"), "2026-W47, 2026-11 or 2026-Q4"),
        (("--period", "2026-W60"), "does not exist"),
        (("--format", "xlsx"), "--out"),
        (("--site", "NOPE"), "unknown site 'NOPE'"),
        (("--specialty", "nope"), "unknown specialty 'nope'"),
        (("--out", str(missing / "r.txt")), "cannot write --out"),
        (("--format", "csv", "--out", str(missing / "r.csv")), "cannot write --out"),
        (("--format", "xlsx", "--out", str(missing / "r.xlsx")), "cannot write --out"),
    ):
        result = report(cli, db_url, *args, "--locale", "en", ok=False)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and says in lines[0], (args, result.output)
        chinese = report(cli, db_url, *args, ok=False)  # the chain's language: zh_CN
        assert chinese.exit_code == 1 and chinese.output.startswith("错误："), chinese.output
        assert english_words_of(chinese.output) == [], chinese.output
    assert not missing.exists()


def test_every_label_and_definition_exists_in_both_locales():  # no database
    from core.reports.labels import LOCALES, definitions, label
    from core.reports.render import HEADLINE, LIST_COLUMNS, column_label

    headers = {c for columns in LIST_COLUMNS.values() for c in columns}
    for locale in LOCALES:
        defined = definitions(locale)
        # the CLI promises it: every figure of the headline table is defined in the footer
        assert [name for name in HEADLINE if not defined.get(name)] == [], locale
        by = (f"by_{name}" for name in ("site", "specialty", "procedure", "coordinator", "staff"))
        assert [key for key in (*HEADLINE, *defined, *by) if label(key, locale) == key] == [], locale
        assert [c for c in headers if column_label(c, locale) == c] == [], locale
    zh, en = definitions("zh_CN"), definitions("en")
    assert list(zh) == list(en) and all(zh[k] != en[k] for k in zh)


def test_sales_are_leads_and_satisfaction_only_one_to_five_scales(plugins):  # type: ignore[no-untyped-def]
    from core.reports import scope_from_plugins

    scope = scope_from_plugins(plugins, ["SH-DENT"], None)
    # dental invitations and missed appointments are bookable, but they rebook patients, not leads
    assert scope.sales_procedures == [("hair", "consultation"), ("hair", "visit_without_treatment")]
    assert "overall_satisfaction" in scope.scale_questions["dental"]
    assert "pain_level" not in scope.scale_questions["dental"]  # 0–10
    assert "sat_attitude" in scope.scale_questions["inpatient"]


def test_period_arithmetic():  # no database
    from zoneinfo import ZoneInfo

    from core.reports.period import parse_period

    tz = ZoneInfo("Asia/Shanghai")
    week = parse_period("2026-w53", tz)
    assert (week.label, week.first.isoformat(), week.last.isoformat()) == (
        "2026-W53",
        "2026-12-28",
        "2027-01-03",
    )
    assert week.shifted(1).label == "2027-W01"
    month = parse_period("2026-02", tz)
    assert (month.previous().label, month.last.day, len(month.day_starts())) == ("2026-01", 28, 29)
    quarter = parse_period("2026-Q1", tz, "quarter")
    assert quarter.previous().label == "2025-Q4" and quarter.shifted(-5).label == "2024-Q4"


# -- the picture -----------------------------------------------------------------------------------
@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="headless Chromium not installed (apt-get install -y chromium)",
)
def test_html_renders_in_headless_chromium(cli, tmp_path):  # type: ignore[no-untyped-def]
    """scripts/render_report_png.sh runs this with REPORT_PNG set, to keep the picture."""
    url = f"sqlite:///{tmp_path / 'followup.db'}"
    build(cli, url, tmp_path)
    png = Path(os.environ.get("REPORT_PNG") or tmp_path / "report.png")
    page = png.with_suffix(".html")
    locale = os.environ.get("REPORT_LOCALE", "zh_CN")
    report(cli, url, "--format", "html", "--out", str(page), "--by", "site", "--locale", locale)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--screenshot={png}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert png.stat().st_size > 10_000


# -- a period still running ------------------------------------------------------------------------
def test_a_running_period_is_marked_in_every_format_and_counts_only_tasks_already_due(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    build(cli, db_url, tmp_path)
    tasks = json.loads(cli("tasks", "--site", "SH-DENT", "--format", "json", db=db_url, now=NOW).output)
    month = [t for t in tasks if t["due_at"].startswith("2026-11") and t["status"] not in ("suppressed", "expired")]
    through = "2026-11-18T09:00+08:00"
    due_by_now = [t for t in month if t["due_at"] < through]
    assert len(due_by_now) < len(month)  # November has calls still to come after Monday the 23rd
    running = report_json(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", now=through)
    assert running["period"]["running"] is True and running["period"]["through"] == through
    assert running["figures"]["due"] == len(due_by_now)  # not-yet-due calls do not lower the rates
    reached = sum(t["status"] in ("completed", "booked") for t in due_by_now)
    assert running["figures"]["follow_up_rate"] == round(reached / len(due_by_now), 4)
    later = report_json(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", now="2026-12-01T09:00+08:00")
    assert later["period"]["running"] is False and later["period"]["through"] is None
    assert later["figures"]["due"] == len(month)

    table = report(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", now=through).output
    assert "本期尚未结束：数据截至 2026-11-18 09:00，只计已到期的任务" in table
    english = report(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", "--locale", "en",
                     now=through).output
    assert "period still running: figures through 2026-11-18 09:00" in english
    csv_text = report(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", "--format", "csv",
                      "--no-bom", now=through).output
    assert not csv_text.startswith("\ufeff") and "period,,running,true" in csv_text
    html = report(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", "--format", "html",
                  now=through).output
    assert 'class="running"' in html and "本期尚未结束" in html
    out = tmp_path / "m.xlsx"
    report(cli, db_url, "month", "--period", "2026-11", "--site", "SH-DENT", "--format", "xlsx", "--out", str(out),
           now=through)
    assert "本期尚未结束" in load_workbook(out)["回访概况"]["A2"].value
    complete = report(cli, db_url, "month", "--period", "2026-10", "--site", "SH-DENT", now=through).output
    assert "本期尚未结束" not in complete


def test_praise_and_criticism_are_headed_as_comments_not_staff(cli, db_url, tmp_path):  # type: ignore[no-untyped-def]
    build(cli, db_url, tmp_path)
    r = report_json(cli, db_url, "--site", "SH-DENT")
    assert r["staff"]  # the hand-counted week has praise
    table = report(cli, db_url, "--site", "SH-DENT").output
    assert "评价内容" in table and "工作人员" not in table.split("表扬与批评")[1].split("\n\n")[0]


def test_a_report_read_through_head_ends_quietly(cli, tmp_path):  # type: ignore[no-untyped-def]
    """`followup report week | head -3`: the reader has gone; no error line (there is no --out), exit 0."""
    import sys

    url = f"sqlite:///{tmp_path / 'followup.db'}"
    build(cli, url, tmp_path)
    read, write = os.pipe()
    os.close(read)  # the reader went away before the first line: every write meets a closed pipe
    try:
        done = subprocess.run(
            [sys.executable, "-m", "core.cli.main", "--as", "chen.jing", "--db", url, "--now", NOW, "report", "week"],
            cwd=Path(__file__).resolve().parents[1], stdout=write, stderr=subprocess.PIPE, timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 0 and done.stderr.decode() == "", done.stderr.decode()
