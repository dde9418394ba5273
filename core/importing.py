"""``followup import``: patients and episodes from a HIS / PMS export (CSV, XLSX, JSON).

Reading turns every table of the file into rows keyed by canonical column names
(English and Chinese HIS headers are aliases; each site may add its own in
``Site.import_columns``). Every row is then validated by a pydantic row model
against the chain (sites, their specialties) and the plugins (procedures and
their trigger kind). Any problem anywhere fails the whole file before a single
write: :class:`ImportFailed` lists every problem with its row and column.

Writing is an upsert by external id (``patient_id`` / ``episode_id``), so
importing the same file again changes nothing. Existing rows are looked up in
chunks and new rows go in through bulk inserts, so a file of 100 000 rows is
fine. A column that is absent from the file leaves that field alone on update;
a column that is present with an empty cell sets it to None.

Row numbers are what a spreadsheet user sees: the header is row 1, the first
data row is row 2. In a JSON file, row N is the N-th object of its list.

Beyond the bare contract: sites, specialties and procedures may also be given
by their zh_CN / en names (a HIS export says 种植牙, not ``implant``); an import
may set ``do_not_contact`` but never lifts it (that is a deliberate act in the
application, not a side effect of the next nightly export); a new phone number
clears ``phone_invalid``; ``updated_episode_ids`` tells scheduling which
episodes changed.

Names, phone numbers and birth dates are never logged, never written to the
audit trail and never echoed in a problem.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from sqlalchemy import ARRAY, Table, any_, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from core.audit import audit
from core.config import ChainConfig, Site
from core.db.models import Episode, Patient, Referral
from core.errors import FollowupError, InvalidValue
from core.messages import Msg
from core.plugins import PluginError, Plugins
from core.privacy import FULL_WIDTH
from core.protocol import EpisodeAttribute
from core.vocab import EpisodeStatus

DNC_BY_IMPORT = "import"  # patients.dnc_reason of a flag set by an import (an import may lift it again)

log = logging.getLogger(__name__)

CHUNK = 500

PATIENTS, EPISODES = "patients", "episodes"
PATIENT_COLUMNS = (
    "patient_id", "name", "gender", "birth_date", "phone", "site", "locale", "do_not_contact",
    "email", "wechat_openid", "preferred_call_time",
    "birthday", "anniversary", "value_tier", "referred_by",
)
PATIENT_REQUIRED = ("patient_id", "name", "gender", "birth_date", "phone")
EPISODE_COLUMNS = (
    "episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at",
    "doctor", "department", "diagnosis", "notes", "status", "trigger",
)
EPISODE_REQUIRED = ("episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at")
COLUMNS = {PATIENTS: PATIENT_COLUMNS, EPISODES: EPISODE_COLUMNS}
REQUIRED = {PATIENTS: PATIENT_REQUIRED, EPISODES: EPISODE_REQUIRED}
CANONICAL = frozenset(PATIENT_COLUMNS) | frozenset(EPISODE_COLUMNS)

# Header aliases: English variants and the headers Chinese HIS / PMS exports use.
ALIASES: dict[str, tuple[str, ...]] = {
    "patient_id": (
        "patient id", "patient no", "patient number", "mrn", "患者编号", "患者id", "患者号",
        "病历号", "病案号", "病人编号", "客户编号",
    ),
    "name": ("patient name", "full name", "姓名", "患者姓名", "病人姓名", "客户姓名"),
    "gender": ("sex", "性别"),
    "birth_date": (
        "date of birth", "dob", "birthdate", "出生日期", "出生年月日",
    ),
    # greetings (core/greetings.py): the days a patient agreed to be greeted on, and their value tier
    "birthday": ("生日", "greeting birthday"),
    "anniversary": ("wedding anniversary", "结婚纪念日", "纪念日"),
    "value_tier": ("tier", "customer tier", "客户等级", "会员等级", "客户级别"),
    "referred_by": ("referrer", "referred by", "推荐人", "介绍人", "推荐人编号"),
    "trigger": ("follow-up type", "回访类型", "回访类别"),
    "phone": (
        "phone number", "mobile", "telephone", "tel", "电话", "手机号", "手机", "手机号码",
        "联系电话", "电话号码", "电话/手机号",
    ),
    "site": ("clinic", "home site", "院区", "门店", "院区/门店", "分院"),
    "locale": ("language", "语言"),
    "preferred_call_time": ("preferred time", "call time", "方便接听时间", "方便联系时间", "回访时间", "联系时间"),
    "email": ("e-mail", "mail", "email address", "邮箱", "电子邮箱", "电子邮件"),
    "wechat_openid": ("openid", "wechat openid", "微信openid", "公众号openid"),
    "do_not_contact": ("dnc", "勿扰", "免打扰", "拒绝回访"),
    "episode_id": ("episode id", "visit id", "encounter id", "就诊编号", "就诊号", "就诊id"),
    "specialty": ("专科",),
    "procedure": ("项目", "治疗项目", "手术名称", "手术项目"),
    "occurred_at": (
        "date", "discharge date", "procedure date", "surgery date", "出院日期", "出院时间",
        "手术日期", "手术时间", "治疗日期", "就诊日期",
    ),
    "doctor": ("attending doctor", "主治医师", "主治医生", "医生", "医师"),
    "department": ("dept", "科室", "就诊科室"),
    "diagnosis": ("诊断", "出院诊断"),
    "notes": ("note", "remarks", "备注"),
    "status": ("episode status", "就诊状态", "状态"),
}


@dataclass(frozen=True)
class Columns:
    """The columns a file may have: core's, and the episode attributes the specialties declare.

    Each declared attribute (``attributes:`` in a plugin's protocol.yaml, e.g. dental's
    ``restored``) is one more episode column, with its headers as aliases; it is
    kept in ``Episode.attributes``.
    """

    attributes: tuple[EpisodeAttribute, ...] = ()

    @classmethod
    def of_plugins(cls, plugins: Plugins) -> Columns:
        """Every installed specialty's attributes; one key declared twice must mean the same."""
        seen: dict[str, tuple[str, EpisodeAttribute]] = {}
        for plugin, spec in plugins.specialties().values():
            for attribute in spec.attributes:
                if attribute.key in CANONICAL:
                    raise PluginError(plugin, "followup_specialties",
                                      f"attribute {attribute.key!r} is one of core's import columns; rename it")
                earlier = seen.setdefault(attribute.key, (plugin, attribute))
                if earlier[1].type != attribute.type:
                    raise PluginError(plugin, "followup_specialties",
                                      f"attribute {attribute.key!r} is {attribute.type}, but plugin "
                                      f"{earlier[0]!r} declares it {earlier[1].type}")
        return cls(tuple(attribute for _, attribute in seen.values()))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.attributes)

    def of(self, kind: str) -> tuple[str, ...]:
        return COLUMNS[kind] + (self.keys if kind == EPISODES else ())

    @property
    def canonical(self) -> frozenset[str]:
        return CANONICAL | frozenset(self.keys)

    @property
    def aliases(self) -> dict[str, tuple[str, ...]]:
        return {**ALIASES, **{a.key: a.headers for a in self.attributes}}

# The trigger column: the trigger's own name, or what Chinese exports call it.
_TRIGGERS = {
    **{t: t for t in ("procedure", "discharge", "consultation", "visit_without_treatment", "missed_appointment",
                      "interruption", "visit")},
    "到诊": "visit", "到诊消费": "visit", "消费": "visit", "中断": "interruption", "延期": "interruption",
    "取消": "interruption", "治疗中断": "interruption", "爽约": "missed_appointment", "未到诊": "missed_appointment",
    "咨询": "consultation", "出院": "discharge", "手术": "procedure", "治疗": "procedure",
}
# An episode's status as a HIS writes it: a cancelled procedure cancels its open follow-ups.
_EPISODE_STATUSES = {
    "active": EpisodeStatus.ACTIVE, "正常": EpisodeStatus.ACTIVE, "有效": EpisodeStatus.ACTIVE,
    "已完成": EpisodeStatus.ACTIVE, "completed": EpisodeStatus.ACTIVE, "done": EpisodeStatus.ACTIVE,
    "cancelled": EpisodeStatus.CANCELLED, "canceled": EpisodeStatus.CANCELLED, "已取消": EpisodeStatus.CANCELLED,
    "取消": EpisodeStatus.CANCELLED, "作废": EpisodeStatus.CANCELLED, "已作废": EpisodeStatus.CANCELLED,
}
_TRUE = {"yes", "y", "true", "t", "1", "是", "已", "已修复"}
_FALSE = {"no", "n", "false", "f", "0", "否", "未", "未修复"}
_GENDERS = {
    "f": "F", "female": "F", "女": "F", "woman": "F",
    "m": "M", "male": "M", "男": "M", "man": "M",
    "u": "U", "unknown": "U", "未知": "U",
}
_LOCALES = {
    "zh_cn": "zh_CN", "zh": "zh_CN", "zh-cn": "zh_CN", "中文": "zh_CN", "chinese": "zh_CN",
    "en": "en", "en_us": "en", "en-us": "en", "en_gb": "en", "en-gb": "en", "english": "en",
    "英文": "en",
}
_DATETIME = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:(?:[T\s]+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
LATEST_EPISODE_DAYS = 366  # an episode is a care event: at most a year ahead (a booked appointment), not 2036
_PHONE_ALLOWED = re.compile(r"^\+?[\d\s\-().]+$")
# A mainland number: a mobile (11 digits, 1[3-9]...) or a landline with its area code (010 / 02x + 8 digits,
# 0xxx + 7 or 8 digits). A number with another country code (+852 ...) is taken as given.
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MAINLAND_LANDLINE = re.compile(r"^0(?:10|2\d)\d{8}$|^0[3-9]\d{2}\d{7,8}$")


def phone_is_valid(phone: str) -> bool:
    """Whether a stored number (digits, ``+`` kept) is a mainland mobile or landline, or a foreign number."""
    digits = phone.lstrip("+")
    if phone.startswith("+") and not digits.startswith("86"):
        return 8 <= len(digits) <= 15  # another country: E.164 as given
    for prefix in ("0086", "86"):
        if (phone.startswith("+") or prefix == "0086" or len(digits) == 13) and digits.startswith(prefix):
            digits = digits[len(prefix):]
            break
    return bool(_MAINLAND_MOBILE.match(digits) or _MAINLAND_LANDLINE.match(digits))


# -- results and problems -----------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One problem in the file.

    ``row`` is what a spreadsheet shows (header 1, first data row 2; in JSON the
    N-th object), 0 for the file as a whole; ``column`` is the canonical column (or
    the file's header when that header is the problem); ``sheet`` names the sheet
    of a workbook with several, or the part (patients / episodes) of a JSON file
    holding both.
    """

    row: int
    column: str | None
    reason: str
    sheet: str | None = None
    text: Any = field(default=None, compare=False)  # the reason as a catalogue message (core.messages), if it is one

    def __str__(self) -> str:
        return self.render("en")

    def render(self, locale: str | None) -> str:
        """Where (row, sheet, column) in ``locale``; the reason as the validator gave it."""
        from core.messages import localize, message

        zh = locale == "zh_CN"
        where = message("import_row", locale, row=self.row) if self.row else message("import_whole_file", locale)
        if self.sheet:
            where = f"{self.sheet}{'，' if zh else ', '}{where}"
        if self.column:
            where += f"{'，' if zh else ', '}{self.column}"
        return f"{where}{'：' if zh else ': '}{localize(self.text or self.reason, locale)}"


def row_problem(row: int, column: str | None, text: Msg, sheet: str | None = None) -> RowProblem:
    """A problem whose reason is a catalogue message (``reason`` is its English text)."""
    return RowProblem(row, column, str(text), sheet, text)


def _hint(near: Sequence[str]) -> Msg | str:
    """`` — did you mean 'x'?`` for the closest match, if there is one."""
    return Msg("did_you_mean", suggestion=near[0]) if near else ""


class ImportFailed(FollowupError):
    """The file has problems; nothing was written. ``str()`` lists every problem, :meth:`render` in a locale."""

    def __init__(self, problems: list[RowProblem], file: str | None = None):
        self.problems = problems
        self.file = file
        super().__init__(key="import_failed_one" if len(problems) == 1 else "import_failed",
                         values={"n": len(problems), "file": file or "?"})
        self.args = (self.render("en"),)

    def render(self, locale: str | None) -> str:
        return "\n".join([super().render(locale)] + [f"  {p.render(locale)}" for p in self.problems])


@dataclass
class ImportResult:
    patients_created: int = 0
    patients_updated: int = 0
    patients_unchanged: int = 0
    episodes_created: int = 0
    episodes_updated: int = 0
    episodes_unchanged: int = 0
    warnings: list[str] = field(default_factory=list)  # in English (JSON output); shown from warning_messages
    new_episode_ids: list[int] = field(default_factory=list)
    updated_episode_ids: list[int] = field(default_factory=list)
    rows: int = 0
    dry_run: bool = False
    warning_messages: list[Msg] = field(default_factory=list, repr=False, compare=False)  # not in as_dict

    def warn(self, key: str, **values: Any) -> None:
        """A warning about the file, kept as a catalogue message and as its English text."""
        text = Msg(key, **values)
        self.warning_messages.append(text)
        self.warnings.append(str(text))

    def counts(self) -> dict[str, int]:
        return {
            k: getattr(self, k)
            for k in (
                "patients_created", "patients_updated", "patients_unchanged",
                "episodes_created", "episodes_updated", "episodes_unchanged",
            )
        }

    def as_dict(self) -> dict[str, Any]:
        """The result for ``--format json`` (warnings in English: a contract, like every key)."""
        return {f.name: _copy(getattr(self, f.name)) for f in fields(self) if f.name != "warning_messages"}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# -- reading --------------------------------------------------------------------


# a template's header: an alias and the canonical name, "患者编号 (patient_id)" (full-width brackets too)
_PAIRED_HEADER = re.compile(r"^(.*?)\s*[(（]\s*([A-Za-z_]+)\s*[)）]\s*$")


def template_headers(kind: str, columns: Columns = Columns()) -> list[str]:
    """The headers of an empty import file: each column's Chinese alias with its canonical name,
    ``患者编号 (patient_id)``; import reads them back as the canonical columns."""
    out = []
    for column in columns.of(kind):
        attribute = next((a for a in columns.attributes if a.key == column), None)
        chinese = attribute.names.zh_CN if attribute is not None else TEMPLATE_NAMES.get(column)
        out.append(f"{chinese} ({column})" if chinese else column)
    return out


TEMPLATE_NAMES = {
    "patient_id": "患者编号", "name": "姓名", "gender": "性别", "birth_date": "出生日期", "phone": "手机号",
    "site": "门店", "locale": "语言", "do_not_contact": "勿扰", "episode_id": "就诊编号", "specialty": "专科",
    "procedure": "项目", "occurred_at": "手术/出院/就诊时间", "doctor": "主治医生", "department": "科室",
    "diagnosis": "诊断", "notes": "备注", "email": "电子邮箱", "wechat_openid": "微信openid",
    "preferred_call_time": "方便接听时间", "birthday": "生日", "anniversary": "纪念日", "value_tier": "客户等级",
    "referred_by": "推荐人",
}


def _norm_header(header: Any) -> str:
    text = str(header).replace("\ufeff", "").strip().casefold()
    return re.sub(r"[\s_\-]+", "_", text)


def _builtin_aliases(columns: Columns) -> dict[str, str]:
    table = {_norm_header(c): c for c in columns.canonical}
    for canonical, aliases in columns.aliases.items():
        for alias in aliases:
            table[_norm_header(alias)] = canonical
    return table


def column_aliases(
    config: ChainConfig | None = None, columns: Columns = Columns()
) -> tuple[dict[str, str], dict[str, Msg]]:
    """Header → canonical column, and the site mappings' problems by header.

    Every site's ``import_columns`` applies (a chain usually has one HIS); a site
    mapping wins over a built-in alias. A mapping to an unknown column, or two sites
    mapping one header differently, is a problem only if the file has that header.
    """
    table = _builtin_aliases(columns)
    known = columns.canonical
    conflicts: dict[str, Msg] = {}
    if config is None:
        return table, conflicts
    chosen: dict[str, tuple[str, str]] = {}
    for site in config.sites.values():
        for header, target in site.import_columns.items():
            key, canonical = _norm_header(header), str(target).strip()
            if canonical not in known:
                near = difflib.get_close_matches(canonical, sorted(known), n=1)
                conflicts[key] = Msg("import_unknown_mapping", site=site.code, header=header, column=canonical,
                                     hint=_hint(near))
                continue
            if key in chosen and chosen[key][1] != canonical:
                other, previous = chosen[key]
                conflicts[key] = Msg("import_mapping_conflict", header=header, previous=previous, other=other,
                                     column=canonical, site=site.code)
                continue
            chosen[key] = (site.code, canonical)
    for key, (_, canonical) in chosen.items():
        if key not in conflicts:
            table[key] = canonical
    return table, conflicts


@dataclass
class _Table:
    """One table of the file: rows keyed by canonical column, plus what the header held."""

    kind: str
    rows: list[tuple[int, dict[str, Any]]]
    columns: set[str]
    label: str | None = None


@dataclass
class _Reading:
    columns: Columns = Columns()
    tables: list[_Table] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    ignored: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class _HeaderMap:
    def __init__(self, aliases: dict[str, str], conflicts: dict[str, Msg]):
        self.aliases, self.conflicts = aliases, conflicts

    def resolve(
        self, headers: Sequence[Any], reading: _Reading, *, row: int = 1, sheet: str | None = None,
    ) -> list[str | None]:
        """Canonical column per header position (None: ignored)."""
        out: list[str | None] = []
        seen: dict[str, str] = {}
        for header in headers:
            if header is None or str(header).strip() == "":
                out.append(None)
                continue
            key = _norm_header(header)
            paired = _PAIRED_HEADER.match(str(header).strip())
            if key not in self.aliases and key not in self.conflicts and paired:  # "患者编号 (patient_id)"
                key = next((k for k in (_norm_header(paired.group(2)), _norm_header(paired.group(1)))
                            if k in self.aliases), key)
            if key in self.conflicts:
                reading.problems.append(row_problem(row, str(header).strip(), self.conflicts[key], sheet))
                out.append(None)
                continue
            canonical = self.aliases.get(key)
            if canonical is None:
                reading.ignored.add(str(header).strip())
                out.append(None)
                continue
            if canonical in seen:
                reading.problems.append(row_problem(row, canonical, Msg(
                    "import_same_column", first=seen[canonical], second=str(header).strip(), column=canonical,
                ), sheet))
                out.append(None)
                continue
            seen[canonical] = str(header).strip()
            out.append(canonical)
        return out


def _kind_of(columns: Iterable[str], named: str | None = None) -> str:
    if named in (PATIENTS, EPISODES):
        return named
    return EPISODES if "episode_id" in set(columns) else PATIENTS


def _split_by_kind(
    kind: str,
    columns: list[str | None],
    rows: Iterable[tuple[int, Sequence[Any]]],
    reading: _Reading,
    label: str | None,
) -> None:
    wanted = set(reading.columns.of(kind))
    present = {c for c in columns if c}
    for c in sorted(present - wanted):
        reading.ignored.add(c)
    keep = [(i, c) for i, c in enumerate(columns) if c in wanted]
    table = _Table(kind=kind, rows=[], columns={c for _, c in keep}, label=label)
    for number, cells in rows:
        values = {c: _cell(cells[i]) if i < len(cells) else None for i, c in keep}
        if all(_cell(v) is None for v in cells):
            continue  # a blank line
        table.rows.append((number, values))
    reading.tables.append(table)


def _read_text(path: Path, reading: _Reading) -> str | None:
    """UTF-8 (with or without BOM), else GB18030, the encoding of Chinese HIS exports.

    None (and a problem) when the file is neither, e.g. a UTF-16 "Unicode text" export.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        reading.problems.append(row_problem(0, None, Msg("import_not_text")))
        return None


def _csv_records(records: Iterator[list[str]], reading: _Reading) -> Iterator[tuple[int, list[str]]]:
    """The records with their row numbers (header 1); a record the csv module cannot read is a problem."""
    number = 0
    try:
        for number, record in enumerate(records, start=1):
            yield number, record
    except csv.Error as exc:
        reading.problems.append(row_problem(number + 1, None, Msg("import_bad_csv_row", error=exc)))


def _read_csv(path: Path, headers: _HeaderMap, reading: _Reading) -> None:
    text = _read_text(path, reading)
    if text is None:
        return
    first = text.split("\n", 1)[0]
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        delimiter = max([",", ";", "\t"], key=first.count)
    records = _csv_records(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), reading)
    header = next(records, None)
    if header is None:
        if not reading.problems:
            reading.problems.append(row_problem(1, None, Msg("import_empty_file")))
        return
    columns = headers.resolve(header[1], reading)
    _split_by_kind(_kind_of(c for c in columns if c), columns, records, reading, None)


def _read_xlsx(path: Path, headers: _HeaderMap, reading: _Reading) -> None:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        reading.problems.append(row_problem(0, None, Msg("import_bad_workbook", error=exc)))
        return
    try:
        sheets = [book.worksheets[0]] if book.worksheets else []
        for sheet in book.worksheets[1:]:
            if sheet.title.strip().casefold() in (PATIENTS, EPISODES):
                sheets.append(sheet)
        for sheet in sheets:
            rows = sheet.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                continue
            label = sheet.title if len(sheets) > 1 else None
            named = sheet.title.strip().casefold()
            if len(sheets) > 1 and named not in (PATIENTS, EPISODES):
                # A first sheet beside sheets named patients / episodes is read only
                # when its header knows at least one column (not a cover or notes sheet).
                if not any(headers.aliases.get(_norm_header(h)) for h in header if h is not None):
                    reading.skipped.append(sheet.title)
                    continue
            columns = headers.resolve(list(header), reading, sheet=label)
            kind = _kind_of((c for c in columns if c), named)
            numbered = ((n, list(r)) for n, r in enumerate(rows, start=2))
            _split_by_kind(kind, columns, numbered, reading, label)
    finally:
        book.close()


_UNREADABLE = object()


def _unsupported(suffix: str, reading: _Reading) -> None:
    """The problem of a file that is neither CSV, a workbook nor JSON (an old .xls says how to save it)."""
    if suffix == ".xls":
        reading.problems.append(row_problem(0, None, Msg("import_xls")))
    elif suffix:
        reading.problems.append(row_problem(0, None, Msg("import_unknown_file_type", suffix=suffix)))
    else:
        reading.problems.append(row_problem(0, None, Msg("import_no_file_type")))


def _json_file(path: Path, reading: _Reading) -> Any:
    """The file's JSON value, or ``_UNREADABLE`` (and a located problem) when it is not text or not JSON."""
    text = _read_text(path, reading)
    if text is None:
        return _UNREADABLE
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reading.problems.append(row_problem(0, None, Msg("import_bad_json", line=exc.lineno, error=exc)))
        return _UNREADABLE


def _read_json(path: Path, headers: _HeaderMap, reading: _Reading) -> None:
    data = _json_file(path, reading)
    if data is _UNREADABLE:
        return
    if isinstance(data, list):
        parts: list[tuple[str | None, Any]] = [(None, data)]
    elif isinstance(data, dict) and set(data) <= {PATIENTS, EPISODES} and data:
        parts = [(k, data[k]) for k in (PATIENTS, EPISODES) if k in data]
    else:
        reading.problems.append(row_problem(0, None, Msg("import_json_shape")))
        return
    for named, items in parts:
        label = named if len(parts) > 1 else None
        if not isinstance(items, list):
            reading.problems.append(row_problem(0, None, Msg("import_json_not_list", part=named)))
            continue
        objects: list[tuple[int, dict[str, Any]]] = []
        keys: list[Any] = []
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                reading.problems.append(row_problem(number, None, Msg("import_not_row_object"), label))
                continue
            objects.append((number, item))
            keys.extend(k for k in item if k not in keys)
        columns = headers.resolve(keys, reading, sheet=label)
        by_key = dict(zip(keys, columns, strict=True))
        kind = _kind_of((c for c in columns if c), named)
        wanted = set(reading.columns.of(kind))
        for c in sorted({c for c in columns if c} - wanted):
            reading.ignored.add(c)
        table = _Table(
            kind=kind, rows=[], columns={c for c in columns if c in wanted}, label=label,
        )
        for number, item in objects:
            row = {c: None for c in reading.columns.of(kind) if c in table.columns}
            for key, value in item.items():
                column = by_key.get(key)
                if column in wanted:
                    row[column] = _cell(value)
            table.rows.append((number, row))
        reading.tables.append(table)


def _read(path: Path, config: ChainConfig | None, columns: Columns) -> _Reading:
    reading = _Reading(columns)
    headers = _HeaderMap(*column_aliases(config, columns))
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        _read_csv(path, headers, reading)
    elif suffix in (".xlsx", ".xlsm"):
        _read_xlsx(path, headers, reading)
    elif suffix == ".json":
        _read_json(path, headers, reading)
    else:
        _unsupported(suffix, reading)
    # Patients go first: episodes of the same file refer to them.
    reading.tables.sort(key=lambda t: t.kind != PATIENTS)
    return reading


Rows = list[tuple[int, dict[str, Any]]]


def read_rows(
    path: Path, config: ChainConfig | None = None, plugins: Plugins | None = None
) -> list[tuple[str, Rows]]:
    """The tables of ``path``, patients first: ``(kind, [(row number, row by column)])``.

    ``config`` adds the sites' ``import_columns`` header mappings, ``plugins`` the
    episode attributes the specialties declare (without: they are ignored). Raises
    :class:`ImportFailed` when the file cannot be read (bad encoding, JSON, headers).
    """
    path = Path(path)
    reading = _read(path, config, Columns.of_plugins(plugins) if plugins else Columns())
    if reading.problems:
        raise ImportFailed(reading.problems, path.name)
    return [(t.kind, t.rows) for t in reading.tables]


# -- row models -------------------------------------------------------------------


@dataclass
class _Catalog:
    """What rows are checked against: sites, and each specialty's procedures by code or name."""

    config: ChainConfig
    now: datetime
    sites: dict[str, str]
    specialties: dict[str, str]
    procedures: dict[str, dict[str, str]]
    triggers: dict[tuple[str, str], str]
    columns: Columns
    models: dict[str, type[_Row]]
    by_trigger: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # specialty -> trigger -> procedures

    @classmethod
    def build(cls, config: ChainConfig, plugins: Plugins, now: datetime, columns: Columns) -> _Catalog:
        sites: dict[str, str] = {}
        for code, site in config.sites.items():
            for name in (code, site.name.zh_CN, site.name.en):
                sites.setdefault(name.casefold(), code)
        specialties: dict[str, str] = {}
        procedures: dict[str, dict[str, str]] = {}
        triggers: dict[tuple[str, str], str] = {}
        for key, (_, spec) in plugins.specialties().items():
            for alias in (key, spec.names.zh_CN, spec.names.en):
                specialties.setdefault(alias.casefold(), key)
            table: dict[str, str] = {}
            for proc in spec.procedures:
                # the code, both names, and the HIS's own words declared in protocol.yaml (aliases:)
                for alias in (proc.code, proc.names.zh_CN, proc.names.en, *proc.aliases):
                    table.setdefault(alias.casefold(), proc.code)
                triggers[(key, proc.code)] = proc.trigger
            procedures[key] = table
        by_trigger: dict[str, dict[str, list[str]]] = {}
        for (key, code), trigger in triggers.items():
            by_trigger.setdefault(key, {}).setdefault(trigger, []).append(code)
        models = {PATIENTS: PatientRow, EPISODES: _episode_model(columns.attributes)}
        return cls(config, now, sites, specialties, procedures, triggers, columns, models, by_trigger)

    def site(self, value: str) -> Site:
        code = self.sites.get(value.casefold())
        if code is None:
            codes = list(self.config.sites)
            upper = {c.upper(): c for c in codes}
            near = difflib.get_close_matches(value.upper(), list(upper), n=1)
            raise InvalidValue(key="import_unknown_site", values={
                "site": value, "hint": _hint([upper[n] for n in near]), "sites": ", ".join(codes)})
        return self.config.sites[code]


def _text(value: Any) -> str | None:
    """A cell as text: numbers from a spreadsheet lose their ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value).strip()
    if text and not text.isprintable():
        _check_characters(text)
    return text or None


# Characters that hide or reorder text: a zero-width space makes a look-alike duplicate id, an RTL
# override shows a name backwards. Control characters (a NUL byte) are never patient data.
_HIDDEN = frozenset("\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
                    "\u2066\u2067\u2068\u2069\ufeff")


def _check_characters(text: str) -> None:
    for char in text:
        if char in _HIDDEN:
            raise InvalidValue(key="import_hidden_char", values={"code": f"U+{ord(char):04X}"})
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            raise InvalidValue(key="import_control_char", values={"code": f"U+{ord(char):04X}"})


def _required_text(value: Any, max_length: int) -> str:
    text = _text(value)
    if text is None:
        raise InvalidValue(key="import_missing")
    if len(text) > max_length:
        raise InvalidValue(key="import_too_long", values={"n": max_length})
    return text


def _optional_text(value: Any, max_length: int | None = 4000) -> str | None:
    text = _text(value)
    if text is not None and max_length is not None and len(text) > max_length:
        raise InvalidValue(key="import_too_long", values={"n": max_length})
    return text


def _parse_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = _text(value)
    key = text.casefold() if text else ""
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise InvalidValue(key="import_not_yes_no", values={"text": text})


def _parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 instant or local time; also 2026/03/01 09:00 and 2026年3月1日."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if not isinstance(value, str):
        return None
    match = _DATETIME.match(value.strip())
    if match:
        y, mo, d, h, mi, s, frac, tz = match.groups()
        try:
            moment = datetime(
                int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                int((frac or "0").ljust(6, "0")),
            )
        except ValueError:
            return None
        if tz:
            if tz == "Z":
                return moment.replace(tzinfo=UTC)
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return moment.replace(tzinfo=timezone(sign * offset))
        return moment
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _context(info: ValidationInfo) -> _Catalog:
    return info.context["catalog"]  # type: ignore[index]


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PatientRow(_Row):
    """One patient as a file gives it."""

    patient_id: str
    name: str
    gender: str
    birth_date: date
    phone: str
    site: str | None = None
    locale: str | None = None
    do_not_contact: bool | None = None
    birthday: str | None = None
    anniversary: str | None = None
    value_tier: str | None = None
    referred_by: str | None = None

    @field_validator("birthday", "anniversary", mode="before")
    @classmethod
    def _month_day(cls, value: Any) -> str | None:
        from core.monthday import parse_month_day

        text = _optional_text(value)
        if text is None:
            return None
        found = parse_month_day(value if isinstance(value, date) else text)
        if found is None:
            raise InvalidValue(key="import_not_month_day", values={"text": text})
        return found

    @field_validator("value_tier", mode="before")
    @classmethod
    def _tier(cls, value: Any) -> str | None:
        text = _optional_text(value, 32)
        return text.casefold() if text else None

    @field_validator("referred_by", mode="before")
    @classmethod
    def _referrer(cls, value: Any) -> str | None:
        return _optional_text(value, 64)
    email: str | None = None
    wechat_openid: str | None = None
    preferred_call_time: str | None = None

    @field_validator("preferred_call_time", mode="before")
    @classmethod
    def _preferred(cls, value: Any) -> str | None:
        from core.calltimes import preferred_range

        text = _optional_text(value)
        return None if text is None else preferred_range(text)

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str | None:
        text = _optional_text(value)
        if text is None:
            return None
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text) or len(text) > 200:
            raise InvalidValue("not an e-mail address")
        return text

    @field_validator("wechat_openid", mode="before")
    @classmethod
    def _openid(cls, value: Any) -> str | None:
        text = _optional_text(value)
        if text is None:
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{6,64}", text):
            raise InvalidValue("not a WeChat openid (6-64 letters, digits, - or _)")
        return text

    @field_validator("patient_id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        return _required_text(value, 64)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        return _required_text(value, 200)

    @field_validator("gender", mode="before")
    @classmethod
    def _gender(cls, value: Any) -> str:
        text = _required_text(value, 20)
        gender = _GENDERS.get(text.casefold())
        if gender is None:
            raise InvalidValue(key="import_not_gender", values={"text": text})
        return gender

    @field_validator("birth_date", mode="before")
    @classmethod
    def _birth_date(cls, value: Any, info: ValidationInfo) -> date:
        if _text(value) is None:
            raise InvalidValue(key="import_missing")
        moment = _parse_datetime(value)
        if moment is None:
            raise InvalidValue(key="import_not_date")
        born = moment.date()
        if born > _context(info).now.date() or born.year < 1880:
            raise InvalidValue(key="import_birth_implausible")
        return born

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> str:
        text = _required_text(value, 40).translate(FULL_WIDTH)  # １３８… as 138…: stored as digits
        if not _PHONE_ALLOWED.match(text) or "+" in text[1:]:
            raise InvalidValue(key="import_phone_characters")
        digits = re.sub(r"\D", "", text)
        if not 7 <= len(digits) <= 15:
            raise InvalidValue(key="import_phone_digits", values={"n": len(digits)})
        return ("+" if text.startswith("+") else "") + digits

    @field_validator("site", mode="before")
    @classmethod
    def _site(cls, value: Any, info: ValidationInfo) -> str | None:
        text = _optional_text(value)
        return None if text is None else _context(info).site(text).code

    @field_validator("locale", mode="before")
    @classmethod
    def _locale(cls, value: Any) -> str | None:
        text = _optional_text(value)
        if text is None:
            return None
        locale = _LOCALES.get(text.casefold())
        if locale is None:
            raise InvalidValue(key="import_unknown_locale", values={"text": text})
        return locale

    @field_validator("do_not_contact", mode="before")
    @classmethod
    def _dnc(cls, value: Any) -> bool | None:
        return _parse_bool(value)


class EpisodeRow(_Row):
    """One episode as a file gives it; ``occurred_at`` comes out aware, in UTC."""

    episode_id: str
    patient_id: str
    site: str
    specialty: str
    trigger: str | None = None
    procedure_text: str | None = None  # the procedure cell as given, when a trigger column chose the procedure
    procedure: str
    occurred_at: datetime
    doctor: str | None = None
    department: str | None = None
    diagnosis: str | None = None
    notes: str | None = None
    status: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str | None:
        text = _optional_text(value)
        if text is None:
            return None
        status = _EPISODE_STATUSES.get(text.casefold())
        if status is None:
            raise InvalidValue(key="import_unknown_episode_status",
                               values={"text": text, "choices": "active, cancelled, 正常, 已取消"})
        return str(status)

    @field_validator("episode_id", "patient_id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        return _required_text(value, 64)

    @field_validator("site", mode="before")
    @classmethod
    def _site(cls, value: Any, info: ValidationInfo) -> str:
        return _context(info).site(_required_text(value, 200)).code

    @field_validator("specialty", mode="before")
    @classmethod
    def _specialty(cls, value: Any, info: ValidationInfo) -> str:
        catalog = _context(info)
        text = _required_text(value, 200)
        key = catalog.specialties.get(text.casefold())
        if key is None:
            installed = sorted(catalog.procedures)
            near = difflib.get_close_matches(text, installed, n=1)
            raise InvalidValue(
                key="import_unknown_specialty" if installed else "import_unknown_specialty_none",
                values={"specialty": text, "hint": _hint(near), "installed": ", ".join(installed)},
            )
        site = info.data.get("site")
        if site is not None:
            enabled = catalog.config.sites[site].specialties
            if key not in enabled:
                raise InvalidValue(key="import_specialty_not_enabled",
                                   values={"specialty": key, "site": site, "enabled": ", ".join(enabled)})
        return key

    @model_validator(mode="before")
    @classmethod
    def _keep_procedure_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and _text(data.get("trigger")) is not None:
            data = {**data, "procedure_text": _text(data.get("procedure"))}
        return data

    @field_validator("trigger", mode="before")
    @classmethod
    def _trigger(cls, value: Any, info: ValidationInfo) -> str | None:
        text = _optional_text(value)
        if text is None:
            return None
        found = _TRIGGERS.get(text.casefold())
        if found is None:
            raise InvalidValue(key="import_unknown_trigger",
                               values={"text": text, "triggers": ", ".join(sorted(set(_TRIGGERS.values())))})
        specialty = info.data.get("specialty")
        if specialty is not None:
            offered = _context(info).by_trigger.get(specialty, {})
            if found not in offered:
                raise InvalidValue(key="import_trigger_not_offered", values={
                    "specialty": specialty, "trigger": found, "triggers": ", ".join(sorted(offered))})
        return found

    @field_validator("procedure", mode="before")
    @classmethod
    def _procedure(cls, value: Any, info: ValidationInfo) -> str:
        catalog = _context(info)
        specialty = info.data.get("specialty")
        trigger = info.data.get("trigger")
        if trigger is not None and specialty is not None:
            # A trigger column chooses the follow-up: the procedure cell may name one of that trigger's
            # procedures, or be what was done (kept as the episode's ``service``), or be empty.
            text = _text(value)
            code = catalog.procedures[specialty].get(text.casefold()) if text else None
            offered = catalog.by_trigger[specialty][trigger]
            return code if code in offered else offered[0]
        text = _required_text(value, 200)
        if specialty is None:
            return text  # the specialty has its own problem
        table = catalog.procedures[specialty]
        code = table.get(text.casefold())
        if code is None:
            codes = sorted(set(table.values()))
            near = difflib.get_close_matches(text.casefold(), list(table), n=1)
            raise InvalidValue(key="import_unknown_procedure", values={
                "procedure": text, "specialty": specialty, "hint": _hint([table[n] for n in near]),
                "procedures": ", ".join(codes)})
        return code

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _occurred_at(cls, value: Any, info: ValidationInfo) -> datetime:
        if _text(value) is None:
            raise InvalidValue(key="import_missing")
        moment = _parse_datetime(value)
        if moment is None:
            raise InvalidValue(key="import_not_datetime", values={"text": _text(value)})
        if moment.tzinfo is None:
            site = info.data.get("site")
            if site is None:
                return moment.replace(tzinfo=UTC)  # the site has its own problem
            zone: ZoneInfo = _context(info).config.sites[site].timezone
            moment = moment.replace(tzinfo=zone)
        now = _context(info).now
        if moment.year < 1900 or moment > now + timedelta(days=LATEST_EPISODE_DAYS):
            raise InvalidValue(key="import_date_implausible", values={"text": _text(value),
                                                                       "days": LATEST_EPISODE_DAYS})
        return moment.astimezone(UTC)

    @field_validator("doctor", "department", mode="before")
    @classmethod
    def _short_text(cls, value: Any) -> str | None:
        return _optional_text(value, 200)

    @field_validator("diagnosis", "notes", mode="before")
    @classmethod
    def _long_text(cls, value: Any) -> str | None:
        return _optional_text(value)

    def attributes(self, columns: Columns) -> dict[str, Any]:
        """The declared attributes this row has a value for."""
        found = {k: v for k in columns.keys if (v := getattr(self, k, None)) is not None}
        # what a visit was for, when a trigger column chose the follow-up and the procedure cell said it
        if self.procedure_text and "service" in columns.keys and "service" not in found:
            if self.procedure_text.casefold() != self.procedure.casefold():
                found["service"] = self.procedure_text[:200]
        return found


_ATTRIBUTE_TYPES: dict[str, Any] = {
    "yes_no": Annotated[bool | None, BeforeValidator(lambda v: _parse_bool(v))],
    "text": Annotated[str | None, BeforeValidator(lambda v: _optional_text(v))],
}


@lru_cache(maxsize=16)
def _episode_model(attributes: tuple[EpisodeAttribute, ...]) -> type[EpisodeRow]:
    """``EpisodeRow`` with one optional field per declared attribute (its column)."""
    if not attributes:
        return EpisodeRow
    fields: dict[str, Any] = {a.key: (_ATTRIBUTE_TYPES[a.type], None) for a in attributes}
    return create_model("EpisodeRowWithAttributes", __base__=EpisodeRow, **fields)


def _problems_of(err: ValidationError, row: int, sheet: str | None) -> Iterator[RowProblem]:
    for item in err.errors(include_url=False):
        column = str(item["loc"][0]) if item["loc"] else None
        message = item["msg"].removeprefix("Value error, ")
        error = (item.get("ctx") or {}).get("error")
        text = error if isinstance(error, InvalidValue) else None
        if item["type"] == "missing":
            text = InvalidValue(key="import_missing")
            message = str(text)
        yield RowProblem(row, column, message, sheet, text)


# -- validation -------------------------------------------------------------------


@dataclass
class _Valid:
    """The validated file: rows by external id in file order, with row number and sheet."""

    patients: dict[str, tuple[int, str | None, PatientRow]] = field(default_factory=dict)
    episodes: dict[str, tuple[int, str | None, EpisodeRow]] = field(default_factory=dict)
    patient_columns: set[str] = field(default_factory=set)
    episode_columns: set[str] = field(default_factory=set)
    repeated: int = 0
    rows: int = 0
    invalid_phones: dict[str, int] = field(default_factory=dict)  # patient id -> row (--allow-invalid-phone)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _validate(
    session: Session, catalog: _Catalog, reading: _Reading, problems: list[RowProblem],
    allow_invalid_phone: bool = False,
) -> tuple[_Valid, dict[str, int]]:
    """Check every row; return the valid rows and the DB ids of the patients episodes refer to."""
    valid = _Valid()
    file_patient_ids: set[str] = set()
    context = {"catalog": catalog}
    for table in reading.tables:
        sheet = table.label
        if not table.rows:
            continue  # e.g. {"patients": [...], "episodes": []}
        missing = [c for c in REQUIRED[table.kind] if c not in table.columns
                   and not (c == "procedure" and "trigger" in table.columns)]  # a trigger column may choose it
        if missing:
            kind = Msg(f"import_kind.{table.kind}")
            problems.extend(row_problem(1, c, Msg("import_no_column", column=c, kind=kind), sheet) for c in missing)
            continue
        model = catalog.models[table.kind]
        id_column = "patient_id" if table.kind == PATIENTS else "episode_id"
        target: dict[str, Any] = valid.patients if table.kind == PATIENTS else valid.episodes
        columns = valid.patient_columns if table.kind == PATIENTS else valid.episode_columns
        columns.update(table.columns)
        for number, raw in table.rows:
            valid.rows += 1
            if table.kind == PATIENTS:
                pid = _text(raw.get("patient_id"))
                if pid:
                    file_patient_ids.add(pid)
            try:
                row = model.model_validate(raw, context=context)
            except ValidationError as err:
                problems.extend(_problems_of(err, number, sheet))
                continue
            if table.kind == PATIENTS and not phone_is_valid(row.phone):
                if not allow_invalid_phone:
                    problems.append(row_problem(number, "phone", Msg("import_phone_invalid"),
                                             sheet))
                    continue
                valid.invalid_phones[row.patient_id] = number
            key = getattr(row, id_column)
            earlier = target.get(key)
            if earlier is None:
                target[key] = (number, sheet, row)
            elif earlier[2] == row:
                valid.repeated += 1
            else:
                text = (Msg("import_duplicate", column=id_column, key=key, first=earlier[0]) if earlier[1] == sheet
                        else Msg("import_duplicate_in_sheet", column=id_column, key=key, first=earlier[0],
                                 sheet=earlier[1]))
                problems.append(row_problem(number, id_column, text, sheet))
    # A referrer is a patient of this file or of the database, and not the patient themselves.
    referrers = {row.referred_by for _, _, row in valid.patients.values() if row.referred_by}
    known_referrers = set(_patient_ids(session, sorted(referrers - file_patient_ids)))
    for number, sheet, row in valid.patients.values():
        if not row.referred_by:
            continue
        if row.referred_by == row.patient_id:
            problems.append(row_problem(number, "referred_by", Msg("import_self_referral"), sheet))
        elif row.referred_by not in file_patient_ids and row.referred_by not in known_referrers:
            unknown = Msg("import_unknown_referrer", patient=row.referred_by)
            problems.append(row_problem(number, "referred_by", unknown, sheet))
    # Episodes must refer to a patient of this file or of the database.
    wanted = sorted({row.patient_id for _, _, row in valid.episodes.values()} - file_patient_ids)
    known = _patient_ids(session, wanted)
    for number, sheet, row in valid.episodes.values():
        if row.patient_id not in file_patient_ids and row.patient_id not in known:
            unknown = Msg("import_unknown_patient", patient=row.patient_id)
            problems.append(row_problem(number, "patient_id", unknown, sheet))
    return valid, known


def _patient_ids(session: Session, external_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(external_ids):
        stmt = select(Patient.external_id, Patient.id).where(_among(Patient.external_id, chunk, session))
        found.update({ext: pid for ext, pid in session.execute(stmt)})
    return found


def _is_psycopg(session: Session) -> bool:
    dialect = session.get_bind().dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _among(column: Any, keys: Sequence[Any], session: Session) -> Any:
    """``column IN keys``; on PostgreSQL ``= ANY(array)``: one parameter instead of one per key, so the
    statement is short and the same for every chunk (the driver converts and prepares it once)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("keys", list(keys), type_=ARRAY(column.type)))
    return column.in_(keys)


def _insert_new(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) and return their new ids, in order.

    PostgreSQL (psycopg): the ids are drawn from the table's sequence in one query and
    the rows go in by ``COPY``, in the session's transaction (all or nothing, as before).
    A multi-row ``INSERT ... VALUES ... RETURNING`` of thousands of parameters costs
    the server and the driver (which parses every such statement anew) several times
    that. Elsewhere: a Core ``insert ... returning`` (SQLAlchemy's insertmanyvalues).
    """
    if not rows:
        return []
    keys = list(rows[0])
    if not _is_psycopg(session) or any(len(row) != len(keys) for row in rows):
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(stmt, rows).scalars())
    from core.db.uow import copy_rows

    conn = session.connection()
    ids = sorted(conn.execute(
        text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"),
        {"n": len(rows)},
    ).scalars())
    dialect = conn.dialect
    binds = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} (id, {', '.join(quote(key) for key in keys)}) FROM STDIN"
    copy_rows(conn, sql, ([new_id, *(row[key] if bind is None or row[key] is None else bind(row[key])
                                      for key, bind in zip(keys, binds, strict=True))]
                          for new_id, row in zip(ids, rows, strict=True)))
    return ids


# -- writing ----------------------------------------------------------------------

_PATIENT_FIELDS = (
    "name", "gender", "birth_date", "phone", "site", "locale", "do_not_contact", "email", "wechat_openid",
    "birthday", "anniversary", "value_tier", "preferred_call_time",
)
_EPISODE_FIELDS = ("doctor", "department", "diagnosis", "notes")


def _patient_changes(row: PatientRow, columns: set[str], old: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in _PATIENT_FIELDS:
        if name not in columns:
            continue
        value = getattr(row, name)
        if name == "do_not_contact":
            if value is None:  # an empty cell says nothing either way
                continue
            if not value and old.dnc_reason != DNC_BY_IMPORT:
                # An import lifts only a flag an import set: a patient who asked the clinic not to
                # be called is released in the application (followup patients dnc --undo), on purpose.
                continue
        if getattr(old, name) != value:
            changes[name] = value
    if "do_not_contact" in changes:
        changes["dnc_reason"] = DNC_BY_IMPORT if changes["do_not_contact"] else None
    if "phone" in changes:
        changes["phone_invalid"] = False  # a new number deserves a new try
    return changes


def _upsert_patients(
    session: Session, valid: _Valid, result: ImportResult, now: datetime, dry_run: bool,
    progress: Callable[[int], None] | None,
) -> dict[str, int]:
    ids: dict[str, int] = {}
    dnc_changed: dict[int, bool] = {}  # patient id -> do-not-contact now
    rows = list(valid.patients.values())
    for chunk in _chunks(rows):
        keys = [row.patient_id for _, _, row in chunk]
        stmt = select(
            Patient.id, Patient.external_id, Patient.dnc_reason, *(getattr(Patient, f) for f in _PATIENT_FIELDS)
        ).where(_among(Patient.external_id, keys, session))
        existing = {r.external_id: r for r in session.execute(stmt)}
        new: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for _, _, row in chunk:
            old = existing.get(row.patient_id)
            if old is None:
                new.append({
                    "external_id": row.patient_id, "name": row.name, "gender": row.gender,
                    "birth_date": row.birth_date, "phone": row.phone, "site": row.site,
                    "locale": row.locale, "do_not_contact": bool(row.do_not_contact),
                    "preferred_call_time": row.preferred_call_time,
                    "birthday": row.birthday, "anniversary": row.anniversary, "value_tier": row.value_tier,
                    "email": row.email, "wechat_openid": row.wechat_openid,
                    "dnc_reason": DNC_BY_IMPORT if row.do_not_contact else None,
                    "phone_invalid": row.patient_id in valid.invalid_phones, "created_at": now, "updated_at": now,
                })
                continue
            ids[row.patient_id] = old.id
            changes = _patient_changes(row, valid.patient_columns, old)
            if "phone" in changes and row.patient_id in valid.invalid_phones:
                changes["phone_invalid"] = True  # imported as given, to be corrected
            if changes:
                updates.append({"id": old.id, "updated_at": now, **changes})
                if "do_not_contact" in changes:
                    dnc_changed[old.id] = changes["do_not_contact"]
            else:
                result.patients_unchanged += 1
        result.patients_created += len(new)
        result.patients_updated += len(updates)
        if not dry_run:
            new_ids = _insert_new(session, Patient.__table__, new)
            ids.update(zip((row["external_id"] for row in new), new_ids, strict=True))
            for group in _same_keys(updates):
                session.execute(update(Patient), group)
        if progress:
            progress(len(chunk))
    if dnc_changed and not dry_run:
        from core.followthrough import apply_do_not_contact

        for on in (True, False):
            apply_do_not_contact(session, [pid for pid, flag in dnc_changed.items() if flag == on], on=on, now=now)
    return ids


def _link_referrals(session: Session, valid: _Valid, user: str, now: datetime) -> None:
    """``referred_by`` links a patient to the one who referred them; each first link is a referral
    (counted in the month's report at the referred patient's site, else the referrer's)."""
    rows = [row for _, _, row in valid.patients.values() if row.referred_by]
    if not rows:
        return
    ids = _patient_ids(session, sorted({r.patient_id for r in rows} | {r.referred_by for r in rows}))  # type: ignore[misc]
    stored: dict[int, Any] = {}  # patient id -> (id, referred_by_id, site), read chunk by chunk
    for chunk in _chunks(sorted(set(ids.values()))):
        query = select(Patient.id, Patient.referred_by_id, Patient.site).where(_among(Patient.id, chunk, session))
        stored.update({r.id: r for r in session.execute(query)})
    links: list[dict[str, Any]] = []
    referrals: list[dict[str, Any]] = []
    for row in rows:
        patient = stored[ids[row.patient_id]]
        referrer_id = ids[row.referred_by]  # type: ignore[index]
        if patient.referred_by_id == referrer_id:
            continue
        links.append({"id": patient.id, "referred_by_id": referrer_id})
        site = patient.site or stored[referrer_id].site or ""
        referrals.append({"kind": "referred", "referrer_id": referrer_id, "referred_id": patient.id, "site": site,
                          "task_id": None, "at": now, "by": user})
    if links:
        session.execute(update(Patient), links)
        session.execute(insert(Referral), referrals)


def _same_keys(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Bulk updates grouped by the set of columns they change (one statement each)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    yield from groups.values()


def _upsert_episodes(
    session: Session, catalog: _Catalog, valid: _Valid, patient_ids: dict[str, int],
    result: ImportResult, dry_run: bool, progress: Callable[[int], None] | None,
) -> None:
    rows = list(valid.episodes.values())
    columns = valid.episode_columns
    for chunk in _chunks(rows):
        keys = [row.episode_id for _, _, row in chunk]
        stmt = select(
            Episode.id, Episode.external_id, Episode.patient_id, Episode.site, Episode.specialty,
            Episode.procedure, Episode.trigger, Episode.occurred_at, Episode.attributes, Episode.status,
            *(getattr(Episode, f) for f in _EPISODE_FIELDS),
        ).where(_among(Episode.external_id, keys, session))
        existing = {r.external_id: r for r in session.execute(stmt)}
        new: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for _, _, row in chunk:
            wanted: dict[str, Any] = {
                "patient_id": patient_ids.get(row.patient_id),  # None: new in a dry run
                "site": row.site,
                "specialty": row.specialty,
                "procedure": row.procedure,
                "trigger": catalog.triggers[(row.specialty, row.procedure)],
                "occurred_at": row.occurred_at,
            }
            wanted.update({f: getattr(row, f) for f in _EPISODE_FIELDS if f in columns})
            if "status" in columns and row.status is not None:
                wanted["status"] = row.status
            old = existing.get(row.episode_id)
            if old is None:
                attributes = row.attributes(catalog.columns)
                new.append({
                    "external_id": row.episode_id, **dict.fromkeys(_EPISODE_FIELDS), **wanted,
                    "attributes": attributes, "status": EpisodeStatus.ACTIVE, "scheduled_at": None,
                    **({"status": row.status} if row.status else {}),
                    "created_at": catalog.now,
                })
                continue
            changes = {k: v for k, v in wanted.items() if getattr(old, k) != v}
            attributes = dict(old.attributes or {})
            for name in catalog.columns.keys:
                if name not in columns:
                    continue
                if getattr(row, name) is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = getattr(row, name)
            if attributes != (old.attributes or {}):
                changes["attributes"] = attributes
            if changes:
                # ``followup schedule`` reconciles the episode's tasks with what changed (core/scheduling.py)
                updates.append({"id": old.id, **changes, "scheduled_at": None})
                result.updated_episode_ids.append(old.id)
            else:
                result.episodes_unchanged += 1
        result.episodes_created += len(new)
        result.episodes_updated += len(updates)
        if not dry_run:
            result.new_episode_ids.extend(_insert_new(session, Episode.__table__, new))
            for group in _same_keys(updates):
                session.execute(update(Episode), group)
        if progress:
            progress(len(chunk))


def import_file(
    session: Session,
    config: ChainConfig,
    plugins: Plugins,
    path: Path,
    *,
    user: str,
    now: datetime,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    allow_invalid_phone: bool = False,
) -> ImportResult:
    """Validate the whole file, then upsert its patients and episodes; all or nothing.

    Raises :class:`ImportFailed` (listing every problem) before writing anything.
    On ``dry_run`` the counts are computed and nothing is written. The caller owns
    the transaction (commit, or roll back). ``progress`` is called with the number
    of rows just handled, chunk by chunk (increments, as rich and click expect).
    A phone that is not a mainland mobile or landline (nor a +country number) is a
    row problem; with ``allow_invalid_phone`` it is imported, flagged for correction
    (``phone_invalid``), with a warning.
    """
    from core import access

    access.require(config, user, access.IMPORT)
    path = Path(path)
    if now.tzinfo is None:
        raise ValueError("import_file needs an aware 'now'")
    columns = Columns.of_plugins(plugins)
    reading = _read(path, config, columns)
    problems = list(reading.problems)
    catalog = _Catalog.build(config, plugins, now, columns)
    valid, known = _validate(session, catalog, reading, problems, allow_invalid_phone)
    if problems:
        order = {t.label: i for i, t in enumerate(reading.tables)}
        problems.sort(key=lambda p: (order.get(p.sheet, 0), p.row))  # stable: columns keep order
        log.info("import of %s failed: %d problems", path.name, len(problems))
        raise ImportFailed(problems, path.name)
    if not valid.rows and not valid.repeated:  # a header and nothing else: an export gone wrong, not "done"
        raise FollowupError(key="import_no_rows", values={"file": path.name})

    result = ImportResult(dry_run=dry_run, rows=valid.rows)
    if reading.ignored:
        result.warn("import_columns_ignored", columns=", ".join(repr(c) for c in sorted(reading.ignored)))
    for title in reading.skipped:
        result.warn("import_sheet_ignored", sheet=title)
    if valid.repeated:
        result.warn("import_rows_repeated", n=valid.repeated)
    if valid.invalid_phones:
        result.warn("import_phones_flagged", n=len(valid.invalid_phones),
                    rows=", ".join(map(str, sorted(valid.invalid_phones.values()))))
    patient_ids = dict(known)
    patient_ids.update(_upsert_patients(session, valid, result, now, dry_run, progress))
    _upsert_episodes(session, catalog, valid, patient_ids, result, dry_run, progress)
    if not dry_run and "referred_by" in valid.patient_columns:
        _link_referrals(session, valid, user, now)
    if progress and valid.repeated:
        progress(valid.repeated)
    if not dry_run:
        audit(session, at=now, user=user, action="import", entity="file", entity_id=None, patient_id=None,
              detail={"file": path.name, "counts": result.counts(), "rows": valid.rows})
        session.flush()
    log.info("import of %s%s: %s", path.name, " (dry run)" if dry_run else "", result.counts())
    return result
