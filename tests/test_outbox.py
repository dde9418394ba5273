"""The outbox through the CLI: a message milestone is sent once, at its time, never at night, never to an
opted-out patient; a failure is retried or failed (with a phone fallback), never a crash or a duplicate;
the patient's questionnaire records a reached attempt with the same actions as a call."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, write_csv

ROOT = Path(__file__).resolve().parents[1]
PATIENTS = [["P1", "李娜", "F", "1990-03-02", "13912345678", "SH-DENT"],
            ["P2", "王强", "M", "1985-05-06", "13812345679", "SH-DENT"]]
EPISODES = [["E1", "P1", "SH-DENT", "dental", "scaling", "2026-11-23T09:30+08:00", "陈医生"],
            ["E2", "P2", "SH-DENT", "dental", "scaling", "2026-11-23T09:40+08:00", "陈医生"]]
SEND_AT = "2026-11-24T10:05+08:00"


def chain(tmp_path: Path, sms: str = "{plugin: file, folder: MSGS}", extra: str = "") -> Path:
    """The demo chain with its SMS going to ``sms`` (a flow mapping), in a copy under tmp_path."""
    import shutil

    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    text = (folder / "chain.yaml").read_text(encoding="utf-8")
    text = re.sub(r"  sms: \{plugin: file, folder: var/messages\}", "  sms: " + sms.replace(
        "MSGS", str(tmp_path / "messages")), text)
    (folder / "chain.yaml").write_text(text + extra, encoding="utf-8")
    site = folder / "sites" / "sh-dent.yaml"  # the next-day check after a cleaning: an SMS questionnaire
    site.write_text(site.read_text(encoding="utf-8") + (
        "overrides:\n  - milestone: dental.scaling.check_1d\n    channel: sms\n    fallback: phone\n"),
        encoding="utf-8")
    return folder / "chain.yaml"


def seed(cli, tmp_path: Path, url: str, patients: list[list[str]], episodes: list[list[str]],  # type: ignore[no-untyped-def]
         now: str = "2026-11-23T08:00+08:00") -> None:
    cfg = tmp_path / "config" / "chain.yaml"
    cli("import", str(write_csv(tmp_path / "patients.csv", PATIENT_HEADER, patients)), db=url, now=now, config=cfg)
    cli("import", str(write_csv(tmp_path / "episodes.csv", EPISODE_HEADER, episodes)), db=url, now=now, config=cfg)
    cli("schedule", db=url, now=now, config=cfg)


def outbox(cli, url: str, cfg: Path, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli("outbox", "--format", "json", *args, db=url, config=cfg).output)


def tasks(cli, url: str, cfg: Path, patient: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    rows = json.loads(cli("tasks", "--patient", patient, "--format", "json", db=url, config=cfg).output)
    return {t["milestone"]: t for t in rows}


@pytest.fixture
def seeded(cli, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    cfg = chain(tmp_path)
    seed(cli, tmp_path, db_url, PATIENTS, EPISODES)
    return cfg


def test_message_milestone_is_sent_once_at_its_time_and_not_on_the_worklist(cli, tmp_path, db_url, seeded):
    cfg = seeded
    assert tasks(cli, db_url, cfg, "P1")["check_1d"]["channel"] == "sms"
    worklist = cli("worklist", "--site", "SH-DENT", "--date", "2026-11-24", "--format", "json",
                   db=db_url, config=cfg, now=SEND_AT).output
    assert "check_1d" not in worklist
    early = json.loads(cli("send", "--format", "json", db=db_url, config=cfg, now="2026-11-23T12:00+08:00").output)
    assert early["sent"] == 0 and early["queued"] == 0
    first = json.loads(cli("send", "--format", "json", db=db_url, config=cfg, now=SEND_AT).output)
    assert first["sent"] == 2
    again = json.loads(cli("send", "--format", "json", db=db_url, config=cfg, now=SEND_AT).output)
    assert again["queued"] == 0 and again["sent"] == 0
    rows = outbox(cli, db_url, cfg)
    assert [r["status"] for r in rows] == ["sent", "sent"]
    assert set(rows[0]) == {"id", "task_id", "patient_id", "site", "channel", "kind", "status", "tries",
                            "queued_at", "sent_at", "delivered_at", "error"}
    files = sorted((tmp_path / "messages").iterdir())
    assert len(files) == 2 and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    text = files[0].read_text(encoding="utf-8")
    assert "13912345678" not in text and "139****5678" in text and "/q/" in text
    table = cli("outbox", db=db_url, config=cfg).output
    assert "13912345678" not in table and "13812345679" not in table
    # A questionnaire milestone stays open until the patient answers.
    assert tasks(cli, db_url, cfg, "P1")["check_1d"]["status"] == "open"


def test_never_in_quiet_hours_and_never_to_an_opted_out_or_dnc_patient(cli, tmp_path, db_url, seeded):
    cfg = seeded
    night = json.loads(cli("send", "--format", "json", db=db_url, config=cfg, now="2026-11-24T22:30+08:00").output)
    assert night["sent"] == 0
    assert [r["status"] for r in outbox(cli, db_url, cfg)] == ["queued", "queued"]
    morning = "2026-11-25T08:30+08:00"
    out = cli("patients", "optout", "P1", "--channel", "sms", db=db_url, config=cfg, now=morning).output
    assert "P1" in out
    cli("patients", "dnc", "P2", "--reason", "asked", db=db_url, config=cfg, now=morning)
    summary = json.loads(cli("send", "--format", "json", db=db_url, config=cfg, now=morning).output)
    assert summary["sent"] == 0
    rows = {r["patient_id"]: r for r in outbox(cli, db_url, cfg)}
    assert all(r["status"] in ("failed", "expired") for r in rows.values())
    assert not (tmp_path / "messages").exists()
    # Opted out of SMS, with fallback: phone -> the follow-up becomes a call.
    assert tasks(cli, db_url, cfg, "P1")["check_1d"]["channel"] == "phone"
    undo = cli("patients", "optout", "P1", "--channel", "sms", "--undo", db=db_url, config=cfg, now=morning)
    assert undo.exit_code == 0


def test_daily_limit_postpones_to_tomorrow(cli, tmp_path, db_url):
    cfg = chain(tmp_path, extra="")
    text = cfg.read_text(encoding="utf-8").replace("max_per_patient_per_day: 2", "max_per_patient_per_day: 1")
    cfg.write_text(text, encoding="utf-8")
    seed(cli, tmp_path, db_url, [PATIENTS[0]],
         [EPISODES[0], ["E3", "P1", "SH-DENT", "dental", "scaling", "2026-11-23T09:50+08:00", "陈医生"]])
    summary = json.loads(cli("send", "--format", "json", db=db_url, config=cfg, now=SEND_AT).output)
    assert summary["sent"] == 1 and summary["postponed"] == 1
    rows = outbox(cli, db_url, cfg, "--status", "queued")
    assert len(rows) == 1 and rows[0]["tries"] == 0


def test_questionnaire_answers_are_a_reached_attempt_with_the_same_actions(cli, tmp_path, db_url, seeded):
    from datetime import datetime

    from werkzeug.test import Client

    from core.config import load_config
    from core.plugins import get_plugins
    from core.web import create_app

    cfg = seeded
    cli("send", db=db_url, config=cfg, now=SEND_AT)
    link = re.search(r"Link: (\S+)", sorted((tmp_path / "messages").iterdir())[0].read_text()).group(1)
    path = link.split("8000", 1)[1]
    clock = datetime.fromisoformat("2026-11-24T12:00+08:00")
    client = Client(create_app(db_url, load_config(cfg), get_plugins(), clock=lambda: clock))
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "提交" in html and 'name="pain_level"' in html and "http" not in html.split("<body>")[1].split(path)[0]
    bad = client.post(path, data={"pain_level": "99"})
    assert bad.status_code == 422
    ok = client.post(path, data={"pain_level": "8", "sensitivity": "yes", "overall_satisfaction": "1"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert "谢谢" in ok.get_data(as_text=True)
    task = tasks(cli, db_url, cfg, "P1")["check_1d"]
    assert task["status"] == "completed"
    complaints = json.loads(cli("complaints", "list", "--format", "json", db=db_url, config=cfg).output)
    assert len(complaints) == 1  # very dissatisfied: a complaint, as after a call
    again = client.post(path, data={"pain_level": "1"})
    assert again.status_code == 409 and "used" in again.get_data(as_text=True)
    forged = client.get(path[:-3] + "abc")
    assert forged.status_code == 404
    late = Client(create_app(db_url, load_config(cfg), get_plugins(),
                             clock=lambda: datetime.fromisoformat("2026-12-30T12:00+08:00")))
    other = re.search(r"Link: (\S+)", sorted((tmp_path / "messages").iterdir())[1].read_text()).group(1)
    expired = late.get(other.split("8000", 1)[1])
    assert expired.status_code == 410
    assert tasks(cli, db_url, cfg, "P2")["check_1d"]["status"] == "open"


# -- four senders at once on PostgreSQL: no message sent twice --------------------------------------


def _sender(url: str, cfg: str, folder: str, barrier, out) -> None:  # type: ignore[no-untyped-def]
    import os
    from datetime import datetime

    from core.config import load_config
    from core.db.engine import get_engine
    from core.outbox import send_due
    from core.plugins import get_plugins

    get_engine.cache_clear()
    config = load_config(cfg)
    now = datetime.fromisoformat(SEND_AT)
    barrier.wait()
    summary = send_due(url, config, get_plugins(), now=now, sites=["SH-DENT"], limit=5, sender=f"s{os.getpid()}")
    out.put([m["id"] for m in summary.messages if m["status"] == "sent"])


def test_four_senders_never_send_one_message_twice(cli, tmp_path, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("four sender processes need row locks; SQLite serialises writers (BEGIN IMMEDIATE)")
    for url in [db_url]:
        cfg = chain(tmp_path)
        patients = [[f"P{i}", f"患者{i}", "F", "1990-01-01", f"139000{i:05d}", "SH-DENT"] for i in range(24)]
        episodes = [[f"E{i}", f"P{i}", "SH-DENT", "dental", "scaling", "2026-11-23T09:30+08:00", "陈医生"]
                    for i in range(24)]
        seed(cli, tmp_path, url, patients, episodes)
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_sender, args=(url, str(cfg), str(tmp_path / "messages"), barrier, out))
                 for _ in range(4)]
        for p in procs:
            p.start()
        sent = [i for _ in procs for i in out.get(timeout=120)]
        for p in procs:
            p.join(60)
        assert len(sent) == len(set(sent))  # nobody sent a message another sender sent
        files = list((tmp_path / "messages").iterdir())
        assert len(files) == len(sent)
        rows = outbox(cli, url, cfg)
        assert len(rows) == 24  # queued once each, although four senders enqueued at once
        assert sum(r["status"] == "sent" for r in rows) == len(sent) == 20  # 4 x limit 5

