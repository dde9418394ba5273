"""Everything a coordinator reads exists in zh_CN and en: summaries and errors come in the reader's language.

The language: ``--locale``, else the staff member's own (``staff[].locale``), else the chain's (zh_CN in the
demo chain). JSON output is the same in every language. Monday 2026-11-23 at SH-DENT: zhang.li reads the
chain's Chinese, anna.w (added here, ``locale: en``) English.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clinic_data import PATIENT_HEADER, seed, write_csv
from clinic_data import task_id as tid

from core.messages import MESSAGES, placeholders

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-23T10:05+08:00"
RECORD_KEYS = {"task", "outcome", "attempt_id", "counted", "previous_failed_at", "min_gap", "actions"}


def test_every_message_has_chinese_and_english_with_the_same_placeholders() -> None:
    for key, (zh, en) in MESSAGES.items():
        assert zh.strip() and en.strip(), key
        assert placeholders(zh) == placeholders(en), key


@pytest.fixture
def url(tmp_path: Path) -> str:
    from core.db.engine import get_engine
    from core.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'followup.db'}"
    upgrade(url)
    yield url
    get_engine(url).dispose()


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """The demo chain plus anna.w, an admin (imports, calls, do-not-contact) who reads English."""
    text = (ROOT / "config" / "chain.yaml").read_text(encoding="utf-8")
    zhang = "  - {username: zhang.li, name: 张丽, role: coordinator, sites: [SH-DENT]}\n"
    assert zhang in text and "sites_dir: sites" in text
    text = text.replace(zhang, zhang + "  - {username: anna.w, name: Anna Wu, role: admin, "
                                       "locale: en}\n")
    path = tmp_path / "chain" / "chain.yaml"
    path.parent.mkdir()
    path.write_text(text.replace("sites_dir: sites", f"sites_dir: {ROOT / 'config' / 'sites'}"), encoding="utf-8")
    return path


@pytest.fixture
def run(cli, url: str, chain: Path):  # type: ignore[no-untyped-def]
    """``followup`` against the clinic below, with anna.w in the staff list; zhang.li unless told (admin, who
    also reads Chinese, for what only an admin may do: import, schedule, do-not-contact)."""

    def go(*args: str, user: str | None = None, now: str = NOW, ok: bool = True,  # type: ignore[no-untyped-def]
           input: str | None = None):
        user = user or ("admin" if args[0] in ("import", "schedule", "patients") else "zhang.li")
        return cli(*args, db=url, now=now, user=user, config=chain, ok=ok, input=input)

    return go


@pytest.fixture
def clinic(cli, tmp_path: Path, url: str) -> str:  # type: ignore[no-untyped-def]
    """D1 implant Sunday (24 h check due Monday), D2 extraction the Monday before (2 calls due)."""
    seed(cli, tmp_path, url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
    ])
    return url


# -- record ------------------------------------------------------------------------------------------


def test_record_says_what_happened_in_the_coordinators_language(run: Any, cli: Any, clinic: str) -> None:
    t = tid(cli, clinic, "D2", "check_1w")
    zh = run("record", str(t), "--outcome", "no_answer").output  # zhang.li: the chain's language
    assert f"已记录 任务 {t}：无人接听 → 待回访（第 1 次拨打，失败 1/3）" in zh
    assert "下次拨打：2026-11-23T15:30+08:00" in zh
    # the retries at the planned times (a failure less than 2 h after the last one would not count)
    en = run("record", str(t), "--outcome", "busy", user="anna.w", now="2026-11-23T15:30+08:00").output  # hers
    assert f"Task {t}: busy → open (attempt 2, failed 2/3)" in en
    en = run("record", str(t), "--outcome", "busy", "--locale", "en",  # --locale wins over hers
             now="2026-11-24T10:00+08:00").output
    assert f"Task {t}: busy → unsuccessful (attempt 3, failed 3/3)" in en
    zh = run("record", str(t), "--outcome", "busy", "--locale", "zh_CN", user="anna.w", ok=False,
             now="2026-11-24T15:30+08:00").output
    assert zh.strip() == (f"错误：任务 {t} 的状态已是 不成功回访，不是待回访：zhang.li 于 2026-11-24 10:00 "
                          "记录了最后一次拨打，无需再记录")


def test_record_json_is_the_same_in_every_language(run: Any, cli: Any, clinic: str) -> None:
    d1, d2 = tid(cli, clinic, "D1", "check_24h"), tid(cli, clinic, "D2", "check_1w")
    zh = json.loads(run("record", str(d1), "--outcome", "reached", "--answer", "fever=yes", "--format", "json",
                        "--locale", "zh_CN").output)
    en = json.loads(run("record", str(d2), "--outcome", "reached", "--answer", "fever=yes", "--format", "json",
                        "--locale", "en").output)
    assert set(zh) == set(en) == RECORD_KEYS and set(zh["task"]) == set(en["task"])
    assert (zh["outcome"], zh["task"]["status"]) == (en["outcome"], en["task"]["status"]) == ("reached", "completed")
    assert [a["kind"] for a in zh["actions"]] == ["escalate"]


def test_a_red_flag_is_announced_in_chinese(run: Any, cli: Any, clinic: str) -> None:
    t = tid(cli, clinic, "D1", "check_24h")
    out = run("record", str(t), "--outcome", "reached", "--answer", "fever=yes").output
    assert f"已记录 任务 {t}：已接通 → 已完成" in out
    assert "  → 上报医生：" in out and "[#1]" in out


# -- errors a coordinator meets ----------------------------------------------------------------------


def test_an_unknown_task_is_reported_in_the_readers_language(run: Any, clinic: str) -> None:
    zh = run("record", "99999", "--outcome", "reached", ok=False)
    assert zh.exit_code == 1 and zh.output.strip() == "错误：任务 99999 不存在"
    en = run("record", "99999", "--outcome", "reached", user="anna.w", ok=False)
    assert en.exit_code == 1 and en.output.strip() == "Error: no task 99999"
    assert run("script", "99999", "--locale", "en", ok=False).output.strip() == "Error: no task 99999"


@pytest.mark.parametrize(("args", "zh", "en"), [
    (("--outcome", "reached", "--answer", "fever=5"),
     "fever：请回答 是 或 否，收到的是 '5'", "fever: answer yes or no, got '5'"),
    (("--outcome", "reached", "--answer", "pain_level=11", "--answer", "colour=blue"),
     "pain_level：应在 0–10 之间，收到的是 11；未知的问题 'colour'",
     "pain_level: expected 0–10, got 11; unknown question 'colour'"),
    (("--outcome", "voicemail"), "未知的通话结果 'voicemail'", "unknown outcome 'voicemail'"),
    (("--outcome", "callback_requested", "--callback-at", "2026-11-23T09:00"),
     "回电时间 2026-11-23T09:00+08:00 已过（现在是 2026-11-23T10:05+08:00）", "is not in the future"),
    (("--outcome", "callback_requested", "--callback-at", "sometime"),
     "看不懂时间 'sometime'", "'sometime' is not a time I understand"),
    (("--outcome", "reached", "--answer", "fever"), "--answer 'fever'：请写成 KEY=VALUE", "write KEY=VALUE"),
])
def test_a_call_that_cannot_be_recorded_is_explained_in_the_readers_language(
        run: Any, cli: Any, clinic: str, args: tuple[str, ...], zh: str, en: str) -> None:
    t = str(tid(cli, clinic, "D2", "check_1w"))
    chinese = run("record", t, *args, ok=False)
    assert chinese.exit_code == 1 and chinese.output.startswith("错误：") and zh in chinese.output
    english = run("record", t, *args, user="anna.w", ok=False)
    assert english.exit_code == 1 and english.output.startswith("Error: ") and en in english.output


def test_another_sites_task_and_a_stranger_are_refused(run: Any, cli: Any, clinic: str) -> None:
    t = str(tid(cli, clinic, "D2", "check_1w"))
    assert "wang.fang 负责 SH-AES，不负责门店 SH-DENT" in run("record", t, "--outcome", "reached", user="wang.fang",
                                                             ok=False).output
    stranger = run("claim", user="nobody", ok=False).output  # not staff: the chain's language
    assert stranger.startswith("错误：'nobody' 不在") and "的员工名单中" in stranger
    assert "'nobody' is not in the staff list" in run("claim", "--locale", "en", user="nobody", ok=False).output


def test_a_bad_answer_in_the_interactive_call_is_explained_in_the_coordinators_language(
        run: Any, clinic: str) -> None:
    run("claim", "--count", "1", "--format", "json")
    out = run("call", input="reached\nlots\n").output  # D2's first question: has the bleeding stopped?
    assert "bleeding_stopped：请回答 是 或 否，收到的是 'lots'" in out
    assert "已停止。已记录 0 通电话" in out


def test_an_administrators_error_stays_in_english(run: Any, cli: Any, clinic: str, tmp_path: Path) -> None:
    """Configuration and database errors are not in the catalogue; without a configuration no language is known."""
    broken = cli("record", "1", "--outcome", "reached", db=f"sqlite:///{tmp_path}/none/x.db", now=NOW,
                 user="zhang.li", ok=False)
    assert broken.exit_code == 1 and broken.output.startswith("Error: cannot open database")
    missing = cli("record", "99999", "--outcome", "reached", db=clinic, now=NOW, user="zhang.li",
                  config=tmp_path / "nowhere.yaml", ok=False)
    assert missing.exit_code == 1 and missing.output.startswith("Error: ") and "错误" not in missing.output


# -- import and schedule -----------------------------------------------------------------------------


def test_import_and_schedule_summaries_in_the_readers_language(run: Any, tmp_path: Path) -> None:
    patients = write_csv(tmp_path / "p.csv", PATIENT_HEADER, [["P1", "马丽", "F", "1970-01-01", "13800000001", ""]])
    dry = [json.loads(run("import", str(patients), "--dry-run", "--format", "json", "--locale", loc).output)
           for loc in ("zh_CN", "en")]
    assert dry[0] == dry[1] and dry[0]["patients_created"] == 1  # JSON: one contract, every language
    assert "试运行（未写入）患者 新增 1" in run("import", str(patients), "--dry-run").output
    zh = run("import", str(patients)).output
    assert f"{patients}：已导入 患者 新增 1、更新 0、未变 0；就诊记录 新增 0、更新 0、未变 0" in zh
    en = run("import", str(patients), user="anna.w").output
    assert f"{patients}: imported patients 0 new, 0 updated, 1 unchanged; episodes 0 new" in en

    episodes = write_csv(tmp_path / "e.csv", ["episode_id", "patient_id", "site", "specialty", "procedure",
                                              "occurred_at"], [["E1", "P1", "SH-DENT", "dental", "scaling",
                                                                "2026-11-22T10:00"]])
    assert "下一步：followup schedule" in run("import", str(episodes)).output
    zh = run("schedule").output
    assert "1 个就诊记录：新建任务" in zh and "调整 0 个，取消 0 个，保持不变 0 个" in zh
    en = run("schedule", "--locale", "en").output
    assert "1 episodes: 0 tasks created, 0 moved, 0 cancelled" in en and "left as they were" in en
    assert json.loads(run("schedule", "--format", "json", "--locale", "zh_CN").output) == \
        json.loads(run("schedule", "--format", "json", "--locale", "en").output)


def test_import_problems_keep_file_row_and_column_in_the_readers_language(
        run: Any, tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "bad.csv", PATIENT_HEADER, [["P1", "马丽", "F", "1970-01-01", "13800000001", ""],
                                                          ["P2", "Ma Li", "X", "1970-01-01", "12", ""]])
    zh = run("import", str(bad), ok=False).output
    assert "错误：bad.csv 有 2 个问题，未导入任何数据：" in zh
    assert "第 3 行，gender：'X' 不是性别（请填 F/M、female/male 或 女/男）" in zh
    assert "第 3 行，phone：电话号码应有 7 到 15 位数字，这个有 2 位" in zh
    en = run("import", str(bad), user="anna.w", ok=False).output
    assert "2 problems in bad.csv; nothing was imported:" in en and "row 3, gender: 'X' is not a gender" in en
    gone = run("import", str(tmp_path / "gone.csv"), ok=False).output
    assert gone.strip() == f"错误：{tmp_path / 'gone.csv'}：文件不存在"


# -- escalations, complaints, do-not-contact -----------------------------------------------------------


def test_escalation_complaint_and_dnc_summaries_in_the_readers_language(
        run: Any, cli: Any, clinic: str) -> None:
    run("record", str(tid(cli, clinic, "D1", "check_24h")), "--outcome", "reached", "--answer", "fever=yes",
        "--answer", "complaint=yes")
    [esc] = json.loads(run("escalations", "list", "--format", "json").output)
    assert run("escalations", "resolve", str(esc["id"]), "--how", "seen", user="chen.zhiyuan").output.strip() == \
        f"上报医生 {esc['id']} 已由 chen.zhiyuan 处理完毕。"  # the attending doctor, who is assigned
    again = run("escalations", "resolve", str(esc["id"]), "--how", "x", user="anna.w", ok=False).output
    assert f"Error: escalation {esc['id']} was already resolved by chen.zhiyuan" in again

    [c] = json.loads(run("complaints", "list", "--format", "json").output)
    assert run("complaints", "respond", str(c["id"]), "--text", "致歉").output.strip() == f"投诉 {c['id']} 已按时答复。"
    assert run("complaints", "close", str(c["id"]), user="anna.w").output.strip() == f"Complaint {c['id']} closed."
    assert f"错误：投诉 {c['id']} 已经结案" in run("complaints", "close", str(c["id"]), ok=False).output
    shown = [json.loads(run("complaints", "show", str(c["id"]), "--format", "json", "--locale", loc).output)
             for loc in ("zh_CN", "en")]
    assert shown[0] == shown[1] and shown[0]["status"] == "closed"

    assert run("patients", "dnc", "D2").output.strip() == "患者 D2：已设为勿扰，2 个待回访任务已屏蔽"
    assert "错误：患者 D2 已经设为勿扰" in run("patients", "dnc", "D2", ok=False).output
    # one of D2's two calls is overdue (its window closed): lifting the flag reopens the other only
    assert run("patients", "dnc", "D2", "--undo", user="anna.w").output.strip() == \
        "Patient D2: contact allowed again, 1 task(s) reopened"
    assert "错误：患者 'NOPE' 不存在" in run("patients", "dnc", "NOPE", ok=False).output


# -- import: what is wrong with a file, and warnings about one that was imported ---------------------

EPISODE = ["episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at"]


@pytest.fixture
def patient(run: Any, tmp_path: Path) -> None:
    """P1, an SH-DENT patient whom the episode files below refer to."""
    run("import", str(write_csv(tmp_path / "p1.csv", PATIENT_HEADER,
                                [["P1", "马丽", "F", "1970-01-01", "13800000001", "SH-DENT"]])))


def test_import_warnings_in_the_readers_language_and_english_in_json(run: Any, tmp_path: Path) -> None:
    row = ["P1", "马丽", "F", "1970-01-01", "13800000001", "SH-DENT", "2026-01-05"]
    path = write_csv(tmp_path / "p.csv", [*PATIENT_HEADER, "入院日期"], [row, row])
    zh = run("import", str(path), "--dry-run").output
    assert "警告：已忽略未知的列：'入院日期'" in zh
    assert "警告：1 行与文件中前面的行完全相同，只计一次" in zh
    assert "Warning" not in zh
    en = run("import", str(path), "--dry-run", user="anna.w").output
    assert "Warning: columns ignored (not known): '入院日期'" in en
    assert "Warning: 1 rows repeat an earlier row of the file and were counted once" in en
    assert "警告" not in en
    assert "Warning: columns ignored" in run("import", str(path), "--locale", "en").output
    dry = [json.loads(run("import", str(path), "--dry-run", "--format", "json", "--locale", loc).output)
           for loc in ("zh_CN", "en")]
    assert dry[0] == dry[1]  # JSON: one contract, the warnings in English
    assert dry[0]["warnings"] == ["columns ignored (not known): '入院日期'",
                                  "1 rows repeat an earlier row of the file and were counted once"]


def test_an_ignored_sheet_is_announced_in_the_readers_language(run: Any, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Summary"
    book.active.append(["Export of 2026-11-22"])
    sheet = book.create_sheet("patients")
    sheet.append(PATIENT_HEADER)
    sheet.append(["P1", "马丽", "F", "1970-01-01", "13800000001", "SH-DENT"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    assert "警告：已忽略工作表 'Summary'：第一行没有可识别的列名" in run("import", str(path), "--dry-run").output
    assert "Warning: sheet 'Summary' ignored: its first row names no known column" in \
        run("import", str(path), "--dry-run", "--locale", "en").output


@pytest.mark.parametrize(("header", "rows", "zh", "en"), [
    pytest.param(PATIENT_HEADER, [["P2", "李强", "M", "1986-09-03", "13912345602", "SH-DNT"]],
                 "第 2 行，site：未知门店 'SH-DNT'，是否想输入 'SH-DENT'？（门店：",
                 "row 2, site: unknown site 'SH-DNT' — did you mean 'SH-DENT'? (sites: ", id="site"),
    pytest.param(EPISODE, [["E1", "P1", "SH-DENT", "dentl", "implant", "2026-11-22T10:00"]],
                 "第 2 行，specialty：未知专科 'dentl'，是否想输入 'dental'？（已安装：",
                 "row 2, specialty: unknown specialty 'dentl' — did you mean 'dental'? (installed: ",
                 id="specialty"),
    pytest.param(EPISODE, [["E1", "P1", "SH-DENT", "aesthetic", "rhinoplasty", "2026-11-22T10:00"]],
                 "第 2 行，specialty：门店 SH-DENT 未开通专科 'aesthetic'（已开通：dental）",
                 "row 2, specialty: specialty 'aesthetic' is not enabled at site SH-DENT (enabled: dental)",
                 id="specialty-not-enabled"),
    pytest.param(EPISODE, [["E1", "P1", "SH-DENT", "dental", "implnt", "2026-11-22T10:00"]],
                 "第 2 行，procedure：专科 dental 没有项目 'implnt'，是否想输入 'implant'？（可选项目：",
                 "row 2, procedure: unknown procedure 'implnt' for dental — did you mean 'implant'? (procedures: ",
                 id="procedure"),
    pytest.param(EPISODE, [["E1", "P1", "SH-DENT", "dental", "implant", "yesterday"]],
                 "第 2 行，occurred_at：'yesterday' 不是日期时间（请写成 ISO 8601：2026-03-01 09:00 或 "
                 "2026-03-01T09:00+08:00）",
                 "row 2, occurred_at: 'yesterday' is not a date and time (write ISO 8601: 2026-03-01 09:00, "
                 "or 2026-03-01T09:00+08:00)", id="date-and-time"),
    pytest.param(EPISODE, [["E1", "P1", "SH-DENT", "dental", "implant", "2026-11-22T10:00"],
                           ["E1", "P1", "SH-DENT", "dental", "extraction", "2026-11-22T10:00"]],
                 "第 3 行，episode_id：episode_id 'E1' 再次出现，内容与第 2 行不同",
                 "row 3, episode_id: episode_id 'E1' appears again with different content (first at row 2)",
                 id="duplicate"),
    pytest.param(EPISODE[:-1], [["E1", "P1", "SH-DENT", "dental", "implant"]],
                 "第 1 行，occurred_at：缺少 'occurred_at' 列（导入就诊记录必需）",
                 "row 1, occurred_at: no 'occurred_at' column (needed for episodes)", id="missing-column"),
    pytest.param(["就诊编号", "病历号", "院区", "专科", "项目", "出院日期", "手术日期"], [],
                 "第 1 行，occurred_at：列 '出院日期' 和 '手术日期' 都表示 'occurred_at'：请删除或重命名其中一列",
                 "row 1, occurred_at: columns '出院日期' and '手术日期' both mean 'occurred_at'; remove or rename one",
                 id="two-headers"),
])
def test_import_reasons_with_suggestions_in_the_readers_language(
        run: Any, tmp_path: Path, patient: None, header: list[str], rows: list[list[str]], zh: str,
        en: str) -> None:
    path = write_csv(tmp_path / "bad.csv", header, rows)
    chinese = run("import", str(path), ok=False).output
    assert chinese.lstrip().startswith("错误：bad.csv 有 1 个问题，未导入任何数据：")
    assert f"\n  {zh}" in chinese, chinese
    english = run("import", str(path), user="anna.w", ok=False).output
    assert english.lstrip().startswith("Error: 1 problem in bad.csv; nothing was imported:") and f"\n  {en}" in english
    assert f"\n  {en}" in run("import", str(path), "--locale", "en", ok=False).output
    assert f"\n  {zh}" in run("import", str(path), "--locale", "zh_CN", user="anna.w", ok=False).output


def test_a_duplicate_in_another_sheet_names_that_sheet(run: Any, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Export"
    book.active.append(PATIENT_HEADER)
    book.active.append(["P1", "马丽", "F", "1970-01-01", "13800000001", "SH-DENT"])
    book.create_sheet("patients").append(PATIENT_HEADER)
    book["patients"].append(["P1", "马丽", "F", "1971-01-01", "13800000001", "SH-DENT"])
    path = tmp_path / "two.xlsx"
    book.save(path)
    assert "patients，第 2 行，patient_id：patient_id 'P1' 再次出现，内容与 Export 第 2 行不同" in \
        run("import", str(path), ok=False).output
    assert "patients, row 2, patient_id: patient_id 'P1' appears again with different content " \
           "(first at row 2 of Export)" in run("import", str(path), "--locale", "en", ok=False).output


_UNCLOSED = "\n".join([",".join(PATIENT_HEADER), "P0,Good Row,M,1980-01-01,13800000000,",
                       'PX,"Ma Li,F,1970-01-01,13800000001,',
                       *(f"P{i},Patient {i},F,1970-01-01,138{i:08},SH-DENT" for i in range(4000))]).encode()


@pytest.mark.parametrize(("name", "content", "zh", "en"), [
    pytest.param("u16.csv", f"{','.join(PATIENT_HEADER)}\nP1,Ma Li,F,1970-01-01,13800000001,\n".encode("utf-16"),
                 "文件：文件既不是 UTF-8 也不是 GB18030 文本：请另存为 UTF-8 CSV",
                 "file: the file is neither UTF-8 nor GB18030 text: save it as UTF-8 CSV", id="utf-16"),
    pytest.param("empty.csv", b"", "第 1 行：文件是空的", "row 1: the file is empty", id="empty"),
    pytest.param("quote.csv", _UNCLOSED, "第 3 行：无法按 CSV 读取此行（", "row 3: cannot read this row as CSV (",
                 id="unclosed-quote"),
    pytest.param("broken.xlsx", b"not a workbook", "文件：无法打开工作簿：", "file: cannot open the workbook: ",
                 id="bad-xlsx"),
    pytest.param("bad.json", b"{not json", "文件：不是有效的 JSON（第 1 行）：", "file: not valid JSON (line 1): ",
                 id="bad-json"),
    pytest.param("visits.json", b'{"visits": []}',
                 '文件：JSON 文件应为行对象的列表，或 {"patients": [...], "episodes": [...]}',
                 'file: a JSON file holds a list of row objects or {"patients": [...], "episodes": [...]}',
                 id="json-shape"),
    pytest.param("part.json", b'{"patients": {}}', "文件：'patients' 必须是行对象的列表",
                 "file: 'patients' must be a list of row objects", id="json-part"),
    pytest.param("numbers.json", b"[1]", "第 1 行：不是行对象", "row 1: not a row object", id="json-row"),
    pytest.param("old.xls", b"", "文件：不读取旧版 .xls 工作簿：请另存为 .xlsx 或 .csv",
                 "file: old .xls workbooks are not read: save it as .xlsx or .csv", id="xls"),
    pytest.param("scan.pdf", b"", "文件：未知的文件类型 '.pdf'：请使用 .csv、.xlsx 或 .json",
                 "file: unknown file type '.pdf': use .csv, .xlsx or .json", id="pdf"),
    pytest.param("export", b"", "文件：文件没有扩展名：请使用 .csv、.xlsx 或 .json",
                 "file: unknown file type '(none)': use .csv, .xlsx or .json", id="no-suffix"),
])
def test_an_unreadable_file_is_explained_in_the_readers_language(
        run: Any, tmp_path: Path, name: str, content: bytes, zh: str, en: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    chinese = run("import", str(path), ok=False).output
    assert chinese.lstrip().startswith(f"错误：{name} 有 ") and f"\n  {zh}" in chinese, chinese
    english = run("import", str(path), user="anna.w", ok=False).output
    assert english.lstrip().startswith("Error: ") and f"\n  {en}" in english, english
    assert "\n  " + en in run("import", str(path), "--locale", "en", ok=False).output


def test_unclosed_quote_reason_in_full(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_bytes(_UNCLOSED)
    zh = run("import", str(path), ok=False).output
    assert "）：是否有引号未闭合？" in zh
    assert "): is a quote left open?" in run("import", str(path), "--locale", "en", ok=False).output


def test_site_header_mappings_are_explained_in_the_readers_language(
        run: Any, tmp_path: Path, chain: Path) -> None:
    import shutil

    import yaml

    sites = tmp_path / "sites"
    shutil.copytree(ROOT / "config" / "sites", sites)
    for file, columns in (("sh-dent.yaml", {"病人姓名": "nam", "手术项目": "procedure"}),
                          ("sh-aes.yaml", {"手术项目": "diagnosis"})):
        data = yaml.safe_load((sites / file).read_text(encoding="utf-8"))
        data["import_columns"] = columns
        (sites / file).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    chain.write_text(chain.read_text(encoding="utf-8").replace(str(ROOT / "config" / "sites"), str(sites)),
                     encoding="utf-8")
    path = write_csv(tmp_path / "p.csv", ["patient_id", "病人姓名", "gender", "birth_date", "phone", "手术项目"],
                     [["P1", "马丽", "F", "1970-01-01", "13800000001", "x"]])
    zh = run("import", str(path), ok=False).output
    assert "第 1 行，病人姓名：门店 SH-DENT 把列名 '病人姓名' 对应到未知的列 'nam'，是否想输入 'name'？" in zh
    assert "第 1 行，手术项目：列名 '手术项目' 被门店 SH-" in zh and "，又被门店 SH-" in zh
    assert "第 1 行，name：缺少 'name' 列（导入患者必需）" in zh
    en = run("import", str(path), user="anna.w", ok=False).output
    assert "row 1, 病人姓名: site SH-DENT maps header '病人姓名' to unknown column 'nam' — did you mean 'name'?" in en
    assert "row 1, 手术项目: header '手术项目' is mapped to '" in en and "' by site SH-" in en
    assert "row 1, name: no 'name' column (needed for patients)" in en


def test_an_import_reason_without_a_suggestion_reads_well_in_both_languages() -> None:
    from core.messages import Msg

    text = Msg("import_unknown_site", site="XX", hint="", sites="SH-DENT")
    assert (text.render("zh_CN"), str(text)) == ("未知门店 'XX'（门店：SH-DENT）", "unknown site 'XX' (sites: SH-DENT)")
    none = Msg("import_unknown_specialty_none", specialty="dental", hint="", installed="")
    assert none.render("zh_CN") == "未知专科 'dental'（未安装任何专科）"
    assert str(none) == "unknown specialty 'dental' (installed: none)"
