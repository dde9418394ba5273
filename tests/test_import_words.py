"""Imports in the HIS's own words: procedure aliases, phone numbers checked, an empty template to fill in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOW = "2026-11-23T09:00+08:00"
PATIENTS = "patient_id,name,gender,birth_date,phone,site\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _episodes(cli, db: str, tmp_path: Path, *procedures: tuple[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Import one patient per (specialty, procedure word); the procedure code each episode got."""
    patients = PATIENTS + "".join(f"A{i},测试{i},F,1980-01-01,1381234{i:04d},SH-AES\n" for i in range(len(procedures)))
    episodes = "episode_id,patient_id,site,specialty,procedure,occurred_at\n" + "".join(
        f"E{i},A{i},{'SH-DENT' if spec == 'dental' else 'SH-AES' if spec in ('aesthetic', 'hair') else 'BJ-HOSP'},"
        f"{spec},{word},2026-11-20 10:00\n" for i, (spec, word) in enumerate(procedures))
    cli("import", str(_write(tmp_path, "p.csv", patients)), db=db, now=NOW)
    cli("import", str(_write(tmp_path, "e.csv", episodes)), db=db, now=NOW)
    cli("schedule", db=db, now=NOW)
    tasks = json.loads(cli("tasks", "--format", "json", db=db, now=NOW).output)
    return {t["episode_id"]: t["procedure"] for t in tasks}


@pytest.mark.parametrize(("specialty", "word", "code"), [
    ("dental", "种植牙", "implant"), ("dental", "种植体植入", "implant"), ("dental", "洗牙", "scaling"),
    ("dental", "洁治", "scaling"), ("hair", "植发咨询", "consultation"), ("aesthetic", "隆鼻", "rhinoplasty"),
    ("inpatient", "出院", "discharge"),
])
def test_a_procedure_in_the_his_words_imports_as_its_code(cli, db_url, tmp_path, specialty, word, code):  # type: ignore[no-untyped-def]
    assert _episodes(cli, db_url, tmp_path, (specialty, word)) == {"E0": code}


def test_every_shipped_procedure_declares_aliases_and_none_is_ambiguous(plugins) -> None:  # type: ignore[no-untyped-def]
    for key, (_, spec) in plugins.specialties().items():
        words: dict[str, str] = {}
        for proc in spec.procedures:
            if proc.code != "other":
                assert proc.aliases, f"{key}.{proc.code} has no aliases"
            for word in (proc.code, proc.names.zh_CN, proc.names.en, *proc.aliases):
                assert words.setdefault(word.casefold(), proc.code) == proc.code, (key, word)


def test_an_alias_naming_two_procedures_is_refused() -> None:
    from pydantic import ValidationError

    from core.protocol import Specialty

    with pytest.raises(ValidationError, match="names both procedure 'a' and 'b'"):
        Specialty.model_validate({"key": "x", "names": {"zh_CN": "甲", "en": "X"}, "procedures": [
            {"code": "a", "names": {"zh_CN": "洗牙", "en": "A"}},
            {"code": "b", "names": {"zh_CN": "乙", "en": "B"}, "aliases": ["洗牙"]},
        ]})


@pytest.mark.parametrize("phone", ["1388123", "23812345678", "64881200", "4008001234", "+86 1388123"])
def test_a_phone_that_is_not_a_mainland_number_is_a_row_error(cli, db_url, tmp_path, phone) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, "p.csv", PATIENTS + f"A1,王一,F,1980-01-01,{phone},SH-DENT\n")
    result = cli("import", str(path), "--locale", "en", db=db_url, now=NOW, ok=False)
    assert result.exit_code == 1 and "row 2, phone: not a valid phone number" in result.output
    assert phone.replace(" ", "") not in result.output  # the number is not echoed
    assert json.loads(cli("tasks", "--format", "json", db=db_url, now=NOW).output) == []


@pytest.mark.parametrize("phone", ["13812345678", "+86 138 1234 5678", "008613812345678", "010-64881200",
                                   "021 6488 1200", "0571-8765432", "+852 9123 4567", "(0755) 26881234"])
def test_mainland_mobiles_landlines_and_foreign_numbers_are_accepted(phone) -> None:  # type: ignore[no-untyped-def]
    import re

    from core.importing import phone_is_valid

    digits = ("+" if phone.startswith("+") else "") + re.sub(r"\D", "", phone)
    assert phone_is_valid(digits)


def test_allow_invalid_phone_imports_it_flagged_with_a_warning(cli, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Patient

    path = _write(tmp_path, "p.csv", PATIENTS + "A1,王一,F,1980-01-01,1388123,SH-DENT\n"
                  "A2,王二,F,1980-01-01,13812345678,SH-DENT\n")
    result = cli("import", str(path), "--allow-invalid-phone", "--locale", "en", db=db_url, now=NOW)
    assert "Warning: 1 invalid phone number(s) imported as given and flagged for correction (rows 2)" in result.output
    with session_scope(db_url) as session:
        flags = dict(session.execute(select(Patient.external_id, Patient.phone_invalid)).all())
    assert flags == {"A1": True, "A2": False}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_template_names_every_column_and_reads_back_as_itself(cli, db_url, tmp_path, fmt) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / f"episodes.{fmt}"
    cli("import", str(target), "--template", "episodes", "--format", fmt)
    if fmt == "csv":
        raw = target.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
        header = raw.decode("utf-8-sig").splitlines()[0].split(",")
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(target).active
        header = [c.value for c in sheet[1]]
        assert sheet.freeze_panes == "A2"
    assert header[:6] == ["就诊编号 (episode_id)", "患者编号 (patient_id)", "门店 (site)", "专科 (specialty)",
                          "项目 (procedure)", "手术/出院/就诊时间 (occurred_at)"]
    assert "已修复 (restored)" in header and "出院带药 (discharge_medication)" in header  # the plugins' columns
    patients = tmp_path / "patients.csv"
    cli("import", str(patients), "--template", "patients")
    with patients.open("a", encoding="utf-8") as out:
        out.write("T1,赵六,M,1970-05-06,13912345678,SH-DENT,,\n")
    if fmt == "csv":
        with target.open("a", encoding="utf-8") as out:
            out.write("TE1,T1,SH-DENT,口腔科,洗牙,2026-11-20 10:00" + "," * (len(header) - 6) + "\n")
        cli("import", str(patients), db=db_url, now=NOW)
        imported = cli("import", str(target), "--locale", "en", db=db_url, now=NOW).output
        assert "episodes 1 new" in imported and "Warning" not in imported
    again = cli("import", str(target), "--template", "episodes", "--format", fmt, "--locale", "en", ok=False)
    assert again.exit_code == 1 and "already exists: not overwritten" in again.output  # never overwritten


def test_docs_import_md_lists_every_column_alias_and_procedure_alias(plugins) -> None:  # type: ignore[no-untyped-def]
    """If this fails after a column or a procedure was added: .venv/bin/python scripts/import_doc.py"""
    from core.importing import ALIASES, CANONICAL, Columns, template_headers

    doc = (Path(__file__).parents[1] / "docs" / "import.md").read_text(encoding="utf-8")
    for column in CANONICAL:
        assert f"`{column}`" in doc, column
        for alias in ALIASES.get(column, ()):
            assert f"`{alias}`" in doc, (column, alias)
    columns = Columns.of_plugins(plugins)
    for attribute in columns.attributes:
        assert f"`{attribute.key}`" in doc and all(f"`{h}`" in doc for h in attribute.headers)
    for header in template_headers("patients", columns) + template_headers("episodes", columns):
        assert header in doc, header
    for key, (_, spec) in plugins.specialties().items():
        for proc in spec.procedures:
            assert f"`{proc.code}`" in doc and all(alias in doc for alias in proc.aliases), (key, proc.code)
