"""A zh_CN chain reads Chinese: every command's table output, on the demo, has no English word.

Allowed are codes (anything with a digit, ``_``, ``.``, ``/``, ``:`` or ``-``, or in capitals:
``SH-DENT``, ``check_24h``, ``P0001``, ``Asia/Shanghai``, ``NPS``), the ids of plugins and of
their procedures, milestones and questions (shown as keys next to their names), people's
names, and ``followup ...`` commands a message tells the reader to run. Anything else in
ASCII letters is an untranslated word, and the test names it with the command.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

NOW = "2026-11-23T09:30+08:00"  # a Monday: last week's report has the demo's simulated calls
NAMES = {"Emily", "Chen", "tester", "admin", "zhang", "li", "wang", "fang", "liu", "min", "chen", "jing",
         "null", "xlsx", "csv", "json", "html",  # JSON's null, which the definitions name; file formats
         "vip"}  # the demo HIS's own customer tier, shown as imported
_COMMAND = re.compile(r"followup(?:\s+[-\w.=/:|\[\]]+)*")  # a command, also when a table wrapped it
_TOKEN = re.compile(r"[A-Za-z0-9_./:@+\-*#×']+")


def _codes(plugins) -> set[str]:  # type: ignore[no-untyped-def]
    """The keys a table may show beside their names: plugins, specialties, procedures, milestones, questions."""
    codes = {p["name"] for p in plugins.list_plugins()} | set(plugins.general_question_keys())
    for key, (_, spec) in plugins.specialties().items():
        codes.add(key)
        for proc in spec.procedures:
            codes.add(proc.code)
            for _, milestone in plugins.milestones(key, proc.code):
                codes.add(milestone.key)
                codes.update(plugins.questions(key, proc.code, milestone.key))
    return codes


def english_words(text: str, allowed: set[str]) -> list[str]:
    """ASCII words of ``text`` that are neither codes, ids, names nor commands."""
    found = []
    for token in _TOKEN.findall(_COMMAND.sub(" ", text)):
        word = token.strip(".:'-*#×+")
        if not re.search(r"[A-Za-z]", word):
            continue
        if token.startswith("--") or re.search(r"[\d_./:@\-]", word) or word.isupper() or word in allowed:
            continue
        found.append(word)
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The demo chain (zh_CN) with its database, and a runner for its commands at 80 columns."""
    import os

    from click.testing import CliRunner

    from core.cli.main import cli as group
    from core.plugins import get_plugins

    root = Path(__file__).resolve().parents[1]
    db = f"sqlite:///{tmp_path_factory.mktemp('zh') / 'demo.db'}"
    saved = os.getcwd()
    os.chdir(root)
    env = {"FOLLOWUP_CONFIG": "", "FOLLOWUP_DATABASE_URL": "", "FOLLOWUP_NOW": "", "FOLLOWUP_USER": "",
           "COLUMNS": "80"}

    def run(*args: str, user: str = "admin", input: str | None = None, ok: bool = True) -> str:
        result = CliRunner().invoke(group, ["--as", user, "--db", db, "--now", NOW, *args], input=input,
                                    env={k: v for k, v in env.items() if v} | {"COLUMNS": "80"},
                                    catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result.output

    first = run("demo")
    allowed = NAMES | _codes(get_plugins())
    yield run, first, allowed
    os.chdir(saved)


def _task_of(run, site: str = "SH-DENT") -> str:  # type: ignore[no-untyped-def]
    import json

    return str(json.loads(run("tasks", "--site", site, "--status", "open", "--format", "json"))[0]["id"])


COMMANDS = [
    ("worklist",), ("worklist", "--site", "SH-DENT"), ("tasks",), ("tasks", "--site", "BJ-HOSP", "--status", "open"),
    ("protocols",), ("protocols", "aesthetic.rhinoplasty", "--site", "SH-AES"), ("plugins", "list"),
    ("config", "check"), ("escalations",), ("complaints",), ("complaints", "show", "1"), ("audit", "--limit", "50"),
    ("report", "week"), ("report", "month"), ("report", "quarter", "--period", "2026-Q4"),
    ("report", "month", "--period", "2026-11", "--by", "procedure"), ("report", "week", "--by", "coordinator"),
    ("report", "week", "--by", "site"), ("report", "week", "--by", "specialty"), ("report", "week", "--by", "staff"),
    ("schedule",), ("import", "--template", "patients", "{tmp}/p.csv"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_every_table_reads_chinese(demo, args, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run, _, allowed = demo
    output = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert output.strip()
    words = output
    if args[0] == "audit":  # an audit detail may quote another system's error text as it came
        words = re.sub(r"(错误|原因)=[^\n]*", " ", output)
    assert english_words(words, allowed) == [], output
    from rich.cells import cell_len

    for line in output.splitlines():  # tables fit 80 columns (a sentence is wrapped by the terminal)
        if "─" in line or "  " in line.strip():
            assert cell_len(line) <= 80, line
        assert "…" not in line, line


def test_the_demo_and_a_coordinators_day_read_chinese(demo) -> None:  # type: ignore[no-untyped-def]
    run, first, allowed = demo
    assert english_words(first, allowed) == [], first
    assert "警告" not in first and "Warning" not in first  # a quiet first run
    task = _task_of(run)
    outputs = [
        run("claim", "--site", "SH-DENT", "--count", "2", user="zhang.li"),
        run("script", task, user="zhang.li"),
        run("record", _task_of(run, "BJ-HOSP"), "--outcome", "no_answer", user="liu.min"),
        run("record", _task_of(run, "BJ-HOSP"), "--outcome", "callback_requested", "--callback-at", "明天下午3点",
            user="liu.min"),
        run("call", input="12\n", user="zhang.li"),  # 12: 跳过
        run("import", "config/demo/patients.csv", "--dry-run"),
        run("complaints", "respond", "1", "--text", "已致电解释并道歉", user="chen.jing"),
        run("patients", "dnc", "P0003", "--reason", "患者要求"),
        run("patients", "dnc", "P0003", "--undo"),
        run("record", "99999", "--outcome", "reached", ok=False),  # an error, too
    ]
    for output in outputs:
        assert english_words(output, allowed) == [], output


def test_the_checker_finds_english_words() -> None:
    """The rule itself: codes, names and commands pass; plain English words do not."""
    allowed = {"Emily", "dental"}
    text = "王秀英 P0001 SH-DENT check_24h 12-07 10:00 Asia/Shanghai NPS Emily dental 运行 followup schedule --replan"
    assert english_words(text, allowed) == []
    assert english_words("状态 OVERDUE open routine due", allowed) == ["open", "routine", "due"]


@pytest.mark.parametrize("name", ["worklist-zh_CN-80col", "report-month-zh_CN-80col"])
def test_the_screenshots_in_docs_are_80_columns_of_chinese(name: str) -> None:
    """docs/screenshots: tmux captures of `followup worklist` and `followup report month` (scripts/screenshots.sh)."""
    from rich.cells import cell_len

    from core.plugins import get_plugins

    text = (Path(__file__).resolve().parents[1] / "docs" / "screenshots" / f"{name}.txt").read_text(encoding="utf-8")
    assert text.startswith("$ followup ") and len(text.splitlines()) > 10
    assert all(cell_len(line) <= 80 for line in text.splitlines())
    assert english_words(text.split("\n", 1)[1], NAMES | _codes(get_plugins())) == []
