"""The call scripts as a coordinator reads them through `followup script` (issue 14 items 6–12).

Every test builds a clinic through the CLI (import, schedule), then reads or records a task as a
coordinator would, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clinic_data import seed
from clinic_data import task_id as tid
from conftest import ROOT

from core.scripts import HANG_UP


def script(cli, url: str, task: int, now: str, locale: str | None = None, user: str = "admin") -> str:  # type: ignore[no-untyped-def]
    args = ["script", str(task)] + (["--locale", locale] if locale else [])
    return cli(*args, db=url, now=now, user=user).output


def spoken(text: str) -> str:
    """The script after the preparation card: what follows the opening line."""
    return text[text.index("【开场】") if "【开场】" in text else text.index("[Opening]"):]


# -- item 6: salutations ------------------------------------------------------------------------------

SALUTED = [
    ["S1", "欧阳娜", "F", "1946-03-02", "13812340001", "SH-DENT"],     # 80: elderly, compound surname
    ["S2", "阿依古丽·买买提", "F", "1990-05-06", "13812340002", "SH-DENT"],
    ["S3", "买买提", "M", "1985-07-08", "13812340003", "SH-DENT"],
    ["S4", "高佳怡", "F", "2012-06-01", "13812340004", "SH-DENT"],     # 14 on 2026-11-23
    ["S5", "司马光明", "M", "1980-01-01", "13812340005", "SH-DENT"],
]


@pytest.fixture
def saluted(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    seed(cli, tmp_path, db_url, SALUTED, [
        [f"E{i}", p[0], "SH-DENT", "dental", "scaling", "2026-11-22T10:00", "陈志远"] for i, p in enumerate(SALUTED)
    ])
    return db_url


NOW = "2026-11-23T10:05+08:00"


@pytest.mark.parametrize(("patient", "greeting", "never"), [
    ("S1", "请问是欧阳奶奶吗？", "欧奶奶"),
    ("S2", "请问是阿依古丽·买买提女士吗？", "阿女士"),
    ("S3", "请问是买买提先生吗？", "买先生"),
    ("S4", "请问是高佳怡的家长吗？", "高女士"),
    ("S5", "请问是司马先生吗？", "司先生"),
])
def test_salutation_in_the_opening(cli, saluted: str, patient: str, greeting: str, never: str) -> None:  # type: ignore[no-untyped-def]
    text = script(cli, saluted, tid(cli, saluted, patient, "check_1d"), NOW)
    assert greeting in text and never not in text


def test_a_minor_is_called_through_a_guardian(cli, saluted: str) -> None:  # type: ignore[no-untyped-def]
    text = script(cli, saluted, tid(cli, saluted, "S4", "check_1d"), NOW)
    assert "您是高佳怡本人吗" not in text and "家长或监护人" in text
    en = script(cli, saluted, tid(cli, saluted, "S4", "check_1d"), NOW, locale="en")
    assert "Hello, is that the parent or guardian of 高佳怡?" in en


def test_english_scripts_spell_compound_surnames_in_pinyin(cli, saluted: str) -> None:  # type: ignore[no-untyped-def]
    en = script(cli, saluted, tid(cli, saluted, "S1", "check_1d"), NOW, locale="en")
    assert "Hello, is that Ms Ouyang?" in en


def test_age_bands_are_configurable(cli, tmp_path: Path, saluted: str) -> None:  # type: ignore[no-untyped-def]
    """A chain that treats 14-year-olds as adults (minor_under: 14) greets 高佳怡 herself."""
    chain_dir = Path(shutil.copytree(ROOT / "config", tmp_path / "config"))
    chain = chain_dir / "chain.yaml"
    text = chain.read_text(encoding="utf-8")
    assert "    child_under: 14\n    minor_under: 18" in text
    chain.write_text(text.replace("    child_under: 14\n    minor_under: 18",
                                  "    child_under: 12\n    minor_under: 14"), encoding="utf-8")
    task = tid(cli, saluted, "S4", "check_1d")
    text = cli("script", str(task), db=saluted, now=NOW, config=chain).output
    assert "请问是高女士吗？" in text


# -- items 7, 8, 9: calendar days, doctors' titles, opening and closing ---------------------------------


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"],
        ["A2", "周婷", "F", "1995-02-14", "15612345615", "SH-AES"],
        ["H1", "张国栋", "M", "1946-08-01", "13512345616", "BJ-HOSP"],
        ["H2", "刘洋", "M", "1980-08-01", "13512345617", "BJ-HOSP"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-29T10:30", "陈志远"],
        ["E3", "A1", "SH-AES", "hair", "consultation", "2026-12-04T18:00", "邓涛"],
        ["E4", "A2", "SH-AES", "aesthetic", "double_eyelid", "2026-11-22T09:00", "林雪"],
        ["E5", "H1", "BJ-HOSP", "inpatient", "discharge", "2026-11-17T10:00", "赵明"],
        ["E6", "H2", "BJ-HOSP", "inpatient", "discharge", "2026-11-17T10:00", "赵明"],
    ], now="2026-11-23T08:00+08:00")
    return db_url


def test_relative_dates_count_calendar_days(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """Friday 18:00 read on Sunday morning is 前天 (2 days), not 昨天; one day reads the same at 10:00 and 11:00."""
    lead = tid(cli, clinic, "A1", "lead_care")
    zh = spoken(script(cli, clinic, lead, "2026-12-06T10:00+08:00"))
    assert "前天您向我们咨询过" in zh and "昨天" not in zh
    assert "You contacted us 2 days ago" in script(cli, clinic, lead, "2026-12-06T10:00+08:00", locale="en")
    week = tid(cli, clinic, "D2", "check_1w")
    for at in ("2026-12-06T10:00+08:00", "2026-12-06T11:00+08:00"):
        assert "您7天前在我们这里拔了牙" in script(cli, clinic, week, at)
        assert "had a tooth taken out with us 7 days ago" in script(cli, clinic, week, at, locale="en")


def test_a_visit_called_after_the_weekend_is_not_yesterday(cli, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """A paid visit on Friday whose next-day call is made on Monday: 3天前, never 昨天; a visit is treatment,
    so the satisfaction questions are asked."""
    seed(cli, tmp_path, db_url, [["V1", "王芳", "F", "1980-02-03", "13812340001", "SH-DENT"]],
         [["EV1", "V1", "SH-DENT", "dental", "visit", "2026-12-04T10:00", "陈志远"]], now="2026-12-04T12:00+08:00")
    task = tid(cli, db_url, "V1", "next_day")
    text = spoken(script(cli, db_url, task, "2026-12-07T10:00+08:00"))
    assert "3天前来" in text and "昨天" not in text and "您对这次就诊满意吗" in text
    assert "coming to Kanghua Dental Xuhui 3 days ago" in script(cli, db_url, task, "2026-12-07T10:00+08:00",
                                                                  locale="en")


def test_a_patient_hears_the_doctor_with_title(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    task = tid(cli, clinic, "D1", "check_24h")
    zh = spoken(script(cli, clinic, task, NOW))
    assert "陈医生也特别交代我们问问情况" in zh and "陈志远也特别交代" not in zh
    assert "Dr Chen asked us to check in as well" in script(cli, clinic, task, NOW, locale="en")
    lead = spoken(script(cli, clinic, tid(cli, clinic, "A1", "lead_care"), "2026-12-06T10:00+08:00"))
    assert "当时是邓医生给您解答的" in lead


@pytest.mark.parametrize(("patient", "milestone", "now"), [
    ("D1", "check_24h", NOW),
    ("A1", "lead_care", "2026-12-06T10:00+08:00"),
    ("A2", "check_1d", NOW),
    ("H1", "post_discharge", NOW),
])
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_script_opens_and_closes_as_seed_002_says(cli, clinic: str, patient: str, milestone: str, now: str,  # type: ignore[no-untyped-def]
                                                         locale: str) -> None:
    text = script(cli, clinic, tid(cli, clinic, patient, milestone), now, locale=locale).rstrip()
    lines = text.splitlines()
    assert lines[-1].endswith(HANG_UP[locale]) and text.count(HANG_UP[locale]) == 1
    if locale == "zh_CN":
        assert lines[-2].startswith("【致谢】谢谢您对") and "的信任" in lines[-2]
        opening = next(line for line in lines if line.startswith("【开场】"))
        assert opening.startswith("【开场】您好，请问是") and opening.endswith("吗？")
        assert "打扰您了" in text
        assert "您先挂电话吧" not in text and "请等对方先挂电话" not in text  # an instruction, not read out
    else:
        assert lines[-2].startswith("[Thanks] Thank you for your trust in")
        assert "Please hang up first" not in text


def test_treated_patients_get_the_standard_replies(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    text = script(cli, clinic, tid(cli, clinic, "D1", "check_24h"), NOW)
    assert "【对方满意时】非常感谢您对我们服务的认可" in text
    assert "【对方不满意时】很抱歉我们有些环节让您不满意" in text


# -- item 10: earlier attempts as they happened -----------------------------------------------------------


@pytest.mark.parametrize(("outcomes", "said", "not_said"), [
    (["no_answer"], "上次给您打电话没有人接", "不方便接听"),
    (["not_convenient"], "上次给您打电话时您不方便接听", "没有人接"),
    (["busy"], "上次给您打电话时一直占线", "不方便接听"),
    (["no_answer", "busy"], "之前给您打过2次电话（1次没有人接，1次占线）", "不方便接听"),
])
def test_earlier_attempts_are_acknowledged_as_they_happened(cli, clinic: str, outcomes: list[str], said: str,  # type: ignore[no-untyped-def]
                                                             not_said: str) -> None:
    task = tid(cli, clinic, "A2", "check_1d")
    at = ["2026-11-23T09:10+08:00", "2026-11-23T14:40+08:00"]
    for outcome, when in zip(outcomes, at, strict=False):
        cli("record", str(task), "--outcome", outcome, db=clinic, now=when, user="wang.fang")
    text = spoken(script(cli, clinic, task, "2026-11-23T16:50+08:00"))
    assert said in text and not_said not in text


# -- item 11: fit the audience ----------------------------------------------------------------------------


def test_a_lead_who_never_came_is_not_asked_about_satisfaction(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    lead = script(cli, clinic, tid(cli, clinic, "A1", "lead_care"), "2026-12-06T10:00+08:00")
    assert "您对这次就诊满意吗" not in lead and "推荐给亲友" not in lead and "【对方满意时】" not in lead
    treated = script(cli, clinic, tid(cli, clinic, "D1", "check_24h"), NOW)
    assert "您对这次就诊满意吗" in treated


def test_a_lead_cannot_be_recorded_with_a_satisfaction_answer(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    task = tid(cli, clinic, "A1", "lead_care")
    result = cli("record", str(task), "--outcome", "reached", "--answer", "overall_satisfaction=5",
                 db=clinic, now="2026-12-06T10:00+08:00", user="wang.fang", ok=False)
    assert result.exit_code != 0 and "overall_satisfaction" in result.output


def test_the_script_says_which_questions_an_elderly_patient_may_skip(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    elderly = spoken(script(cli, clinic, tid(cli, clinic, "H1", "post_discharge"), NOW))
    skip = [line for line in elderly.splitlines() if line.endswith("（可略）")]
    assert len(skip) >= 6 and any("病房的卫生" in line for line in skip)
    assert "【老年患者】标“（可略）”的题目可以不问" in elderly
    assert not any("红包" in line for line in skip)  # the core questions stay
    adult = spoken(script(cli, clinic, tid(cli, clinic, "H2", "post_discharge"), NOW))
    assert "（可略）" not in adult


# -- item 12: what the script calls a red flag, the rules escalate -----------------------------------------


def test_dental_day_one_severe_swelling_escalates(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    task = tid(cli, clinic, "D1", "check_24h")
    text = script(cli, clinic, task, NOW)
    assert "⚠ 危险信号：答“肿得厉害或越来越肿”时" in text
    data = json.loads(cli("record", str(task), "--outcome", "reached", "--answer", "swelling=3", "--format", "json",
                          db=clinic, now=NOW, user="zhang.li").output)
    assert [a["kind"] for a in data["actions"] if a["kind"] == "escalate"] == ["escalate"]
