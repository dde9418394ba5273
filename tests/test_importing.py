"""``core.importing``: patients and episodes from CSV, XLSX and JSON exports.

Every database test runs on SQLite and PostgreSQL (the ``db_url`` fixture of
``tests/conftest.py``). The specialties come from small test catalogues in
``tests/data/import/plugins`` registered in a fresh plugin manager, so these tests
do not depend on the content of the shipped plugins (one test at the end imports
the demo files with the shipped plugins); the chain is the demo one in ``config/``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select, update

from core.config import ChainConfig, load_config
from core.content import ProtocolPlugin
from core.db.engine import session_scope
from core.db.models import AuditEntry, Episode, Patient, Referral
from core.importing import ImportFailed, ImportResult, RowProblem, import_file, read_rows
from core.plugins import PluginError, Plugins

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "import"
NOW = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)

PATIENT_HEADER = "patient_id,name,gender,birth_date,phone,site"
EPISODE_HEADER = "episode_id,patient_id,site,specialty,procedure,occurred_at"
Run = Callable[..., ImportResult]


# -- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def chain() -> ChainConfig:
    # The shipped plugins' catalogues are not what these tests check: skip that check.
    return load_config(ROOT / "config" / "chain.yaml", check_plugins=False)


@pytest.fixture
def catalog() -> Plugins:
    """dental, aesthetic, hair and inpatient as small test catalogues."""
    plugins = Plugins()
    for key in ("dental", "aesthetic", "hair", "inpatient"):
        plugins.register(ProtocolPlugin(f"test_{key}", root=DATA / "plugins" / key), key)
    return plugins


@pytest.fixture
def run(db_url: str, chain: ChainConfig, catalog: Plugins) -> Run:
    """Import a file in one unit of work, as the CLI does (commit, or roll back on error)."""

    def _run(path: Path, *, config: ChainConfig | None = None, **kwargs: Any) -> ImportResult:
        with session_scope(db_url) as session:
            return import_file(
                session, config or chain, catalog, path, user="admin", now=NOW, **kwargs
            )

    return _run


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _csv(tmp_path: Path, header: str, *rows: str, name: str = "export.csv") -> Path:
    return _write(tmp_path, name, "\n".join([header, *rows]) + "\n")


def _counts(db_url: str) -> tuple[int, ...]:
    """Patients, episodes, audit entries."""
    with session_scope(db_url) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Patient, Episode, AuditEntry)
        )


def _patient(db_url: str, external_id: str) -> Patient:
    with session_scope(db_url) as session:
        return session.scalars(select(Patient).where(Patient.external_id == external_id)).one()


def _episode(db_url: str, external_id: str) -> Episode:
    with session_scope(db_url) as session:
        return session.scalars(select(Episode).where(Episode.external_id == external_id)).one()


def _snapshot(db_url: str) -> list[tuple[Any, ...]]:
    with session_scope(db_url) as session:
        patients = [
            (p.external_id, p.name, p.gender, p.birth_date, p.phone, p.site, p.locale,
             p.do_not_contact, p.updated_at)
            for p in session.scalars(select(Patient).order_by(Patient.external_id))
        ]
        episodes = [
            (e.external_id, e.patient_id, e.site, e.specialty, e.procedure, e.trigger,
             e.occurred_at, e.doctor, e.department, e.diagnosis, e.notes, e.attributes)
            for e in session.scalars(select(Episode).order_by(Episode.external_id))
        ]
    return patients + episodes


def _where(excinfo: pytest.ExceptionInfo[ImportFailed]) -> list[tuple[int, str | None]]:
    return [(p.row, p.column) for p in excinfo.value.problems]


def _counted(result: ImportResult, kind: str) -> tuple[int, int, int]:
    return tuple(getattr(result, f"{kind}_{n}") for n in ("created", "updated", "unchanged"))  # type: ignore[return-value]


# -- canonical CSV ----------------------------------------------------------------


def test_canonical_csv_imports_patients_then_episodes(db_url: str, run: Run) -> None:
    patients = run(DATA / "patients.csv")
    assert _counted(patients, "patients") == (4, 0, 0)
    assert patients.warnings == []

    episodes = run(DATA / "episodes.csv")
    assert _counted(episodes, "episodes") == (5, 0, 0)
    assert _counted(episodes, "patients") == (0, 0, 0)
    assert _counts(db_url) == (4, 5, 2)

    wang = _patient(db_url, "P001")
    assert (wang.name, wang.gender, wang.birth_date, wang.site, wang.locale) == (
        "王芳", "F", date(1958, 4, 12), "SH-DENT", "zh_CN",
    )
    assert wang.phone == "13800138000"  # spaces dropped
    assert wang.do_not_contact is False
    li = _patient(db_url, "P002")
    assert (li.gender, li.phone, li.locale) == ("M", "+8613912345678", None)
    assert _patient(db_url, "P003").gender == "M"
    chen = _patient(db_url, "P004")
    # A patient's site (home site) is optional.
    assert (chen.gender, chen.site, chen.locale) == ("F", None, "en")

    implant = _episode(db_url, "E001")
    assert implant.patient_id == wang.id
    assert (implant.site, implant.specialty, implant.procedure, implant.trigger) == (
        "SH-DENT", "dental", "implant", "procedure",
    )
    assert (implant.doctor, implant.department, implant.diagnosis, implant.notes) == (
        "刘医生", "种植科", None, None,
    )
    assert implant.attributes == {}
    assert _episode(db_url, "E002").attributes == {"restored": False}
    assert _episode(db_url, "E004").trigger == "discharge"  # the procedure's trigger kind
    assert _episode(db_url, "E005").trigger == "consultation"
    with session_scope(db_url) as session:
        ids = session.scalars(select(Episode.id).order_by(Episode.external_id)).all()
    assert episodes.new_episode_ids == ids  # in file order


def test_local_time_without_offset_is_the_sites_local_time(db_url: str, run: Run) -> None:
    run(DATA / "patients.csv")
    run(DATA / "episodes.csv")
    # SH-DENT is Asia/Shanghai: 2026-03-01 09:00 local is 01:00 UTC.
    assert _episode(db_url, "E001").occurred_at == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    # An explicit offset or Z is kept as the instant it names.
    assert _episode(db_url, "E002").occurred_at == datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
    assert _episode(db_url, "E003").occurred_at == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    # A date alone is local midnight.
    assert _episode(db_url, "E004").occurred_at == datetime(2026, 2, 26, 16, 0, tzinfo=UTC)


def test_local_time_follows_the_timezone_of_the_episodes_site(
    db_url: str, run: Run, chain: ChainConfig, tmp_path: Path,
) -> None:
    chain.sites["BJ-HOSP"].timezone = ZoneInfo("Europe/Berlin")
    run(DATA / "patients.csv")
    run(_csv(tmp_path, EPISODE_HEADER, "X1,P003,BJ-HOSP,inpatient,discharge,2026-03-01 09:00"))
    assert _episode(db_url, "X1").occurred_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_audit_entry_names_the_file_and_counts_but_no_patient_data(db_url: str, run: Run) -> None:
    run(DATA / "patients.csv")
    with session_scope(db_url) as session:
        entry = session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.entity, entry.user, entry.at) == ("import", "file", "admin", NOW)
    assert entry.detail["file"] == "patients.csv"
    assert entry.detail["counts"]["patients_created"] == 4
    text = json.dumps(entry.detail, ensure_ascii=False)
    for secret in ("王芳", "Li Wei", "13800138000", "138 0013 8000", "1958-04-12"):
        assert secret not in text


def test_import_logs_no_names_or_phone_numbers(
    run: Run, caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    caplog.set_level("DEBUG")
    run(DATA / "patients.csv")
    with pytest.raises(ImportFailed):
        run(_csv(tmp_path, PATIENT_HEADER, "P9,Ma Li,F,1970-01-01,13800000009,SH-XX"))
    for secret in ("王芳", "Li Wei", "13800138000", "0013", "Ma Li", "13800000009"):
        assert secret not in caplog.text


# -- idempotence, updates, dry run -------------------------------------------------


def test_reimporting_the_same_file_changes_nothing(db_url: str, run: Run) -> None:
    run(DATA / "patients.csv")
    run(DATA / "episodes.csv")
    before = _snapshot(db_url)

    again = run(DATA / "patients.csv")
    assert _counted(again, "patients") == (0, 0, 4)
    again = run(DATA / "episodes.csv")
    assert _counted(again, "episodes") == (0, 0, 5)
    assert again.new_episode_ids == [] and again.updated_episode_ids == []
    assert _snapshot(db_url) == before


def test_a_changed_row_updates_the_record_by_external_id(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    run(DATA / "patients.csv")
    run(DATA / "episodes.csv")
    patients = (DATA / "patients.csv").read_text(encoding="utf-8")
    result = run(_write(tmp_path, "patients.csv", patients.replace("138 0013 8000", "13800138001")))
    assert _counted(result, "patients") == (0, 1, 3)
    assert _patient(db_url, "P001").phone == "13800138001"

    episodes = (DATA / "episodes.csv").read_text(encoding="utf-8")
    episodes = episodes.replace("2026-03-01 09:00", "2026-03-01 10:00").replace(",否\n", ",是\n")
    result = run(_write(tmp_path, "episodes.csv", episodes))
    assert _counted(result, "episodes") == (0, 2, 3)
    assert result.updated_episode_ids == [_episode(db_url, "E001").id, _episode(db_url, "E002").id]
    assert _episode(db_url, "E001").occurred_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert _episode(db_url, "E002").attributes == {"restored": True}
    assert _counts(db_url)[:2] == (4, 5)


def test_a_column_absent_from_the_file_is_left_alone(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    run(_csv(tmp_path, f"{PATIENT_HEADER},locale", "P9,Ma Li,F,1970-01-01,13800000009,,en"))
    result = run(_csv(tmp_path, PATIENT_HEADER, "P9,Ma Li,F,1970-01-01,13800000009,"))
    assert _counted(result, "patients") == (0, 0, 1)
    assert _patient(db_url, "P9").locale == "en"
    # Present but empty: the value becomes None.
    result = run(_csv(tmp_path, f"{PATIENT_HEADER},locale", "P9,Ma Li,F,1970-01-01,13800000009,,"))
    assert _counted(result, "patients") == (0, 1, 0)
    assert _patient(db_url, "P9").locale is None


def test_an_import_sets_do_not_contact_and_lifts_only_its_own_flag(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    header = f"{PATIENT_HEADER},do_not_contact"
    run(_csv(tmp_path, header, "P9,Ma Li,F,1970-01-01,13800000009,,no"))
    assert _patient(db_url, "P9").do_not_contact is False
    result = run(_csv(tmp_path, header, "P9,Ma Li,F,1970-01-01,13800000009,,是"))
    assert _counted(result, "patients") == (0, 1, 0)
    patient = _patient(db_url, "P9")
    assert (patient.do_not_contact, patient.dnc_reason) == (True, "import")
    # An empty cell says nothing: the flag stays.
    result = run(_csv(tmp_path, header, "P9,Ma Li,F,1970-01-01,13800000009,,"))
    assert _counted(result, "patients") == (0, 0, 1)
    # "no" in a later export lifts a flag an import set ...
    result = run(_csv(tmp_path, header, "P9,Ma Li,F,1970-01-01,13800000009,,否"))
    assert _counted(result, "patients") == (0, 1, 0)
    assert (_patient(db_url, "P9").do_not_contact, _patient(db_url, "P9").dnc_reason) == (False, None)
    # ... but never one the patient asked the clinic for (lifted with `patients dnc --undo` only).
    with session_scope(db_url) as session:
        session.execute(update(Patient).where(Patient.external_id == "P9").values(do_not_contact=True,
                                                                                   dnc_reason="patient asked"))
    result = run(_csv(tmp_path, header, "P9,Ma Li,F,1970-01-01,13800000009,,否"))
    assert _counted(result, "patients") == (0, 0, 1)
    assert _patient(db_url, "P9").do_not_contact is True


def test_dry_run_counts_but_writes_nothing(db_url: str, run: Run) -> None:
    result = run(DATA / "both.json", dry_run=True)
    assert result.dry_run
    assert (result.patients_created, result.episodes_created) == (2, 2)
    assert result.new_episode_ids == []
    assert _counts(db_url) == (0, 0, 0)

    run(DATA / "patients.csv")
    result = run(DATA / "patients.csv", dry_run=True)
    assert _counted(result, "patients") == (0, 0, 4)
    assert _counts(db_url) == (4, 0, 1)


def test_a_dry_run_with_problems_fails_like_a_real_one(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    with pytest.raises(ImportFailed):
        run(_csv(tmp_path, PATIENT_HEADER, "P1,Ma Li,F,1970-01-01,123,"), dry_run=True)
    assert _counts(db_url) == (0, 0, 0)


def test_progress_reports_every_row(run: Run) -> None:
    steps: list[int] = []
    run(DATA / "both.json", progress=steps.append)
    assert sum(steps) == 4 and all(n > 0 for n in steps)


def test_a_row_repeated_identically_counts_once(db_url: str, run: Run, tmp_path: Path) -> None:
    row = "P1,Ma Li,F,1970-01-01,13800000001,SH-DENT"
    result = run(_csv(tmp_path, PATIENT_HEADER, row, row))
    assert result.patients_created == 1
    assert any("repeat" in w for w in result.warnings)
    assert _counts(db_url)[0] == 1


def test_many_rows_go_in_chunks(db_url: str, run: Run, tmp_path: Path) -> None:
    n = 1234  # more than two lookup chunks of 500
    patients = [f"P{i:05},Patient {i},F,1970-01-01,138{i:08},SH-DENT" for i in range(n)]
    episodes = [f"E{i:05},P{i:05},SH-DENT,dental,implant,2026-03-01 09:00" for i in range(n)]
    assert run(_csv(tmp_path, PATIENT_HEADER, *patients, name="p.csv")).patients_created == n
    result = run(_csv(tmp_path, EPISODE_HEADER, *episodes, name="e.csv"))
    assert result.episodes_created == n and len(set(result.new_episode_ids)) == n
    assert _episode(db_url, "E01233").patient_id == _patient(db_url, "P01233").id
    assert _counted(run(tmp_path / "e.csv"), "episodes") == (0, 0, n)


def test_referred_by_links_each_patient_to_the_referrer_once(db_url: str, run: Run, tmp_path: Path) -> None:
    run(_csv(tmp_path, PATIENT_HEADER, "R1,Ma Li,F,1970-01-01,13800000001,SH-DENT", name="r.csv"))
    header = f"{PATIENT_HEADER},referred_by"
    rows = ["P1,Wang Fang,F,1971-01-01,13800000002,,R1",  # a stored referrer; no site of their own
            "P2,Li Wei,M,1972-01-01,13800000003,SH-AES,P1"]  # a referrer of the same file
    run(_csv(tmp_path, header, *rows))
    run(_csv(tmp_path, header, *rows))  # the same links again: no second referral
    run(_csv(tmp_path, header, rows[0], rows[1].replace(",P1", ",R1")))  # P2 names another referrer
    ids = {ext: _patient(db_url, ext).id for ext in ("R1", "P1", "P2")}
    with session_scope(db_url) as session:
        referrals = session.execute(select(
            Referral.kind, Referral.referrer_id, Referral.referred_id, Referral.site, Referral.task_id, Referral.by,
            Referral.at).order_by(Referral.id)).all()
    assert [tuple(r) for r in referrals] == [
        ("referred", ids["R1"], ids["P1"], "SH-DENT", None, "admin", NOW),  # the referrer's site
        ("referred", ids["P1"], ids["P2"], "SH-AES", None, "admin", NOW),
        ("referred", ids["R1"], ids["P2"], "SH-AES", None, "admin", NOW),
    ]
    assert (_patient(db_url, "P1").referred_by_id, _patient(db_url, "P2").referred_by_id) == (ids["R1"], ids["R1"])


# -- formats and headers -----------------------------------------------------------


def test_chinese_his_headers(db_url: str, run: Run) -> None:
    patients = run(DATA / "patients_zh.csv")
    assert patients.patients_created == 2
    assert patients.warnings == ["columns ignored (not known): '入院日期'"]  # reported once
    episodes = run(DATA / "episodes_zh.csv")
    assert episodes.episodes_created == 2

    zhao = _patient(db_url, "Z001")
    assert (zhao.name, zhao.gender, zhao.birth_date, zhao.phone) == (
        "赵敏", "F", date(1962, 7, 8), "13911112222",
    )
    assert zhao.site == "SH-DENT"  # the site's Chinese name is accepted
    implant = _episode(db_url, "V001")
    # Specialty and procedure given by their Chinese names.
    assert (implant.specialty, implant.procedure, implant.doctor, implant.department) == (
        "dental", "implant", "刘医生", "种植科",
    )
    assert (implant.diagnosis, implant.notes) == ("牙列缺损", "术后医嘱已交代")
    assert _episode(db_url, "V002").trigger == "discharge"


def test_gb18030_csv_from_a_chinese_his(db_url: str, run: Run, tmp_path: Path) -> None:
    text = (DATA / "patients_zh.csv").read_text(encoding="utf-8")
    path = _write(tmp_path, "his.csv", text, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert run(path).patients_created == 2
    assert _patient(db_url, "Z002").name == "钱进"


def test_utf8_with_bom(run: Run, tmp_path: Path) -> None:
    text = (DATA / "patients.csv").read_text(encoding="utf-8")
    assert run(_write(tmp_path, "bom.csv", text, encoding="utf-8-sig")).patients_created == 4


def _workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


EPISODE_COLUMNS = ["episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at"]


def test_xlsx_first_sheet_and_sheets_named_patients_and_episodes(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    path = _workbook(tmp_path / "export.xlsx", {
        "患者": [
            ["病历号", "姓名", "性别", "出生日期", "手机号", "院区"],
            # Excel date and number cells
            ["X1", "刘洋", "男", datetime(1975, 5, 6), 13812345678, "SH-AES"],
            [],
            [2002, "Wu Na", "F", "1999-09-09", "139-0000-1111", None],
        ],
        "notes": [["anything"], ["ignored"]],
        "episodes": [
            [*EPISODE_COLUMNS, "restored"],
            ["XE1", "X1", "SH-AES", "aesthetic", "rhinoplasty", datetime(2026, 3, 1, 9, 0), None],
            ["XE2", 2002, "SH-DENT", "dental", "root_canal", "2026-03-02 10:00", "no"],
        ],
    })
    # Row numbers as the sheet shows them; the blank row is skipped.
    assert [number for number, _ in read_rows(path)[0][1]] == [2, 4]
    result = run(path)
    assert (result.patients_created, result.episodes_created) == (2, 2)
    liu = _patient(db_url, "X1")
    assert (liu.birth_date, liu.phone, liu.gender) == (date(1975, 5, 6), "13812345678", "M")
    assert _patient(db_url, "2002").phone == "13900001111"
    assert _episode(db_url, "XE1").occurred_at == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    assert _episode(db_url, "XE2").attributes == {"restored": False}
    assert run(path).episodes_unchanged == 2


def test_xlsx_cover_sheet_beside_named_sheets_is_skipped(run: Run, tmp_path: Path) -> None:
    path = _workbook(tmp_path / "export.xlsx", {
        "Summary": [["Export of 2026-03-05"], ["2 patients"]],
        "Patients": [
            ["patient_id", "name", "gender", "birth_date", "phone"],
            ["X1", "刘洋", "男", "1975-05-06", "13812345678"],
            ["X2", "Wu Na", "F", "1999-09-09", "13900001111"],
        ],
    })
    result = run(path)
    assert result.patients_created == 2
    assert result.warnings == ["sheet 'Summary' ignored: its first row names no known column"]


def test_xlsx_problem_names_sheet_and_row(run: Run, tmp_path: Path) -> None:
    path = _workbook(tmp_path / "bad.xlsx", {
        "patients": [
            ["patient_id", "name", "gender", "birth_date", "phone"],
            ["X1", "刘洋", "男", "1975-05-06", "13812345678"],
        ],
        "episodes": [
            EPISODE_COLUMNS,
            [],
            ["XE1", "X1", "SH-AES", "aesthetic", "nose job", "2026-03-01 09:00"],
        ],
    })
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    [problem] = excinfo.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("episodes", 3, "procedure")
    assert str(problem).startswith("episodes, row 3, procedure: unknown procedure 'nose job'")


def test_json_with_patients_and_episodes(db_url: str, run: Run) -> None:
    result = run(DATA / "both.json")
    assert (result.patients_created, result.episodes_created) == (2, 2)
    zhou = _patient(db_url, "1002")  # a JSON number as an id
    assert (zhou.phone, zhou.site, zhou.do_not_contact) == ("13744445555", None, True)
    assert _episode(db_url, "JE01").occurred_at == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    assert _episode(db_url, "JE02").patient_id == zhou.id
    assert _episode(db_url, "JE02").doctor == "吴医生"


def test_json_list_of_episodes(db_url: str, run: Run) -> None:
    run(DATA / "both.json")
    result = run(DATA / "episodes.json")
    assert _counted(result, "patients") == (0, 0, 0)
    assert result.episodes_created == 2
    assert result.warnings == ["columns ignored (not known): 'referred_by'"]  # a patient column, in an episodes file
    assert _episode(db_url, "JE03").notes == "revision"
    assert _episode(db_url, "JE04").trigger == "consultation"


def test_json_list_of_patients_with_chinese_keys(db_url: str, run: Run, tmp_path: Path) -> None:
    rows = [{"patient_id": "J9", "姓名": "冯雪", "性别": "female", "出生日期": "1990-01-01",
             "电话": "13600000000"}]
    path = _write(tmp_path, "p.json", json.dumps(rows, ensure_ascii=False))
    assert run(path).patients_created == 1
    assert _patient(db_url, "J9").gender == "F"


def test_json_with_an_empty_part(run: Run, tmp_path: Path) -> None:
    data = json.loads((DATA / "both.json").read_text(encoding="utf-8"))
    data["episodes"] = []
    result = run(_write(tmp_path, "p.json", json.dumps(data)))
    assert (result.patients_created, result.episodes_created) == (2, 0)


def _config_copy(tmp_path: Path, site_file: str, import_columns: dict[str, str]) -> ChainConfig:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    site_path = folder / "sites" / site_file
    data = yaml.safe_load(site_path.read_text(encoding="utf-8"))
    data["import_columns"] = import_columns
    site_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(folder / "chain.yaml", check_plugins=False)


def test_site_header_mapping(db_url: str, run: Run, tmp_path: Path) -> None:
    config = _config_copy(
        tmp_path, "sh-dent.yaml", {"客户卡号": "patient_id", "Mobile No.": "phone"}
    )
    path = _csv(
        tmp_path, "客户卡号,姓名,性别,出生日期,Mobile No.,门店",
        "C-77,马丽,女,1980-02-02,13500000077,SH-DENT",
    )
    with pytest.raises(ImportFailed):  # without the mapping, the headers mean nothing
        run(path)
    result = run(path, config=config)
    assert result.patients_created == 1 and result.warnings == []
    assert _patient(db_url, "C-77").phone == "13500000077"


def test_site_header_mapping_to_an_unknown_column(run: Run, tmp_path: Path) -> None:
    config = _config_copy(tmp_path, "sh-aes.yaml", {"Mobile No.": "mobile_phone"})
    path = _csv(tmp_path, f"{PATIENT_HEADER},Mobile No.", "C1,马丽,女,1980-02-02,13500000077,,1")
    with pytest.raises(ImportFailed) as excinfo:
        run(path, config=config)
    [problem] = excinfo.value.problems
    assert (problem.row, problem.column) == (1, "Mobile No.")
    assert "SH-AES" in problem.reason and "'mobile_phone'" in problem.reason


def test_read_rows_gives_canonical_keys_and_spreadsheet_row_numbers(tmp_path: Path) -> None:
    path = _csv(
        tmp_path, "姓名,患者编号,性别,出生日期,电话",
        "王芳,P1,女,1958-04-12,13800138000", "", "陈静,P2,女,,",
    )
    [(kind, rows)] = read_rows(path)
    assert kind == "patients"
    assert rows == [
        (2, {"name": "王芳", "patient_id": "P1", "gender": "女", "birth_date": "1958-04-12",
             "phone": "13800138000"}),
        (4, {"name": "陈静", "patient_id": "P2", "gender": "女", "birth_date": None,
             "phone": None}),
    ]
    assert read_rows(DATA / "episodes.csv")[0][0] == "episodes"  # it has an episode_id column


# -- problems: nothing is written --------------------------------------------------

GOOD = {
    "patients": "P0,Good Row,M,1980-01-01,13800000000,",
    "episodes": "E0,P001,SH-DENT,dental,extraction,2026-03-01 09:00",
}
ERRORS = [
    pytest.param(
        "patients", ["P1,Ma Li,F,1970-01-01,13800000001,SH-DNT"], "site",
        "unknown site 'SH-DNT' — did you mean 'SH-DENT'?", id="unknown-site",
    ),
    pytest.param(
        "episodes", ["E9,P001,SH-DENT,aesthetic,rhinoplasty,2026-03-01 09:00"], "specialty",
        "specialty 'aesthetic' is not enabled at site SH-DENT", id="specialty-not-enabled",
    ),
    pytest.param(
        "episodes", ["E9,P001,SH-DENT,dentl,implant,2026-03-01 09:00"], "specialty",
        "did you mean 'dental'?", id="unknown-specialty",
    ),
    pytest.param(
        "episodes", ["E9,P001,SH-DENT,dental,implnt,2026-03-01 09:00"], "procedure",
        "unknown procedure 'implnt' for dental — did you mean 'implant'?", id="unknown-procedure",
    ),
    pytest.param(
        "episodes", ["E9,P001,SH-DENT,dental,implant,2026-02-30 09:00"], "occurred_at",
        "not a date and time", id="bad-occurred-at",
    ),
    pytest.param(
        "episodes", ["E9,P001,SH-DENT,dental,implant,yesterday"], "occurred_at",
        "not a date and time", id="words-for-occurred-at",
    ),
    pytest.param(
        "patients", ["P1,Ma Li,F,1970-13-01,13800000001,"], "birth_date", "not a date",
        id="bad-birth-date",
    ),
    pytest.param(
        "patients", ["P1,Ma Li,F,2027-01-01,13800000001,"], "birth_date", "in the future",
        id="future-birth-date",
    ),
    pytest.param(
        "patients", ["P1,Ma Li,X,1970-01-01,13800000001,"], "gender", "F/M", id="bad-gender",
    ),
    pytest.param(
        "patients", ["P1,Ma Li,F,1970-01-01,138-000,"], "phone", "7 to 15 digits, this one has 6",
        id="short-phone",
    ),
    pytest.param(
        "patients", ["P1,Ma Li,F,1970-01-01,1380000000112345,"], "phone", "7 to 15 digits",
        id="long-phone",
    ),
    pytest.param(
        "patients", ["P1,Ma Li,F,1970-01-01,call 13800000001,"], "phone", "digits",
        id="phone-with-letters",
    ),
    pytest.param(
        "episodes", ["E9,P404,SH-DENT,dental,implant,2026-03-01 09:00"], "patient_id",
        "patient 'P404' is neither in the database nor in this file", id="unknown-patient",
    ),
    pytest.param(
        "patients",
        ["P1,Ma Li,F,1970-01-01,13800000001,", "P1,Ma Li,F,1971-01-01,13800000001,"],
        "patient_id", "'P1' appears again with different content (first at row 3)",
        id="duplicate-patient",
    ),
    pytest.param(
        "episodes",
        ["E9,P001,SH-DENT,dental,implant,2026-03-01 09:00",
         "E9,P001,SH-DENT,dental,extraction,2026-03-01 09:00"],
        "episode_id", "'E9' appears again with different content (first at row 3)",
        id="duplicate-episode",
    ),
    pytest.param(
        "patients", ["P1,,F,1970-01-01,13800000001,"], "name", "required", id="missing-name",
    ),
]


@pytest.mark.parametrize(("kind", "rows", "column", "reason"), ERRORS)
def test_a_bad_row_fails_the_whole_file(
    db_url: str, run: Run, tmp_path: Path, kind: str, rows: list[str], column: str, reason: str,
) -> None:
    run(DATA / "patients.csv")
    before, snapshot = _counts(db_url), _snapshot(db_url)
    header = PATIENT_HEADER if kind == "patients" else EPISODE_HEADER
    # A good row first (row 2): it must not be written either.
    with pytest.raises(ImportFailed) as excinfo:
        run(_csv(tmp_path, header, GOOD[kind], *rows))
    bad_row = 2 + len(rows)  # the last row of the file
    assert _where(excinfo) == [(bad_row, column)]
    assert reason in excinfo.value.problems[0].reason
    assert _counts(db_url) == before and _snapshot(db_url) == snapshot


def test_every_problem_is_listed_with_row_and_column(db_url: str, run: Run, tmp_path: Path) -> None:
    path = _csv(
        tmp_path, PATIENT_HEADER,
        "P1,Ma Li,F,1970-01-01,12345,SH-DENT",
        "P2,Wu Na,?,1970-01-01,13800000002,XX",
        "P3,Zhu Yi,M,1970-01-01,13800000003,SH-AES",
        name="bad.csv",
    )
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    assert _where(excinfo) == [(2, "phone"), (3, "gender"), (3, "site")]  # in row order
    assert all(isinstance(p, RowProblem) for p in excinfo.value.problems)
    message = str(excinfo.value)
    assert message.startswith("3 problems in bad.csv; nothing was imported:")
    for where in ("row 2, phone:", "row 3, gender:", "row 3, site:"):
        assert where in message
    assert "Ma Li" not in message and "12345" not in message  # no names or numbers echoed
    assert _counts(db_url) == (0, 0, 0)


def test_problems_are_listed_in_row_order(run: Run, tmp_path: Path) -> None:
    run(DATA / "patients.csv")
    path = _csv(
        tmp_path, EPISODE_HEADER,
        "E1,P404,SH-DENT,dental,implant,2026-03-01 09:00",
        "E2,P001,SH-DENT,dental,implnt,2026-03-01 09:00",
        "E3,P405,SH-DENT,dental,implant,2026-03-01 09:00",
    )
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    assert _where(excinfo) == [(2, "patient_id"), (3, "procedure"), (4, "patient_id")]


def test_a_missing_column_is_reported_on_the_header_row(run: Run, tmp_path: Path) -> None:
    header = "episode_id,patient_id,site,specialty,procedure"
    path = _csv(tmp_path, header, "E1,P1,SH-DENT,dental,implant")
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    assert _where(excinfo) == [(1, "occurred_at")]


def test_two_headers_for_one_column(run: Run, tmp_path: Path) -> None:
    with pytest.raises(ImportFailed) as excinfo:
        run(_csv(tmp_path, "就诊编号,病历号,院区,专科,项目,出院日期,手术日期"))
    assert _where(excinfo) == [(1, "occurred_at")]
    assert "'出院日期' and '手术日期'" in excinfo.value.problems[0].reason


def test_episode_may_refer_to_a_patient_of_the_same_file(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    episode = {"site": "SH-DENT", "specialty": "dental", "procedure": "implant",
               "occurred_at": "2026-03-01 09:00"}
    data = {
        "patients": [{"patient_id": "N1", "name": "Ma Li", "gender": "F",
                      "birth_date": "1970-01-01", "phone": "13800000001"}],
        "episodes": [{"episode_id": "NE1", "patient_id": "N1", **episode},
                     {"episode_id": "NE2", "patient_id": "N2", **episode}],
    }
    with pytest.raises(ImportFailed) as excinfo:
        run(_write(tmp_path, "both.json", json.dumps(data)))
    [problem] = excinfo.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("episodes", 2, "patient_id")
    assert _counts(db_url) == (0, 0, 0)
    data["episodes"].pop()
    assert run(_write(tmp_path, "both.json", json.dumps(data))).episodes_created == 1


def test_a_restored_value_that_is_not_yes_or_no(run: Run, tmp_path: Path) -> None:
    run(DATA / "patients.csv")
    path = _csv(
        tmp_path, f"{EPISODE_HEADER},restored",
        "E1,P001,SH-DENT,dental,root_canal,2026-03-01 09:00,maybe",
    )
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    assert _where(excinfo) == [(2, "restored")]


def _eyes(tmp_path: Path, attribute: str) -> ProtocolPlugin:
    """A third-party specialty declaring one episode attribute of its own."""
    root = tmp_path / "eyes"
    root.mkdir(exist_ok=True)
    (root / "protocol.yaml").write_text(
        "specialty: {key: eyes, names: {zh_CN: 眼科, en: Ophthalmology}}\n"
        f"attributes:\n  - {attribute}\n"
        "procedures:\n"
        "  - code: cataract\n"
        "    names: {zh_CN: 白内障手术, en: Cataract surgery}\n"
        "    milestones:\n"
        "      - {key: day1, purpose: check_in, names: {zh_CN: 术后第一天, en: Day after}, "
        "offset: 1d, window: [1d, 2d]}\n",
        encoding="utf-8",
    )
    return ProtocolPlugin("eyes_plugin", root=root)


def test_a_plugin_declares_its_own_episode_column(db_url: str, chain: ChainConfig, tmp_path: Path) -> None:
    """Core knows no specialty's columns: a plugin's attribute, under its Chinese header, lands on the episode."""
    plugins = Plugins()
    plugins.register(ProtocolPlugin("test_dental", root=DATA / "plugins" / "dental"), "dental")
    plugins.register(_eyes(tmp_path, "{key: lens, type: text, names: {zh_CN: 晶体, en: Lens}, headers: [晶体类型]}"),
                     "eyes")
    config = chain  # loaded afresh for this test
    config.sites["SH-DENT"].specialties = [*config.sites["SH-DENT"].specialties, "eyes"]
    with session_scope(db_url) as session:
        import_file(session, config, plugins, DATA / "patients.csv", user="admin", now=NOW)
        import_file(session, config, plugins, _csv(
            tmp_path, f"{EPISODE_HEADER},晶体类型,restored",
            "X1,P001,SH-DENT,eyes,cataract,2026-03-01 09:00,Toric IOL,",
            "X2,P001,SH-DENT,dental,root_canal,2026-03-01 09:00,,no",
        ), user="admin", now=NOW)
    assert _episode(db_url, "X1").attributes == {"lens": "Toric IOL"}
    assert _episode(db_url, "X2").attributes == {"restored": False}


def test_two_plugins_cannot_give_one_column_two_types(db_url: str, chain: ChainConfig, tmp_path: Path) -> None:
    plugins = Plugins()
    plugins.register(ProtocolPlugin("test_dental", root=DATA / "plugins" / "dental"), "dental")
    plugins.register(_eyes(tmp_path, "{key: restored, type: text, names: {zh_CN: 修复, en: Restored}}"), "eyes")
    with session_scope(db_url) as session, pytest.raises(PluginError) as excinfo:
        import_file(session, chain, plugins, DATA / "patients.csv", user="admin", now=NOW)
    assert str(excinfo.value) == (
        "plugin 'eyes', hook followup_specialties: attribute 'restored' is text, but plugin 'dental' declares it yes_no"
    )
    assert _snapshot(db_url) == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("x.xls", b"", "save it as .xlsx or .csv"),
        ("x.pdf", b"", "unknown file type '.pdf'"),
        ("x.json", b"{not json", "not valid JSON"),
        ("x.json", b'{"visits": []}', "a JSON file holds a list of row objects"),
        ("x.json", b"[1, 2]", "not a row object"),
        ("x.csv", b"", "the file is empty"),
        # Excel's "Unicode text" export is UTF-16: named, not read as mojibake.
        ("x.csv", f"{PATIENT_HEADER}\nP1,Ma Li,F,1970-01-01,13800000001,\n".encode("utf-16"),
         "neither UTF-8 nor GB18030"),
        ("x.json", '[{"patient_id": "P1"}]'.encode("utf-16"), "neither UTF-8 nor GB18030"),
    ],
)
def test_an_unreadable_file_fails(
    db_url: str, run: Run, tmp_path: Path, name: str, content: bytes, reason: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    assert f" in {name}; nothing was imported:" in str(excinfo.value)  # names the file
    assert reason in str(excinfo.value)
    assert _counts(db_url) == (0, 0, 0)


def test_an_unclosed_quote_names_its_row_and_writes_nothing(
    db_url: str, run: Run, tmp_path: Path,
) -> None:
    # The open quote swallows the rest of the file into one cell, past the csv module's limit.
    rows = [f"P{i},Patient {i},F,1970-01-01,138{i:08},SH-DENT" for i in range(4000)]
    path = _csv(tmp_path, PATIENT_HEADER, GOOD["patients"], 'PX,"Ma Li,F,1970-01-01,13800000001,', *rows)
    with pytest.raises(ImportFailed) as excinfo:
        run(path)
    assert _where(excinfo) == [(3, None)]
    assert "quote left open" in excinfo.value.problems[0].reason
    assert _counts(db_url) == (0, 0, 0)


def test_cli_import_of_a_bad_file_exits_non_zero_naming_file_row_and_column(
    cli: Any, db_url: str, tmp_path: Path,
) -> None:
    path = _csv(tmp_path, PATIENT_HEADER, GOOD["patients"], "P1,Ma Li,X,1970-01-01,13800000001,",
                name="bad.csv")
    result = cli("import", str(path), "--locale", "en", db=db_url, ok=False)
    assert result.exit_code == 1
    assert "1 problem in bad.csv; nothing was imported" in result.output
    assert "row 3, gender:" in result.output
    assert _counts(db_url) == (0, 0, 0)


# -- the shipped plugins and the demo files -----------------------------------------


def test_demo_files_import_with_the_shipped_plugins(db_url: str, tmp_path: Path) -> None:
    """The demo's patients and episodes (exported as ``followup demo`` does) all import."""
    from core.plugins import build_plugins

    plugins = build_plugins()
    config = load_config(ROOT / "config" / "chain.yaml", check_plugins=False)
    with (ROOT / "config" / "demo" / "episodes.csv").open(encoding="utf-8") as fin:
        reader = csv.DictReader(fin)
        out = io.StringIO()
        columns = [c for c in reader.fieldnames or [] if c not in ("days_ago", "time")]
        writer = csv.DictWriter(out, fieldnames=[*columns, "occurred_at"])
        writer.writeheader()
        for row in reader:
            day = NOW.date() - timedelta(days=int(row.pop("days_ago")))
            row["occurred_at"] = f"{day} {row.pop('time')}"
            writer.writerow(row)
    export = _write(tmp_path, "episodes.csv", out.getvalue())
    with session_scope(db_url) as session:
        patients = import_file(
            session, config, plugins, ROOT / "config" / "demo" / "patients.csv", user="admin", now=NOW
        )
        episodes = import_file(session, config, plugins, export, user="admin", now=NOW)
    assert patients.patients_created > 0 and patients.warnings == []
    assert episodes.episodes_created == len(out.getvalue().strip().splitlines()) - 1
