"""The setup commands a clinic runs first: demo, config check, plugins list, protocols, db upgrade, tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NOW = "2026-11-23T09:00+08:00"


def test_help_does_not_import_the_database_layer() -> None:
    """`followup --help` stays instant: SQLAlchemy, pydantic and pluggy load only in the commands using them."""
    code = (
        "import sys; from click.testing import CliRunner; from core.cli.main import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'pluggy', 'rich', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_the_installed_followup_command_runs_a_command_end_to_end(tmp_path: Path) -> None:
    """The console script (core/cli/entry.py, collection off until the database is ready) runs a real
    command and collects garbage again afterwards: what a coordinator types, not the click object."""
    import os

    exe = Path(sys.executable).with_name("followup")
    assert exe.exists(), "the followup script is installed with the package (pyproject [project.scripts])"
    env = {**os.environ, "FOLLOWUP_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
           "FOLLOWUP_CONFIG": str(ROOT / "config" / "chain.yaml"), "FOLLOWUP_NOW": NOW}
    demo = subprocess.run([str(exe), "demo", "--locale", "en"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert demo.returncode == 0, demo.stderr
    assert "Imported 26 new patients" in demo.stdout and "13812345601" not in demo.stdout
    probe = ("import gc, sys; from core.cli import entry, main; "
             "assert not gc.isenabled(); main.resume_collection(); print(gc.isenabled(), gc.get_threshold()[0])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["True", "50000"]


def test_demo_schedules_the_chain_and_shows_today(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    first = cli("demo", "--locale", "en", db=db, now=NOW)
    assert "Imported 26 new patients and 27 new episodes" in first.output
    for site in ("SH-DENT", "SH-AES", "BJ-HOSP"):
        assert f"({site}) — 2026-11-23" in first.output
    assert "worklist --site SH-DENT" in first.output  # tells the user what to try next
    assert "13812345601" not in first.output  # phones are masked
    again = cli("demo", "--locale", "en", db=db, now=NOW)
    assert "Imported 0 new patients and 0 new episodes; scheduled 0 new follow-up tasks" in again.output
    fresh = cli("demo", "--fresh", db=db, now=NOW)  # the chain's language: zh_CN
    assert "已导入新患者 26 位" in fresh.output and "接下来可以试试" in fresh.output
    tasks = json.loads(cli("tasks", "--format", "json", db=db, now=NOW).output)
    assert {t["specialty"] for t in tasks} == {"dental", "aesthetic", "hair", "inpatient"}


def test_demo_refuses_a_server_database(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("demo", db="postgresql://postgres@127.0.0.1:5432/test", ok=False)
    assert result.exit_code == 1 and "embedded SQLite" in result.output


def test_config_check_json_summarises_every_site(cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(cli("config", "check", "--format", "json").stdout)
    by_code = {s["code"]: s for s in data["sites"]}
    assert set(by_code) == {"SH-DENT", "SH-AES", "BJ-HOSP"}
    assert set(by_code["SH-AES"]) >= {"code", "name", "timezone", "locale", "specialties"}
    assert by_code["SH-AES"]["specialties"] == ["aesthetic", "hair"]
    assert by_code["BJ-HOSP"]["timezone"] == "Asia/Shanghai"


def test_config_check_names_file_line_and_the_near_match(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = tmp_path / "chain.yaml"
    chain.write_text(
        "name: {zh_CN: 测试, en: Test}\nsites:\n  - code: A\n    name: {zh_CN: 甲, en: A}\n"
        "    specialties: [dentl]\n",
        encoding="utf-8",
    )
    result = cli("config", "check", config=chain, ok=False)
    assert result.exit_code == 1
    assert f"{chain}:5" in result.output
    assert "did you mean 'dental'" in result.output
    assert "installed: aesthetic, dental, hair, inpatient" in result.output
    assert "Traceback" not in result.output


def test_plugins_list_shows_the_four_built_ins_from_entry_points(cli) -> None:  # type: ignore[no-untyped-def]
    rows = {p["name"]: p for p in json.loads(cli("plugins", "list", "--format", "json").output)}
    for name in ("dental", "aesthetic", "inpatient", "hair"):
        assert rows[name]["source"] == "built-in"
        assert rows[name]["status"] == "ok"
        assert rows[name]["specialties"] == [name]
        assert "followup_milestones" in rows[name]["hooks"]
        assert rows[name]["version"]
    assert rows["core"]["source"] == "core"


def test_load_plugins_allowlist_restricts_what_loads(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from core.plugins import reset_plugins

    monkeypatch.setenv("FOLLOWUP_LOAD_PLUGINS", "dental,hair")
    reset_plugins()
    try:
        names = {p["name"] for p in json.loads(cli("plugins", "list", "--format", "json").output)}
    finally:
        monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS")
        reset_plugins()
    assert names == {"core", "dental", "hair"}


def test_protocols_json_lists_every_milestone_with_the_contract_keys(cli) -> None:  # type: ignore[no-untyped-def]
    rows = json.loads(cli("protocols", "--format", "json").output)
    assert {r["specialty"] for r in rows} == {"dental", "aesthetic", "inpatient", "hair"}
    for row in rows:
        assert {"specialty", "procedure", "milestone", "purpose", "offset", "window", "urgency", "channel"} <= set(row)
    implant = [r["milestone"] for r in rows if r["procedure"] == "implant"]
    assert len(implant) == 4
    discharge = next(r for r in rows if r["procedure"] == "discharge")
    assert (discharge["offset"], discharge["window"]) == ("6d", ["5d", "7d"])


def test_protocols_for_a_site_show_the_day_3_reminder_of_a_day_5_removal(cli) -> None:  # type: ignore[no-untyped-def]
    default = json.loads(cli("protocols", "aesthetic.rhinoplasty", "--format", "json").output)
    site = json.loads(cli("protocols", "aesthetic.rhinoplasty", "--site", "SH-AES", "--format", "json").output)
    splint = {r["milestone"]: r for r in default}["splint_removal"]
    splint_site = {r["milestone"]: r for r in site}["splint_removal"]
    assert splint["offset"] == splint_site["offset"] == "3d"  # the call stays on day 3 ...
    assert splint_site["before"] == {"event": "splint_removal", "at": "5d"}  # ... the site's removal day
    assert splint_site["overridden"] is True and splint["overridden"] is False
    assert [r["milestone"] for r in default] == [r["milestone"] for r in site]


def test_protocols_unknown_specialty_suggests_the_near_one(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("protocols", "dentl", ok=False)
    assert result.exit_code == 1 and "did you mean 'dental'" in result.output


def test_db_upgrade_twice_changes_nothing(cli, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from core.db.migrate import current_revision, head_revision

    cli("db", "upgrade", db=db_url)
    second = cli("db", "upgrade", db=db_url)
    assert f"at revision {head_revision()}" in second.output
    assert current_revision(db_url) == head_revision()


def test_tasks_json_has_the_contract_keys_and_site_offsets(cli, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "p.csv").write_text("patient_id,name,gender,birth_date,phone,site\n"
                                    "P1,王秀英,女,1950-02-03,13812345678,BJ-HOSP\n", encoding="utf-8")
    (tmp_path / "e.csv").write_text("episode_id,patient_id,site,specialty,procedure,occurred_at\n"
                                    "E1,P1,BJ-HOSP,inpatient,discharge,2026-11-16T10:00\n", encoding="utf-8")
    cli("import", str(tmp_path / "p.csv"), db=db_url, now=NOW)
    cli("import", str(tmp_path / "e.csv"), db=db_url, now=NOW)
    cli("schedule", db=db_url, now=NOW)
    [task] = json.loads(cli("tasks", "--patient", "P1", "--format", "json", db=db_url, now=NOW).output)
    keys = {"id", "patient_id", "episode_id", "site", "specialty", "procedure", "milestone", "purpose", "channel",
            "urgency", "status", "due_at", "window_start", "window_end", "attempts"}
    assert keys <= set(task)
    assert (task["patient_id"], task["episode_id"], task["milestone"]) == ("P1", "E1", "post_discharge")
    # Discharged Monday 16 Nov 10:00: the window is day 5-7 (Sat 21 - all of Mon 23 Nov) and day 6 is a
    # Sunday, so the routine call moves to the first calling window of Monday, still inside the window.
    assert task["window_start"] == "2026-11-21T10:00+08:00"
    assert task["window_end"] == "2026-11-23T23:59+08:00"  # "5-7 days after discharge" includes all of day 7
    assert task["due_at"] == "2026-11-23T09:00+08:00"
    csv_out = cli("tasks", "--patient", "P1", "--format", "csv", db=db_url, now=NOW).output
    assert csv_out.splitlines()[0].startswith("\ufeffid,patient_id,episode_id,site")  # a BOM for Excel...
    machine = cli("tasks", "--patient", "P1", "--format", "csv", "--no-bom", db=db_url, now=NOW).output
    assert machine.splitlines()[0].startswith("id,patient_id,episode_id,site")  # ...none for machines
