"""A call-history file: the calls a clinic already made, from its spreadsheet, for ``followup import``.

A file (CSV, XLSX or JSON, read like a patients or episodes file: UTF-8 or GB18030, header
aliases, ``中文名 (canonical)`` template headers) is a call history when it has an ``outcome``
column. Each row is one call: its task (``task_id``, or ``episode_id`` with ``milestone``), when
(``at``; without an offset: the site's local time), the outcome (its code or its Chinese or
English word), who called (``by``: a staff username), optionally ``note``, ``booked_at`` (a
booking), ``given_up`` (放弃: the task closes as unsuccessful after its calls), the patient's
answers (a column per question key, or ``answers`` holding a JSON object). The rows become
:class:`core.callhistory.PastCall` and go to :func:`core.callhistory.load_attempts`: every rule
of a recorded call, admins only, all rows or none, every problem with its row and column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.errors import FollowupError, InvalidValue
from core.importing import (
    _PAIRED_HEADER,
    _UNREADABLE,
    ImportFailed,
    RowProblem,
    _cell,
    _csv_records,
    _HeaderMap,
    _json_file,
    _norm_header,
    _parse_bool,
    _parse_datetime,
    _read_text,
    _Reading,
    _text,
    _unsupported,
    row_problem,
)
from core.messages import Msg
from core.plugins import Plugins

CALLS = "calls"
COLUMNS = ("task_id", "episode_id", "milestone", "at", "outcome", "by", "note", "booked_at", "given_up", "answers")
REQUIRED = ("at", "outcome", "by")  # and task_id, or episode_id with milestone
ALIASES: dict[str, tuple[str, ...]] = {
    "task_id": ("task id", "task", "任务编号", "任务id", "回访任务编号"),
    "episode_id": ("episode id", "visit id", "encounter id", "就诊编号", "就诊号", "就诊id"),
    "milestone": ("follow-up", "follow up", "回访节点", "随访节点", "节点"),
    "at": ("time", "call time", "called at", "date", "通话时间", "拨打时间", "回访日期", "日期", "时间"),
    "outcome": ("result", "call result", "结果", "回访结果", "通话结果"),
    "by": ("coordinator", "caller", "staff", "回访人", "回访员", "坐席", "客服"),
    "note": ("notes", "remarks", "备注"),
    "booked_at": ("appointment", "booked for", "预约时间", "预约日期"),
    "given_up": ("gave up", "give up", "放弃", "已放弃"),
    "answers": ("回答", "问卷回答"),
}
TEMPLATE_NAMES = {
    "task_id": "任务编号", "episode_id": "就诊编号", "milestone": "回访节点", "at": "通话时间", "outcome": "回访结果",
    "by": "回访人", "note": "备注", "booked_at": "预约时间", "given_up": "放弃", "answers": "回答",
}
NOTE_LENGTH = 4000


def template_headers() -> list[str]:
    """An empty call-history file's headers: ``通话时间 (at)`` ... (import reads them back)."""
    return [f"{TEMPLATE_NAMES[c]} ({c})" for c in COLUMNS]


def _aliases(question_keys: Sequence[str]) -> dict[str, str]:
    table = {_norm_header(c): c for c in COLUMNS}
    for canonical, aliases in ALIASES.items():
        for alias in aliases:
            table[_norm_header(alias)] = canonical
    for key in question_keys:  # a column per question: its key (answer.<key> says it plainly)
        table.setdefault(_norm_header(key), f"answer.{key}")
        table[_norm_header(f"answer.{key}")] = f"answer.{key}"
    return table


def question_keys(plugins: Plugins) -> list[str]:
    """Every question any task may ask (core's general ones and each milestone's)."""
    keys: dict[str, None] = dict.fromkeys(plugins.questions("", "", ""))
    for key, (_, spec) in plugins.specialties().items():
        for proc in spec.procedures:
            for milestone, _m in plugins.milestones(key, proc.code):
                keys.update(dict.fromkeys(plugins.questions(key, proc.code, milestone)))
    return list(keys)


def header_of(path: Path) -> list[str]:
    """The first row's headers (a CSV's first line, a workbook's first sheet, a JSON list's keys);
    empty when the file cannot be read (its reader says why)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            reading = _Reading()
            text = _read_text(path, reading)
            if text is None:
                return []
            first = text.split("\n", 1)[0]
            delimiter = "\t" if suffix == ".tsv" else max([",", ";", "\t"], key=first.count)
            return next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
        if suffix in (".xlsx", ".xlsm"):
            from openpyxl import load_workbook

            book = load_workbook(path, read_only=True, data_only=True)
            try:
                if not book.worksheets:
                    return []
                row = next(book.worksheets[0].iter_rows(values_only=True, max_row=1), None)
                return [str(h) for h in row or () if h is not None]
            finally:
                book.close()
        if suffix == ".json":
            data = json.loads(path.read_bytes().decode("utf-8-sig", errors="replace"))
            if isinstance(data, list):
                return [k for item in data[:50] if isinstance(item, dict) for k in item]
    except Exception:  # noqa: BLE001 - any unreadable file: not a call history; its import says why
        return []
    return []


def is_call_history(path: Path) -> bool:
    """A file with an ``outcome`` column (or one of its aliases, or ``回访结果 (outcome)``): calls, not
    patients or episodes."""
    table = {_norm_header(a): c for c, aliases in ALIASES.items() for a in (c, *aliases)}
    for header in header_of(path):
        paired = _PAIRED_HEADER.match(str(header).strip())
        keys = [_norm_header(header), *((_norm_header(paired.group(2)),) if paired else ())]
        if any(table.get(key) == "outcome" for key in keys):
            return True
    return False


@dataclass
class HistoryFileResult:
    """What ``followup import`` of a call history did (or would do): ``--format json`` keys."""

    file: str
    rows: int = 0
    attempts: int = 0
    answers: int = 0
    tasks: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    given_up: int = 0
    first_attempt_id: int | None = None
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    warning_messages: list[Msg] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": CALLS, "file": self.file, "rows": self.rows, "attempts": self.attempts,
                "answers": self.answers, "tasks": self.tasks, "statuses": dict(sorted(self.statuses.items())),
                "given_up": self.given_up, "first_attempt_id": self.first_attempt_id, "dry_run": self.dry_run,
                "warnings": list(self.warnings)}


def _records(path: Path, reading: _Reading) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of the file, the header first (row 1; JSON: its keys, then object N as row N)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        text = _read_text(path, reading)
        if text is None:
            return
        first = text.split("\n", 1)[0]
        delimiter = "\t" if suffix == ".tsv" else max([",", ";", "\t"], key=first.count)
        yield from _csv_records(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), reading)
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
            reading.problems.append(row_problem(0, None, Msg("import_bad_workbook", error=exc)))
            return
        try:
            if book.worksheets:
                for number, row in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
                    yield number, list(row)
        finally:
            book.close()
    elif suffix == ".json":
        data = _json_file(path, reading)
        if data is _UNREADABLE:
            return
        if not isinstance(data, list):
            reading.problems.append(row_problem(0, None, Msg("import_json_shape")))
            return
        keys: list[str] = []
        for item in data:
            if isinstance(item, dict):
                keys.extend(k for k in item if k not in keys)
        yield 0, keys
        for number, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                reading.problems.append(row_problem(number, None, Msg("import_not_row_object")))
                continue
            yield number, [item.get(k) for k in keys]
    else:
        _unsupported(suffix, reading)


@dataclass
class _Row:
    number: int
    task_id: int | None
    episode: str | None
    milestone: str | None
    at: datetime | None  # naive: the task's site's local time
    outcome: str
    by: str
    note: str | None
    booked_at: datetime | None
    given_up: bool
    answers: dict[str, Any]


def _outcomes() -> dict[str, str]:
    """An outcome as written (its code, its Chinese or English word, any case) -> its code."""
    from core.vocab import OUTCOMES
    from core.words import word

    table: dict[str, str] = {}
    for code in OUTCOMES:
        for text in (str(code), word("outcome", code, "zh_CN"), word("outcome", code, "en")):
            table.setdefault(text.strip().casefold(), str(code))
            table.setdefault(text.strip().casefold().replace(" ", "_"), str(code))
    return table


def read_calls(path: Path, plugins: Plugins, problems: list[RowProblem]) -> tuple[list[_Row], int, set[str]]:
    """The file's rows, checked cell by cell (problems added with row and column); the number of
    data rows and the headers ignored."""
    reading = _Reading()
    records = _records(path, reading)
    header = next(records, None)
    if header is None:
        problems.extend(reading.problems or [row_problem(1, None, Msg("import_empty_file"))])
        return [], 0, set()
    header_row = max(header[0], 1)
    columns = _HeaderMap(_aliases(question_keys(plugins)), {}).resolve(header[1], reading, row=header_row)
    problems.extend(reading.problems)
    reading.problems.clear()
    present = {c for c in columns if c}
    missing = [c for c in REQUIRED if c not in present]
    if "task_id" not in present and not {"episode_id", "milestone"} <= present:
        missing += ["task_id"] if "episode_id" not in present else ["milestone"]
    if missing:
        kind = Msg("import_kind.calls")
        problems.extend(row_problem(header_row, c, Msg("import_no_column", column=c, kind=kind)) for c in missing)
        return [], 0, reading.ignored
    outcomes = _outcomes()
    rows: list[_Row] = []
    n = 0
    for number, cells in records:
        values = {c: _cell(cells[i]) if i < len(cells) else None for i, c in enumerate(columns) if c}
        if all(v is None for v in values.values()):
            continue  # a blank line
        n += 1
        row = _row(number, values, outcomes, problems)
        if row is not None:
            rows.append(row)
    problems.extend(reading.problems)
    return rows, n, reading.ignored


def _row(number: int, values: dict[str, Any], outcomes: dict[str, str], problems: list[RowProblem]) -> _Row | None:
    bad = len(problems)

    def cell(column: str, parse: Any) -> Any:
        try:
            return parse(values.get(column))
        except InvalidValue as exc:
            problems.append(RowProblem(number, column, str(exc), None, exc))
        return None

    def required(value: Any) -> str:
        text = _text(value)
        if text is None:
            raise InvalidValue(key="import_missing")
        return text

    def optional_text(value: Any, limit: int = NOTE_LENGTH) -> str | None:
        text = _text(value)
        if text is not None and len(text) > limit:
            raise InvalidValue(key="import_too_long", values={"n": limit})
        return text

    def instant(value: Any) -> datetime | None:
        if _text(value) is None:
            return None
        moment = _parse_datetime(value)
        if moment is None:
            raise InvalidValue(key="import_not_datetime", values={"text": _text(value)})
        return moment

    def task_number(value: Any) -> int | None:
        text = _text(value)
        if text is None:
            return None
        if not text.isdigit():
            raise InvalidValue(key="history_not_task_id", values={"text": text})
        return int(text)

    task_id = cell("task_id", task_number)
    episode = cell("episode_id", optional_text)
    milestone = cell("milestone", optional_text)
    if task_id is None and not (episode and milestone) and len(problems) == bad:
        column = "milestone" if episode else "task_id"
        problems.append(row_problem(number, column, Msg("history_which_task")))
    at = cell("at", lambda v: instant(required(v)))
    written = cell("outcome", required)
    outcome = outcomes.get(written.casefold(), outcomes.get(written.casefold().replace(" ", "_"), written)) \
        if written else ""
    by = cell("by", required)
    note = cell("note", optional_text)
    booked_at = cell("booked_at", instant)
    given_up = cell("given_up", _parse_bool)
    answers: dict[str, Any] = {}
    raw = values.get("answers")
    if raw is not None:
        try:
            parsed = raw if isinstance(raw, dict) else json.loads(str(raw))
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            problems.append(row_problem(number, "answers", Msg("history_answers_not_object")))
        else:
            answers.update(parsed)
    for column, value in values.items():
        if column.startswith("answer.") and value is not None:
            answers[column.removeprefix("answer.")] = value
    if len(problems) > bad:
        return None
    return _Row(number, task_id, episode, milestone, at, outcome, by, note, booked_at, bool(given_up), answers)


def _tasks(session: Session, rows: list[_Row], problems: list[RowProblem]) -> dict[int, tuple[int, str]]:
    """Row number -> (task id, site) of each row's task (an unknown task id passes: the load says so)."""
    from sqlalchemy import select

    from core.db.models import Episode, Task

    out: dict[int, tuple[int, str]] = {}
    ids = sorted({r.task_id for r in rows if r.task_id is not None})
    sites: dict[int, str] = {}
    for start in range(0, len(ids), 5000):
        part = ids[start:start + 5000]
        sites.update(session.execute(select(Task.id, Task.site).where(Task.id.in_(part))).all())
    pairs = sorted({(r.episode, r.milestone) for r in rows if r.task_id is None and r.episode and r.milestone})
    by_pair: dict[tuple[str, str], tuple[int, str]] = {}
    for start in range(0, len(pairs), 2000):
        part = pairs[start:start + 2000]
        episodes = sorted({e for e, _ in part})
        query = (select(Episode.external_id, Task.milestone, Task.id, Task.site)
                 .join(Task, Task.episode_id == Episode.id)
                 .where(Episode.external_id.in_(episodes)))
        wanted = set(part)
        for external, milestone, task_id, site in session.execute(query):
            if (external, milestone) in wanted:
                by_pair[(external, milestone)] = (task_id, site)
    for r in rows:
        if r.task_id is not None:
            out[r.number] = (r.task_id, sites.get(r.task_id, ""))
        else:
            found = by_pair.get((r.episode or "", r.milestone or ""))
            if found is None:
                problems.append(row_problem(r.number, "milestone", Msg(
                    "history_no_task_of_episode", episode=r.episode, milestone=r.milestone)))
            else:
                out[r.number] = found
    return out


def import_history_file(session: Session, config: ChainConfig, plugins: Plugins, path: Path, *, user: str,
                        now: datetime, dry_run: bool = False) -> HistoryFileResult:
    """Check every row of a call-history file and load its calls (:func:`core.callhistory.load_attempts`),
    or on ``dry_run`` only check them and count what would change. Raises :class:`ImportFailed`
    (every problem with its row and column; nothing written) or ``AccessDenied`` (admins only)."""
    from core import access
    from core.callhistory import PastCall, load_attempts, plan_history

    access.require(config, user, access.IMPORT)
    path = Path(path)
    if now.tzinfo is None:
        raise ValueError("import_history_file needs an aware 'now'")
    problems: list[RowProblem] = []
    rows, n, ignored = read_calls(path, plugins, problems)
    tasks = _tasks(session, rows, problems) if rows else {}
    calls: list[PastCall] = []
    given_up: set[int] = set()
    for r in rows:
        found = tasks.get(r.number)
        if found is None:
            continue
        task_id, site_code = found
        site = config.sites.get(site_code)
        zone = site.timezone if site is not None else UTC
        at = r.at if r.at is None or r.at.tzinfo is not None else r.at.replace(tzinfo=zone)
        booked = r.booked_at if r.booked_at is None or r.booked_at.tzinfo is not None else \
            r.booked_at.replace(tzinfo=zone)
        assert at is not None  # a required cell
        calls.append(PastCall(task_id, at, r.by, r.outcome, r.answers, r.note, booked, r.number))
        if r.given_up:
            given_up.add(task_id)
    if not problems and not n:
        raise FollowupError(key="import_no_rows", values={"file": path.name})
    result = HistoryFileResult(file=path.name, rows=n, dry_run=dry_run, given_up=len(given_up))
    if ignored:
        text = Msg("import_columns_ignored", columns=", ".join(repr(c) for c in sorted(ignored)))
        result.warning_messages.append(text)
        result.warnings.append(str(text))
    try:
        if dry_run or problems:
            plan = plan_history(session, config, plugins, calls, now=now, given_up=given_up)
            result.attempts, result.answers, result.tasks = len(plan.attempts), len(plan.answers), len(plan.tasks)
            result.statuses = {str(k): v for k, v in plan.statuses.items()}
        else:
            loaded = load_attempts(session, config, plugins, calls, user=user, now=now, given_up=given_up)
            result.attempts, result.answers, result.tasks = loaded.attempts, loaded.answers, loaded.tasks
            result.statuses = {str(k): v for k, v in loaded.statuses.items()}
            result.first_attempt_id = loaded.first_attempt_id
    except ImportFailed as failed:
        problems.extend(failed.problems)
    if problems:
        problems.sort(key=lambda p: p.row)  # stable: a row's columns keep their order
        raise ImportFailed(problems, path.name)
    return result
