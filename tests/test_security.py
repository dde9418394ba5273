"""Access, privacy and audit a chain can trust (issue 17, docs/security.md).

Monday 2026-11-23 at SH-DENT. The demo chain's staff: zhang.li (SH-DENT coordinator), wang.fang (SH-AES),
liu.min (BJ-HOSP), chen.zhiyuan (SH-DENT doctor, 陈志远), ye.ming (SH-AES doctor), chen.jing (manager of
all three), admin. ``strict_chain`` is the same chain without ``allow_as`` and ``allow_now``, as a real
chain is.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, seed, write_csv
from clinic_data import task_id as tid

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-23T10:05+08:00"


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """D1 implant Sunday (24 h check due Monday) and D2 extraction at SH-DENT, H1 discharge at BJ-HOSP."""
    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
        ["H1", "刘建国", "M", "1950-02-02", "13712345699", "BJ-HOSP"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E3", "H1", "BJ-HOSP", "inpatient", "discharge", "2026-11-17T10:00", "王建华"],
    ])
    return db_url


def _chain(tmp_path: Path, *, drop: tuple[str, ...] = ("allow_as: true", "allow_now: true"),
           staff: str | None = None) -> Path:
    text = (ROOT / "config" / "chain.yaml").read_text(encoding="utf-8")
    for line in drop:
        assert line in text
        text = re.sub(rf"^{re.escape(line)}.*$", "", text, flags=re.M)
    if staff is not None:
        text = re.sub(r"^staff:\n(  [-#].*\n)+", staff, text, flags=re.M)
    path = tmp_path / "strict" / "chain.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.replace("sites_dir: sites", f"sites_dir: {ROOT / 'config' / 'sites'}"), encoding="utf-8")
    return path


@pytest.fixture
def strict_chain(tmp_path: Path) -> Path:
    return _chain(tmp_path)


def _escalate(cli, url: str) -> int:  # type: ignore[no-untyped-def]
    t = tid(cli, url, "D1", "check_24h")
    cli("record", str(t), "--outcome", "reached", "--answer", "bleeding_stopped=no", db=url, now=NOW, user="zhang.li")
    [row] = json.loads(cli("escalations", "list", "--format", "json", db=url, now=NOW).output)
    return row["id"]


# -- who is acting ----------------------------------------------------------------------------------------


def test_an_unknown_user_changes_nothing_anywhere(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    esc = _escalate(cli, clinic)
    t = tid(cli, clinic, "D2", "check_1w")
    for args in (("escalations", "resolve", str(esc), "--how", "test"), ("record", str(t), "--outcome", "busy"),
                 ("patients", "dnc", "D2"), ("complaints", "list"), ("tasks",), ("claim",), ("audit",),
                 ("report", "week"), ("worklist",)):
        out = cli(*args, "--locale", "en", db=clinic, now=NOW, user="nobody", ok=False) if args[0] not in (
            "complaints", "tasks", "audit", "report", "worklist", "escalations") else \
            cli(*args, db=clinic, now=NOW, user="nobody", ok=False)
        assert out.exit_code == 1 and "'nobody'" in out.output and "Traceback" not in out.output, args
    rows = json.loads(cli("escalations", "list", "--format", "json", db=clinic, now=NOW).output)
    assert rows[0]["status"] == "open"
    audit = json.loads(cli("audit", "--format", "json", db=clinic, now=NOW).output)
    assert "nobody" not in {row["user"] for row in audit}


def test_as_names_someone_else_only_for_an_admin_or_when_the_chain_allows_it(  # type: ignore[no-untyped-def]
        cli, clinic: str, strict_chain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "liu.min")  # the operating-system user
    refused = cli("tasks", config=strict_chain, db=clinic, user="zhang.li", ok=False)
    assert refused.exit_code == 1 and "只有管理员才能用 --as 代表 zhang.li 操作" in refused.output
    own = json.loads(cli("tasks", "--format", "json", config=strict_chain, db=clinic, user="liu.min").output)
    assert {t["site"] for t in own} == {"BJ-HOSP"}  # the OS user herself: her site only
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "admin")
    assert cli("tasks", "--format", "json", config=strict_chain, db=clinic, user="zhang.li").exit_code == 0
    # the demo chain sets allow_as: anyone may name a staff member (demos and tests)
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "liu.min")
    assert cli("tasks", "--format", "json", db=clinic, user="zhang.li").exit_code == 0


def test_the_clock_is_not_the_users_to_set(cli, clinic: str, strict_chain: Path,  # type: ignore[no-untyped-def]
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "admin")
    cli("record", str(tid(cli, clinic, "D2", "check_1w")), "--outcome", "reached", "--answer", "complaint=yes",
        db=clinic, now=NOW, user="zhang.li")
    [c] = json.loads(cli("complaints", "list", "--format", "json", db=clinic, now=NOW).output)
    backdated = cli("complaints", "respond", str(c["id"]), "--text", "called back", "--locale", "en",
                    config=strict_chain, db=clinic, now="2026-11-23T10:00+08:00", user="chen.jing", ok=False)
    assert backdated.exit_code == 1 and "commands that write cannot set the clock" in backdated.output
    assert json.loads(cli("complaints", "list", "--format", "json", db=clinic, now=NOW).output)[0]["status"] == "open"
    # reading with another clock is fine (what was due on a past day)
    assert cli("worklist", "--format", "json", config=strict_chain, db=clinic, now=NOW, user="zhang.li").exit_code == 0
    # without --now the real time is used, and the audit row says so
    late = cli("complaints", "respond", str(c["id"]), "--text", "called back", config=strict_chain, db=clinic,
               user="chen.jing")
    assert "已答复（超过 3 天期限）" in late.output  # run after the 11-26 deadline: late, as it is


def test_every_audit_row_carries_the_real_time_and_the_commands_clock(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    before = time.time()
    cli("claim", "--count", "1", db=clinic, now=NOW, user="zhang.li")
    rows = json.loads(cli("audit", "--format", "json", db=clinic, now=NOW).output)
    row = [r for r in rows if r["action"] == "claim"][0]
    from datetime import datetime

    assert row["at"] == "2026-11-23T10:05:00+08:00"
    assert datetime.fromisoformat(row["recorded_at"]).timestamp() >= before - 1


# -- roles, enforced in core ----------------------------------------------------------------------------------


def test_a_site_scoped_coordinator_sees_and_works_only_her_site(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    tasks = json.loads(cli("tasks", "--format", "json", db=clinic, now=NOW, user="liu.min").output)
    assert tasks and {t["site"] for t in tasks} == {"BJ-HOSP"}
    other = cli("tasks", "--site", "SH-DENT", db=clinic, now=NOW, user="liu.min", ok=False)
    assert other.exit_code == 1 and "liu.min 负责 BJ-HOSP，不负责门店 SH-DENT" in other.output
    d1 = tid(cli, clinic, "D1", "check_24h")
    for args in (("script", str(d1)), ("record", str(d1), "--outcome", "busy")):
        out = cli(*args, db=clinic, now=NOW, user="liu.min", ok=False)
        assert out.exit_code == 1 and "不负责门店 SH-DENT" in out.output and "王秀英" not in out.output
    assert [ln["site"] for ln in json.loads(cli("worklist", "--format", "json", db=clinic, now=NOW,
                                                 user="liu.min").output)] in ([], ["BJ-HOSP"])
    for args in (("import", str(ROOT / "config" / "demo" / "patients.csv")), ("schedule",), ("patients", "dnc", "H1"),
                 ("patients", "export", "H1"), ("audit",)):
        out = cli(*args, db=clinic, now=NOW, user="liu.min", ok=False)
        assert out.exit_code == 1 and "liu.min（coordinator）无权" in out.output, args


def test_a_doctor_sees_and_resolves_only_the_escalations_assigned_to_him(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    esc = _escalate(cli, clinic)
    mine = json.loads(cli("escalations", "list", "--format", "json", db=clinic, now=NOW, user="chen.zhiyuan").output)
    assert [r["id"] for r in mine] == [esc]
    assert json.loads(cli("escalations", "list", "--format", "json", db=clinic, now=NOW, user="ye.ming").output) == []
    wrong = cli("escalations", "resolve", str(esc), "--how", "x", db=clinic, now=NOW, user="ye.ming", ok=False)
    assert wrong.exit_code == 1 and "不负责门店 SH-DENT" in wrong.output
    coordinator = cli("escalations", "resolve", str(esc), "--how", "x", db=clinic, now=NOW, user="zhang.li", ok=False)
    assert coordinator.exit_code == 1 and "zhang.li（coordinator）无权处理上报医生记录" in coordinator.output
    for args in (("tasks",), ("worklist",), ("claim",), ("complaints", "list"), ("report", "week"), ("audit",)):
        out = cli(*args, db=clinic, now=NOW, user="chen.zhiyuan", ok=False)
        assert out.exit_code == 1 and "chen.zhiyuan（doctor）无权" in out.output, args
    cli("escalations", "resolve", str(esc), "--how", "seen at 11:00", db=clinic, now=NOW, user="chen.zhiyuan")
    [done] = json.loads(cli("escalations", "list", "--format", "json", db=clinic, now=NOW, user="chen.zhiyuan").output)
    assert (done["status"], done["assignee"]) == ("resolved", "chen.zhiyuan")


def test_a_manager_reads_reports_complaints_and_audit_but_does_not_call(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    _escalate(cli, clinic)
    assert cli("report", "week", "--format", "json", db=clinic, now=NOW, user="chen.jing").exit_code == 0
    assert cli("complaints", "list", db=clinic, now=NOW, user="chen.jing").exit_code == 0
    audit = json.loads(cli("audit", "--format", "json", db=clinic, now=NOW, user="chen.jing").output)
    assert {r["action"] for r in audit} >= {"attempt", "action:escalate"}
    assert "import" not in {r["action"] for r in audit}  # rows about no patient: the admin's
    assert cli("tasks", "--format", "json", db=clinic, now=NOW, user="chen.jing").exit_code == 0
    for args in (("claim",), ("record", str(tid(cli, clinic, "D2", "check_1w")), "--outcome", "busy"),
                 ("patients", "dnc", "D2"), ("schedule",)):
        out = cli(*args, db=clinic, now=NOW, user="chen.jing", ok=False)
        assert out.exit_code == 1 and "chen.jing（manager）无权" in out.output, args


def test_an_admin_imports_schedules_and_changes_do_not_contact(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    assert "已设为勿扰" in cli("patients", "dnc", "D2", "--reason", "moved", db=clinic, now=NOW, user="admin").output
    assert cli("schedule", db=clinic, now=NOW, user="admin").exit_code == 0
    assert cli("audit", "verify", db=clinic, now=NOW, user="admin").exit_code == 0
    assert {t["site"] for t in json.loads(cli("tasks", "--format", "json", db=clinic, user="admin").output)} == \
        {"SH-DENT", "BJ-HOSP"}


def test_core_functions_check_access_themselves(clinic: str, config) -> None:  # type: ignore[no-untyped-def]
    """Not only the CLI: a core call for another site's data is refused, and writes nothing."""
    from core.access import AccessDenied
    from core.db.engine import session_scope
    from core.followthrough import set_do_not_contact
    from core.tasklist import list_tasks

    with session_scope(clinic) as session:
        assert {t["site"] for t in list_tasks(session, config, user="liu.min")} == {"BJ-HOSP"}
        with pytest.raises(AccessDenied):
            list_tasks(session, config, site="SH-DENT", user="liu.min")
        with pytest.raises(AccessDenied):
            set_do_not_contact(session, config, "D2", on=True, reason=None, user="zhang.li",
                               now=__import__("datetime").datetime.fromisoformat(NOW))


# -- configuration ----------------------------------------------------------------------------------------------


def test_config_check_validates_the_staff_list(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = _chain(tmp_path, drop=(), staff=(
        "staff:\n"
        "  - {username: zhang.li, name: 张丽, role: coordinator, sites: [SH-DENTT]}\n"
        "  - {username: zhang.li, name: 张丽, role: coordinator, sites: [SH-DENT]}\n"
    ))
    out = cli("config", "check", config=bad, ok=False).output
    assert "works at unknown site 'SH-DENTT' — did you mean 'SH-DENT'?" in out
    assert "'zhang.li' is listed twice" in out
    nurse = _chain(tmp_path, drop=(), staff="staff:\n  - {username: wu.lei, name: 吴磊, role: nurse}\n")
    out = cli("config", "check", config=nurse, ok=False).output
    assert "staff.0.role" in out and "'coordinator', 'doctor', 'manager' or 'admin'" in out
    thin = _chain(tmp_path, drop=(), staff=(
        "staff:\n  - {username: zhang.li, name: 张丽, role: coordinator, sites: [SH-DENT]}\n"
        + "".join(f"  - {{username: {u}, name: {u}, role: doctor, sites: [{s}]}}\n"
                  for u, s in (("song.jia", "SH-DENT"), ("deng.tao", "SH-AES"), ("wang.jianhua", "BJ-HOSP")))))
    warned = cli("config", "check", config=thin)
    assert "site BJ-HOSP has no coordinator in the staff list" in warned.output
    assert "site SH-DENT has no" not in warned.output
    single = tmp_path / "single.yaml"
    single.write_text("name: {zh_CN: 诊所, en: Clinic}\nsites_dir: null\nsites:\n  - code: S1\n"
                      "    name: {zh_CN: 一店, en: One}\n    specialties: [dental]\n", encoding="utf-8")
    assert "单用户模式：没有员工名单" in cli("config", "check", config=single).output
    assert json.loads(cli("config", "check", "--format", "json", config=single).stdout)["single_user"] is True


def test_a_yaml_alias_bomb_is_refused_at_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = tmp_path / "chain.yaml"
    bomb.write_text("name: {zh_CN: x, en: x}\n" + "\n".join(levels) + "\n", encoding="utf-8")
    started = time.monotonic()
    out = cli("config", "check", config=bomb, ok=False)
    assert time.monotonic() - started < 5
    assert out.exit_code == 1 and "alias bomb" in out.output


# -- files and secrets ------------------------------------------------------------------------------------------


def test_database_and_exports_are_readable_by_their_owner_only(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "followup.db"
    url = f"sqlite:///{db}"
    seed(cli, tmp_path, url, [["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"]],
         [["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"]])
    for path in [db, *(Path(f"{db}{s}") for s in ("-wal", "-shm", "-journal"))]:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for fmt in ("html", "csv", "json", "xlsx", "table"):
        out = tmp_path / f"report.{fmt}"
        cli("report", "week", "--format", fmt, "--out", str(out), db=url, now=NOW)
        assert stat.S_IMODE(out.stat().st_mode) == 0o600, fmt
    export = tmp_path / "D1.json"
    cli("patients", "export", "D1", "--out", str(export), db=url, now=NOW)
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    loose = tmp_path / "old.db"
    loose.touch(mode=0o644)
    os.chmod(loose, 0o644)
    cli("tasks", db=f"sqlite:///{loose}")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


@pytest.mark.parametrize("url", ["postgresql://u:s3cretpw@127.0.0.1:1/test", "postgresql://u:s3cretpw@127.0.0.1:x/t",
                                 "postgresql://u:s3cretpw@host.invalid/test"])
def test_a_database_password_never_appears(cli, url: str) -> None:  # type: ignore[no-untyped-def]
    for args in (("tasks",), ("db", "upgrade"), ("audit", "verify")):
        out = cli(*args, db=url, ok=False)
        assert out.exit_code != 0 and "s3cretpw" not in out.output and "Traceback" not in out.output


# -- the audit chain -------------------------------------------------------------------------------------------


def _sql(url: str, statement: str) -> None:
    from sqlalchemy import text

    from core.db.engine import get_engine

    with get_engine(url).begin() as conn:
        conn.execute(text(statement))


@pytest.mark.parametrize("tamper, problem", [
    ("UPDATE audit_log SET \"user\" = 'wang.fang' WHERE id = 3", ("edited", 3)),
    ("UPDATE audit_log SET detail = '{}' WHERE id = 4", ("edited", 4)),
    ("DELETE FROM audit_log WHERE id = 3", ("removed", 4)),
    ("INSERT INTO audit_log (id, at, \"user\", action, entity, detail) VALUES (1000, '2026-11-20 01:00:00', "
     "'wang.fang', 'complaint:respond', 'complaint', '{}')", ("inserted", 1000)),
    ("INSERT INTO audit_log (id, at, \"user\", action, entity, detail, prev_hash, hash) SELECT 1001, at, \"user\", "
     "action, entity, detail, prev_hash, hash FROM audit_log WHERE id = 2", ("inserted", 1001)),
])
def test_audit_verify_names_the_first_row_edited_removed_or_inserted(  # type: ignore[no-untyped-def]
        cli, clinic: str, tamper: str, problem: tuple[str, int]) -> None:
    for _ in range(2):
        cli("claim", "--count", "1", db=clinic, now=NOW, user="zhang.li")
    intact = cli("audit", "verify", "--format", "json", db=clinic, now=NOW)
    assert json.loads(intact.output)["ok"] is True and json.loads(intact.output)["rows"] >= 5
    _sql(clinic, tamper)
    broken = cli("audit", "verify", "--format", "json", db=clinic, now=NOW, ok=False)
    assert broken.exit_code == 1
    verdict = json.loads(broken.output)
    assert (verdict["problem"], verdict["row_id"]) == problem
    said = cli("audit", "verify", "--locale", "en", db=clinic, now=NOW, ok=False)
    assert said.exit_code == 1 and f"row {problem[1]}" in said.output


def test_concurrent_writers_keep_one_chain(clinic: str, config) -> None:  # type: ignore[no-untyped-def]
    import threading
    from datetime import datetime

    from core.audit import audit, verify
    from core.db.engine import session_scope

    barrier = threading.Barrier(4, timeout=30)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            barrier.wait()
            for n in range(5):
                with session_scope(clinic, immediate=True) as session:
                    audit(session, user=f"w{i}", at=datetime.fromisoformat(NOW), action="test", entity="x",
                          entity_id=n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with session_scope(clinic) as session:
        verdict = verify(session)
    assert verdict.ok and verdict.rows >= 20


def test_writing_processes_keep_one_chain_with_consecutive_ids(clinic: str) -> None:
    """Eight processes commit audited transactions at once. Nobody waits for the chain (PostgreSQL: rows
    written while another transaction seals wait for the next sealer); afterwards ``verify`` finds one
    intact chain holding every row, in consecutive ids, none left waiting."""
    from claimer import write_audit_rows
    from processes import worker_context
    from sqlalchemy import text

    from core.audit import verify
    from core.db.engine import get_engine, session_scope

    with get_engine(clinic).connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    ctx = worker_context()
    barrier, out = ctx.Barrier(8, timeout=120), ctx.Queue()
    procs = [ctx.Process(target=write_audit_rows, args=(clinic, f"w{i}", 10, barrier, out)) for i in range(8)]
    for proc in procs:
        proc.start()
    results = dict(out.get(timeout=240) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    assert {user: error for user, error in results.items() if error} == {}
    with session_scope(clinic) as session:
        verdict = verify(session)
    assert verdict.ok and verdict.unsealed == 0 and verdict.rows == before + 8 * 10 * 3
    with get_engine(clinic).connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM audit_log ORDER BY id"))]
        mine = conn.execute(text("SELECT \"user\", entity_id FROM audit_log WHERE action = 'test'")).all()
    assert ids == list(range(1, len(ids) + 1))
    assert sorted(mine) == sorted((f"w{i}", n) for i in range(8) for n in range(30))


def test_rows_written_while_another_transaction_seals_wait_for_the_next_one(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: a transaction that finds the chain's lock taken commits its rows at once, waiting (no id in
    the chain, no hash) and listed like any other; ``verify`` counts them; the next audited write seals them
    after the rows before them. SQLite has one writer: every row is chained when it commits."""
    from datetime import datetime

    from sqlalchemy import text

    from core.audit import TRY_LOCK, audit, verify
    from core.db.engine import get_engine, session_scope

    if not clinic.startswith("postgresql"):
        pytest.skip("SQLite chains every row when it commits (one writer at a time)")
    at = datetime.fromisoformat(NOW)
    engine = get_engine(clinic)
    with session_scope(clinic) as session:
        audit(session, user="admin", at=at, action="test", entity="x", entity_id=1)
    holder = engine.connect()
    try:
        assert holder.execute(text(f"SELECT {TRY_LOCK}")).scalar_one() is True  # another transaction is sealing
        with session_scope(clinic) as session:
            audit(session, user="admin", at=at, action="test", entity="x", entity_id=2)
        with engine.connect() as conn:
            waiting = conn.execute(text("SELECT id, prev_hash, hash FROM audit_log WHERE entity_id = 2")).one()
        assert waiting.id < 0 and waiting.hash is None and waiting.prev_hash is None
        with session_scope(clinic) as session:
            counted = verify(session, seal_first=False)
        assert counted.ok and counted.unsealed == 1
        listed = json.loads(cli("audit", "--format", "json", db=clinic, now=NOW).output)
        assert [e["entity_id"] for e in listed if e["action"] == "test"] == [2, 1]
    finally:
        holder.rollback()
        holder.close()
    with session_scope(clinic) as session:
        audit(session, user="admin", at=at, action="test", entity="x", entity_id=3)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, entity_id FROM audit_log WHERE action = 'test' ORDER BY id")).all()
    assert [r.entity_id for r in rows] == [1, 2, 3]  # sealed after the row before it, in consecutive ids
    assert rows[0].id > 0 and [r.id - rows[0].id for r in rows] == [0, 1, 2]
    verdict = json.loads(cli("audit", "verify", "--format", "json", db=clinic, now=NOW).output)
    assert verdict["ok"] is True and verdict["unsealed"] == 0
    with engine.begin() as conn:  # a sealed row that waited is protected like the others
        conn.execute(text("UPDATE audit_log SET \"user\" = 'wang.fang' WHERE entity_id = 2 AND action = 'test'"))
    broken = json.loads(cli("audit", "verify", "--format", "json", db=clinic, now=NOW, ok=False).output)
    assert (broken["problem"], broken["row_id"]) == ("edited", rows[1].id)


# -- contact details on a need-to-know basis ------------------------------------------------------------------

NUMBERS = ("13987654321", "13791918282", "15877733441", "01085996001", "13655443322", "13524689753",
           "057187651234", "15011229988", "02162778899", "18600451177")
_WIDE = {0xFF10 + i: ord("0") + i for i in range(10)}


def unmasked(text: str) -> list[str]:
    """The seeded numbers that appear in ``text`` in full (in any written form)."""
    runs = ["".join(c for c in m.group(0) if c.isdigit())
            for m in re.finditer(r"\d(?:[ \-]?\d)*", text.translate(_WIDE))]
    return [n for n in NUMBERS if any(n[-8:] in run for run in runs)]


@pytest.fixture
def exposed(cli, tmp_path: Path, db_url: str) -> dict:  # type: ignore[no-untyped-def]
    """Numbers in every field and written form, entered through the CLI: phones, notes, answers, reasons."""
    seed(cli, tmp_path, db_url, [
        ["D1", "王秀英", "F", "1951-04-12", "139 8765 4321", "SH-DENT"],
        ["D2", "李强", "M", "1986-09-03", "+86-137-9191-8282", "SH-DENT"],
        ["D3", "张伟", "M", "1980-01-01", "１５８７７７３３４４１", "SH-DENT"],
        ["D4", "赵敏", "F", "1975-05-05", "010-8599-6001", "SH-DENT"],
    ], [
        ["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
        ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E3", "D3", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
        ["E4", "D4", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
    ])
    d1 = tid(cli, db_url, "D1", "check_24h")
    cli("record", str(d1), "--outcome", "reached", "--answer", "bleeding_stopped=no", "--answer", "complaint=yes",
        "--answer", "staff_criticism=护士 1 3 5 2 4 6 8 9 7 5 3 态度差", "--answer", "suggestions=座机 (0571)87651234",
        "--note", "家属0086 136 5544 3322", db=db_url, now=NOW, user="zhang.li")
    d2 = tid(cli, db_url, "D2", "check_1w")
    cli("record", str(d2), "--outcome", "not_convenient", "--note", "改打 0086 136 5544 3322", db=db_url, now=NOW,
        user="zhang.li")
    c = json.loads(cli("complaints", "list", "--format", "json", db=db_url, now=NOW).output)[0]
    cli("complaints", "respond", str(c["id"]), "--text", "已回电 021-6277-8899", db=db_url, now=NOW, user="chen.jing")
    e = json.loads(cli("escalations", "list", "--format", "json", db=db_url, now=NOW).output)[0]
    cli("escalations", "resolve", str(e["id"]), "--how", "看诊后电话 18600451177", db=db_url, now=NOW,
        user="chen.zhiyuan")
    cli("patients", "dnc", "D3", "--reason", "家属要求 +86 150 1122 9988", db=db_url, now=NOW, user="admin")
    return {"url": db_url, "complaint": c["id"], "task": d2}


def test_no_command_prints_a_full_number_in_any_format(cli, exposed: dict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = exposed["url"]
    runs: list[tuple[str, ...]] = []
    for fmt in ("table", "json", "csv"):
        runs += [("tasks", "--format", fmt), ("worklist", "--format", fmt), ("escalations", "list", "--format", fmt),
                 ("complaints", "list", "--format", fmt), ("audit", "--format", fmt)]
    for fmt in ("table", "json"):
        runs += [("complaints", "show", str(exposed["complaint"]), "--format", fmt)]
    for fmt in ("table", "json", "csv", "html"):
        runs += [("report", "week", "--period", "2026-W48", "--format", fmt),
                 ("report", "week", "--period", "2026-W48", "--by", "staff", "--format", fmt)]
    runs += [("script", str(exposed["task"]))]
    for user in ("admin", "zhang.li", "chen.jing", "chen.zhiyuan"):
        for args in runs:
            result = cli(*args, db=url, now=NOW, user=user, ok=False)
            assert not unmasked(result.output), (user, args, unmasked(result.output))
    xlsx = tmp_path / "r.xlsx"
    cli("report", "week", "--period", "2026-W48", "--format", "xlsx", "--out", str(xlsx), db=url, now=NOW)
    import zipfile

    with zipfile.ZipFile(xlsx) as book:
        assert not unmasked(" ".join(book.read(n).decode("utf-8", "replace") for n in book.namelist()))
    assert "136****3322" in cli("script", str(exposed["task"]), db=url, now=NOW, user="zhang.li").output


def test_an_import_error_does_not_quote_a_phone(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = write_csv(tmp_path / "bad.csv", PATIENT_HEADER,
                    [["P9", "马丽", "13987654321", "1970-01-01", "13800000001", ""]])
    out = cli("import", str(bad), db=clinic, now=NOW, ok=False).output
    assert "不是性别" in out and not unmasked(out)


def test_the_plugin_trace_names_no_patient(cli, clinic: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from core.plugins import get_plugins

    t = tid(cli, clinic, "D1", "check_24h")
    monkeypatch.setenv("FOLLOWUP_TRACE_PLUGINS", "1")
    if hasattr(get_plugins, "cache_clear"):
        get_plugins.cache_clear()
    cli("record", str(t), "--outcome", "busy", "--note", "家属 13987654321", db=clinic, now=NOW, user="zhang.li")
    out = cli("script", str(t), db=clinic, now="2026-11-23T15:35+08:00", user="zhang.li").output
    if hasattr(get_plugins, "cache_clear"):
        get_plugins.cache_clear()
    traced = [line for line in out.splitlines() if line.startswith("[followup trace]")]
    assert traced and not any("王秀英" in line or unmasked(line) for line in traced)


def test_the_full_number_only_on_the_card_of_a_held_task_and_each_release_audited(  # type: ignore[no-untyped-def]
        cli, clinic: str) -> None:
    t = tid(cli, clinic, "D1", "check_24h")
    assert "138****5601" in cli("script", str(t), db=clinic, now=NOW, user="zhang.li").output
    cli("claim", "--count", "5", db=clinic, now=NOW, user="zhang.li")
    assert "13812345601" in cli("script", str(t), db=clinic, now=NOW, user="zhang.li").output
    rows = json.loads(cli("audit", "--patient", "D1", "--format", "json", db=clinic, now=NOW).output)
    shown = [r for r in rows if r["action"] == "phone:shown"]
    assert [(r["user"], r["entity_id"], r["detail"]["why"]) for r in shown] == [("zhang.li", t, "call card")]
    assert "13812345601" not in json.dumps(rows, ensure_ascii=False)


# -- PIPL: export and erasure -----------------------------------------------------------------------------------


def test_export_holds_everything_about_one_patient_and_is_audited(cli, exposed: dict) -> None:  # type: ignore[no-untyped-def]
    url = exposed["url"]
    data = json.loads(cli("patients", "export", "D1", db=url, now=NOW).output)
    assert data["patient"]["name"] == "王秀英" and data["patient"]["phone"] == "13987654321"
    assert {e["external_id"] for e in data["episodes"]} == {"E1"}
    assert data["attempts"] and data["answers"] and data["complaints"] and data["escalations"]
    assert all(t["patient_id"] == data["patient"]["id"] for t in data["tasks"])
    assert "李强" not in json.dumps(data, ensure_ascii=False)
    wide = json.loads(cli("patients", "export", "D3", db=url, now=NOW).output)
    assert wide["patient"]["phone"] == "15877733441"  # typed full-width (１５８…), stored as digits
    audit = json.loads(cli("audit", "--patient", "D1", "--format", "json", db=url, now=NOW).output)
    assert audit[0]["action"] == "patient:export" and audit[0]["user"] == "admin"


def test_erase_anonymises_keeps_the_counts_and_waits_for_open_items(cli, exposed: dict) -> None:  # type: ignore[no-untyped-def]
    url = exposed["url"]
    report = json.loads(cli("report", "week", "--period", "2026-W48", "--format", "json", db=url, now=NOW).output)
    cid = exposed["complaint"]
    blocked = cli("patients", "erase", "D1", "--reason", "patient request", "--locale", "en", db=url, now=NOW,
                  ok=False)
    assert blocked.exit_code == 1 and f"complaint {cid}" in blocked.output and "close them before" in blocked.output
    for c in json.loads(cli("complaints", "list", "--format", "json", db=url, now=NOW).output):
        if c["status"] == "open":
            cli("complaints", "respond", str(c["id"]), "--text", "ok", db=url, now=NOW, user="chen.jing")
        cli("complaints", "close", str(c["id"]), db=url, now=NOW, user="chen.jing", ok=c["status"] != "closed")
    out = cli("patients", "erase", "D1", "--reason", "patient request 2026-11-23", db=url, now=NOW).output
    assert "已匿名化" in out
    exported = json.loads(cli("patients", "export", "erased-1", db=url, now=NOW).output)
    # times and ids are numbers too (a microsecond part may read 554412): look at the words only
    moment = r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:[+-]\d\d:?\d\d|Z)?"
    text = re.sub(moment, "<time>", json.dumps(exported, ensure_ascii=False))
    assert "王秀英" not in text and "13987654321" not in text and "1951" not in text
    assert "5544" not in text and "87651234" not in text  # the note and the free-text answer
    after = json.loads(cli("report", "week", "--period", "2026-W48", "--format", "json", db=url, now=NOW).output)
    assert after["figures"] == report["figures"]
    rows = json.loads(cli("audit", "--format", "json", db=url, now=NOW).output)
    assert any(r["action"] == "patient:erase" and r["detail"]["reason"] == "patient request 2026-11-23" for r in rows)
    assert cli("audit", "verify", db=url, now=NOW).exit_code == 0


# -- no traceback on any input ---------------------------------------------------------------------------------


def _snapshot(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from core.db.engine import get_engine

    tables = ("patients", "episodes", "tasks", "attempts", "answers", "complaints", "escalations", "audit_log")
    with get_engine(url).connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
        counts["changed"] = conn.execute(text("SELECT count(*) FROM tasks WHERE attempts > 0 OR status <> 'open' "
                                              "OR assignee IS NOT NULL")).scalar()
        counts["dnc"] = conn.execute(text("SELECT count(*) FROM patients WHERE do_not_contact")).scalar()
    return counts


def _bad_files(tmp_path: Path) -> list[Path]:
    patient = ["P1", "马丽", "F", "1970-01-01", "13800000001", "SH-DENT"]
    files = []
    for name, rows in {
        "nul": [[*patient[:1], "马\x00丽", *patient[2:]]] + [[f"P{i}", f"病人{i}", "F", "1970-01-01",
                                                              f"1380000{i:04d}", "SH-DENT"] for i in range(2, 30)],
        "zero_width": [["X10\u200b31", *patient[1:]]],
        "rtl": [[patient[0], "\u202e丽马", *patient[2:]]],
        "huge": [[patient[0], "马" * 50_000, *patient[2:]]],
        "header_only": [],
    }.items():
        files.append(write_csv(tmp_path / f"{name}.csv", PATIENT_HEADER, rows))
    future = write_csv(tmp_path / "future.csv", EPISODE_HEADER,
                       [["E9", "D1", "SH-DENT", "dental", "implant", "2036-01-01T10:00", "陈志远"]])
    encoding = tmp_path / "latin.csv"
    encoding.write_bytes(b"patient_id,name\n\xff\xfe\xfa\x00\x81\n")
    return [*files, future, encoding]


def test_bad_input_is_one_line_and_changes_nothing(cli, clinic: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t = str(tid(cli, clinic, "D1", "check_24h"))
    huge = str(2**64)
    battery: list[tuple[str, ...]] = [
        ("record", huge, "--outcome", "reached"), ("script", huge), ("escalations", "resolve", huge, "--how", "x"),
        ("complaints", "close", huge), ("complaints", "respond", huge, "--text", "x"), ("complaints", "show", huge),
        ("record", "-1", "--outcome", "busy"), ("audit", "--limit", "-1"), ("audit", "--limit", huge),
        ("tasks", "--limit", "-5"), ("tasks", "--status", "bogus"),
        ("record", t, "--outcome", "reached", "--answer", "pain_level=2", "--answer", "pain_level=9"),
        ("record", t, "--outcome", "busy", "--note", "a\x00b"),
        ("record", t, "--outcome", "busy", "--note", "x" * 5000),
        ("patients", "dnc", "D\x001"), ("patients", "export", "D\x001"),
        ("patients", "erase", "D\x001", "--reason", "x"),
        ("patients", "dnc", "D1", "--reason", "r" * 5000), ("tasks", "--patient", "D\x001"),
        ("audit", "--patient", "D\x001"), ("worklist", "--site", "SH\x00"), ("claim", "--count", "-1"),
        *(("import", str(path)) for path in _bad_files(tmp_path)),
    ]
    before = _snapshot(clinic)
    for args in battery:
        result = cli(*args, db=clinic, now=NOW, user="admin", ok=False)
        assert result.exit_code in (1, 2), (args, result.output)
        assert "Traceback" not in result.output and "[parameters:" not in result.output, args
        assert not unmasked(result.output) and "病人" not in result.output, args
        assert _snapshot(clinic) == before, args


def test_no_log_line_shows_a_number_or_a_querys_parameters(cli, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    import logging

    cli("plugins", "list")  # the CLI installs the masking of every log record
    try:
        raise RuntimeError("(psycopg.errors.X) refused\n[parameters: ('王秀英', '13987654321')]")
    except RuntimeError:
        logging.getLogger("followup.web").exception("request failed for %s", "家属 0086 136 5544 3322")
    assert "request failed" in caplog.text and "RuntimeError: (psycopg.errors.X) refused" in caplog.text
    assert not unmasked(caplog.text) and "王秀英" not in caplog.text and "parameters" not in caplog.text
