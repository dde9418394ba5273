"""``followup import`` of a call-history file (core/historyfile.py): the calls a clinic already made, from
its spreadsheet, loaded by the rules of recorded calls; a dry run writes nothing; every bad row is named
by file, row and column, nothing written, no phone number shown; the day counts equal a recount
afterwards. Through the CLI, both databases."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from clinic_data import write_csv as write
from test_callhistory import NOW, caller, clinic, history  # noqa: F401 - clinic: the fixture

SH_NOW = NOW.isoformat()


def episode_of(url: str) -> dict[int, tuple[str, str]]:
    """task id -> (the episode's id as imported, milestone)."""
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Episode, Task

    with session_scope(url) as session:
        rows = session.execute(select(Task.id, Episode.external_id, Task.milestone)
                               .join(Episode, Episode.id == Task.episode_id)).all()
    return {task_id: (episode, milestone) for task_id, episode, milestone in rows}


def counts(url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from core.db.engine import session_scope
    from core.db.models import Answer, Attempt

    with session_scope(url) as session:
        return (session.scalar(select(func.count()).select_from(Attempt)) or 0,
                session.scalar(select(func.count()).select_from(Answer)) or 0)


def statuses(url: str, ids: Any) -> dict[int, str]:
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(url) as session:
        return dict(session.execute(select(Task.id, Task.status).where(Task.id.in_(list(ids)))).all())


def history_file(url: str, plugins: Any, path: Path) -> tuple[Path, dict[int, str], int]:
    """The test clinic's history as a spreadsheet would hold it: half the rows name the task by its id,
    half by episode and milestone; local times without an offset, outcomes in Chinese words or codes,
    a satisfaction column, 放弃 for the given-up tasks. Returns the file, the expected statuses, the calls."""
    from core.words import word

    calls, given_up, expected = history(url, plugins)
    episodes = episode_of(url)
    rows = []
    for n, call in enumerate(calls):
        episode, milestone = episodes[call.task_id]
        by_id = n % 2 == 0
        local = call.at.astimezone(NOW.tzinfo).strftime("%Y-%m-%d %H:%M")  # the site's time, no offset
        outcome = word("outcome", call.outcome, "zh_CN") if n % 3 == 0 else call.outcome
        rows.append([call.task_id if by_id else "", "" if by_id else episode, "" if by_id else milestone, local,
                     outcome, call.by, "是" if call.task_id in given_up else "",
                     call.answers.get("overall_satisfaction", "")])
    header = ["任务编号 (task_id)", "就诊编号", "回访节点", "通话时间", "回访结果", "回访人", "放弃",
              "overall_satisfaction"]
    return write(path, header, rows), expected, len(calls)


def test_a_call_history_file_imports_like_recorded_calls(cli, clinic: str, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from core.db import counters, rollups
    from core.db.engine import get_engine

    path, expected, n = history_file(clinic, plugins, tmp_path / "calls.csv")
    dry = json.loads(cli("import", str(path), "--dry-run", "--format", "json", db=clinic, now=SH_NOW).output)
    assert dry["kind"] == "calls" and dry["dry_run"] is True
    assert dry["attempts"] == dry["rows"] == n and dry["tasks"] == len(expected)
    assert counts(clinic) == (0, 0)  # a dry run writes nothing
    assert set(statuses(clinic, expected).values()) == {"open"}

    done = json.loads(cli("import", str(path), "--format", "json", db=clinic, now=SH_NOW).output)
    assert {k: v for k, v in done.items() if k not in ("dry_run", "first_attempt_id")} == \
        {k: v for k, v in dry.items() if k not in ("dry_run", "first_attempt_id")}
    assert statuses(clinic, expected) == expected
    assert counts(clinic) == (n, done["answers"]) and done["answers"] >= 1
    assert sum(done["statuses"].values()) == len(expected)
    with get_engine(clinic).connect() as conn:  # the reports' day counts and the task counters: a recount
        assert rollups.verify(conn) == {}
        assert counters.mismatches(conn) == []
    cli("db", "recount", "--check", db=clinic)
    # the same file again: every task is closed or has its calls already; refused, nothing added
    again = cli("import", str(path), "--locale", "en", db=clinic, now=SH_NOW, ok=False)
    assert again.exit_code == 1 and "nothing was imported" in again.output
    assert counts(clinic)[0] == n


def test_the_summary_is_in_the_readers_language(cli, clinic: str, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    path, _, n = history_file(clinic, plugins, tmp_path / "calls.csv")
    zh = cli("import", str(path), "--dry-run", "--locale", "zh_CN", db=clinic, now=SH_NOW).output
    assert f"试运行（未写入）将导入 {n} 次通话" in zh and "已完成" in zh and "不成功回访" in zh
    en = cli("import", str(path), "--locale", "en", db=clinic, now=SH_NOW).output
    assert f"calls.csv: imported {n} call(s)" in en and "unsuccessful" in en


def test_bad_rows_are_located_and_nothing_is_written(cli, clinic: str, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    calls, _, _ = history(clinic, plugins)
    first = calls[0]
    by = first.by
    at = first.at.astimezone(NOW.tzinfo).strftime("%Y-%m-%d %H:%M")
    episode, _ = episode_of(clinic)[first.task_id]
    header = ["task_id", "episode_id", "milestone", "at", "outcome", "by", "note", "given_up"]
    rows = [
        [first.task_id, "", "", at, "no_answer", by, "", ""],                          # row 2: good
        [999999, "", "", at, "no_answer", by, "", ""],                                  # 3: no such task
        [first.task_id, "", "", "yesterday", "busy", by, "", ""],                       # 4: not a time
        [first.task_id, "", "", at, "13812345678", by, "", ""],                         # 5: a phone, not an outcome
        [first.task_id, "", "", at, "busy", "", "", ""],                                # 6: nobody called
        ["", episode, "no_such_milestone", at, "busy", by, "", ""],                     # 7: no such milestone
        ["", "", "", at, "busy", by, "", ""],                                           # 8: which task?
        [first.task_id, "", "", at, "busy", by, "", "maybe"],                           # 9: not yes/no
        [first.task_id, "", "", (NOW + timedelta(days=2)).strftime("%Y-%m-%d %H:%M"), "busy", by, "", ""],  # 10
        [first.task_id, "", "", at, "busy", "nobody", "", ""],                          # 11: not on the staff
    ]
    path = write(tmp_path / "bad.csv", header, rows)
    result = cli("import", str(path), "--locale", "en", db=clinic, now=SH_NOW, ok=False)
    out = result.output
    assert result.exit_code == 1 and "Traceback" not in out
    assert "10 problems in bad.csv; nothing was imported" in out or "problems in bad.csv; nothing was imported" in out
    for where in ("row 3, task_id:", "row 4, at:", "row 5, outcome:", "row 6, by:", "row 7, milestone:",
                  "row 8, task_id:", "row 9, given_up:", "row 10, at:", "row 11, by:"):
        assert where in out, where
    assert "row 2," not in out  # the good row has no problem
    assert "13812345678" not in out  # never a phone number
    assert counts(clinic) == (0, 0)
    zh = cli("import", str(path), "--locale", "zh_CN", db=clinic, now=SH_NOW, ok=False).output
    assert "bad.csv 有" in zh and "未导入任何数据" in zh and "第 5 行，outcome" in zh and "13812345678" not in zh
    # a dry run finds the same problems
    dry = cli("import", str(path), "--dry-run", "--locale", "en", db=clinic, now=SH_NOW, ok=False)
    assert dry.exit_code == 1 and "row 3, task_id:" in dry.output
    # a missing column is named on the header row
    missing = write(tmp_path / "no_by.csv", ["task_id", "at", "outcome"], [[first.task_id, at, "busy"]])
    out = cli("import", str(missing), "--locale", "en", db=clinic, now=SH_NOW, ok=False).output
    assert "row 1, by:" in out and "Traceback" not in out
    assert counts(clinic) == (0, 0)


def test_importing_calls_is_for_administrators(cli, clinic: str, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    path, expected, _ = history_file(clinic, plugins, tmp_path / "calls.csv")
    coordinator = caller("SH-DENT")
    for args in (("--dry-run",), ()):
        result = cli("import", str(path), *args, db=clinic, now=SH_NOW, user=coordinator, ok=False)
        assert result.exit_code != 0 and "Traceback" not in result.output
    assert counts(clinic) == (0, 0)
    assert set(statuses(clinic, expected).values()) == {"open"}


def test_the_calls_template_reads_back(cli, clinic: str, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    target = tmp_path / "calls.csv"
    cli("import", "--template", "calls", str(target), db=clinic)
    text = target.read_text(encoding="utf-8-sig")
    header = next(csv.reader([text.splitlines()[0]]))
    assert "通话时间 (at)" in header and "回访结果 (outcome)" in header and "任务编号 (task_id)" in header
    calls, _, _ = history(clinic, plugins)
    call = calls[0]
    values = {"task_id": call.task_id, "at": call.at.isoformat(), "outcome": "无人接听", "by": call.by}
    row = [values.get(h.rsplit("(", 1)[1].rstrip(")"), "") for h in header]
    write(target, header, [row])
    done = json.loads(cli("import", str(target), "--format", "json", db=clinic, now=SH_NOW).output)
    assert done["attempts"] == 1 and done["statuses"] == {"open": 1}
    cli("db", "recount", "--check", db=clinic)


@pytest.mark.parametrize("suffix", ["xlsx", "json"])
def test_a_workbook_or_json_history(cli, clinic: str, plugins, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    calls, _, _ = history(clinic, plugins)
    picked = [c for c in calls if c.outcome in ("wrong_number", "refused")] or calls[:1]
    records = [{"task_id": c.task_id, "at": c.at.isoformat(), "outcome": c.outcome, "by": c.by} for c in picked]
    path = tmp_path / f"calls.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        import xlsxwriter

        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet("calls")
        for c, key in enumerate(records[0]):
            sheet.write_string(0, c, key)
        for r, record in enumerate(records, start=1):
            for c, value in enumerate(record.values()):
                sheet.write(r, c, value)
        book.close()
    done = json.loads(cli("import", str(path), "--format", "json", db=clinic, now=SH_NOW).output)
    assert done["attempts"] == len(picked)
    cli("db", "recount", "--check", db=clinic)


def test_docs_import_md_lists_every_call_column_and_alias() -> None:
    from core.historyfile import ALIASES, COLUMNS

    doc = (Path(__file__).parents[1] / "docs" / "import.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Call history"):]
    for column in COLUMNS:
        assert f"`{column}`" in section, column
        for alias in ALIASES.get(column, ()):
            assert f"`{alias}`" in section, (column, alias)


def test_a_history_loaded_twice_adds_no_call_twice(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The calls of a task still open (no answer, below its limit) are refused the second time, located;
    a later call of the same task is loaded."""
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(clinic) as session:
        task_id, site = session.execute(select(Task.id, Task.site).where(Task.status == "open")
                                        .order_by(Task.id).limit(1)).one()
    header = ["task_id", "at", "outcome", "by"]
    first = NOW - timedelta(days=2)
    row = [task_id, first.strftime("%Y-%m-%d %H:%M"), "no_answer", caller(site)]
    path = write(tmp_path / "calls.csv", header, [row])
    cli("import", str(path), "--locale", "en", db=clinic, now=SH_NOW)
    assert counts(clinic)[0] == 1 and statuses(clinic, [task_id]) == {task_id: "open"}

    again = cli("import", str(path), "--locale", "en", db=clinic, now=SH_NOW, ok=False)
    assert again.exit_code == 1
    assert "row 2, at" in again.output and "already recorded" in again.output
    assert counts(clinic)[0] == 1  # nothing added

    zh = cli("import", str(path), "--locale", "zh_CN", db=clinic, now=SH_NOW, ok=False)
    assert "已经记录过" in zh.output

    later = [task_id, (first + timedelta(days=1)).strftime("%Y-%m-%d %H:%M"), "no_answer", caller(site)]
    cli("import", str(write(tmp_path / "more.csv", header, [row, later])), "--locale", "en", db=clinic,
        now=SH_NOW, ok=False)  # the old call is still refused, and with it the whole file
    assert counts(clinic)[0] == 1
    cli("import", str(write(tmp_path / "later.csv", header, [later])), db=clinic, now=SH_NOW)
    assert counts(clinic)[0] == 2
