"""The outbox through the CLI: a message milestone is sent once, at its time, never at night, never to an
opted-out patient; a failure is retried or failed (with a phone fallback), never a crash or a duplicate;
the patient's questionnaire records a reached attempt with the same actions as a call."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, write_csv
from processes import worker_context

ROOT = Path(__file__).resolve().parents[1]
PATIENTS = [["P1", "李娜", "F", "1990-03-02", "13912345678", "SH-DENT"],
            ["P2", "王强", "M", "1985-05-06", "13812345679", "SH-DENT"]]
EPISODES = [["E1", "P1", "SH-DENT", "dental", "scaling", "2026-11-23T09:30+08:00", "陈医生"],
            ["E2", "P2", "SH-DENT", "dental", "scaling", "2026-11-23T09:40+08:00", "陈医生"]]
SEND_AT = "2026-11-24T10:05+08:00"


def chain(tmp_path: Path, sms: str = "{plugin: file, folder: MSGS}", extra: str = "",
          by_sms: tuple[str, ...] = ("dental.scaling.check_1d",)) -> Path:
    """The demo chain with its SMS going to ``sms`` (a flow mapping), in a copy under tmp_path."""
    import shutil

    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    text = (folder / "chain.yaml").read_text(encoding="utf-8")
    text = re.sub(r"  sms: \{plugin: file, folder: var/messages\}", "  sms: " + sms.replace(
        "MSGS", str(tmp_path / "messages")), text)
    (folder / "chain.yaml").write_text(text + extra, encoding="utf-8")
    site = folder / "sites" / "sh-dent.yaml"  # the next-day check after a cleaning: an SMS questionnaire
    site.write_text(site.read_text(encoding="utf-8") + ("overrides:\n" if by_sms else "") + "".join(
        f"  - milestone: {m}\n    channel: sms\n    fallback: phone\n" for m in by_sms), encoding="utf-8")
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
        ctx = worker_context()
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



# -- failures, fallback, notices, after unsuccessful calls, delivery reports -------------------------


class Gateway:
    """A local SMS gateway answering each request with the next status of ``statuses``."""

    def __init__(self, statuses: list[int]):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        self.statuses, self.bodies = list(statuses), []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                gateway.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status = gateway.statuses.pop(0) if gateway.statuses else 200
                body = json.dumps({"id": f"gw-{len(gateway.bodies)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"


@pytest.fixture
def gateway():  # type: ignore[no-untyped-def]
    made: list[Gateway] = []

    def make(statuses: list[int]) -> Gateway:
        made.append(Gateway(statuses))
        return made[-1]

    yield make
    for g in made:
        g.server.shutdown()


def _send(cli, url: str, cfg: Path, now: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(cli("send", "--format", "json", db=url, config=cfg, now=now).output)


def test_server_errors_are_retried_with_backoff_then_failed_and_the_task_becomes_a_call(cli, tmp_path, db_url,
                                                                                         gateway):
    server = gateway([500, 503, 502])
    cfg = chain(tmp_path, sms="{provider: http, url: 'URL', report_secret: hook-secret}".replace("URL", server.url))
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("messaging:\n", "messaging:\n  max_tries: 3\n"),
                   encoding="utf-8")
    seed(cli, tmp_path, db_url, [PATIENTS[0]], [EPISODES[0]])
    assert _send(cli, db_url, cfg, SEND_AT)["retried"] == 1
    assert _send(cli, db_url, cfg, SEND_AT)["retried"] == 0  # not before its backoff
    assert _send(cli, db_url, cfg, "2026-11-24T10:11+08:00")["retried"] == 1  # 5 min after the first try
    [row] = outbox(cli, db_url, cfg)
    assert row["status"] == "queued" and row["tries"] == 2 and "HTTP 503" in row["error"]
    assert _send(cli, db_url, cfg, "2026-11-24T10:15+08:00")["sent"] == 0  # the second wait is 10 min
    last = _send(cli, db_url, cfg, "2026-11-24T10:25+08:00")
    assert last["failed"] == 1 and last["fallbacks"] == 1
    assert len(server.bodies) == 3 and {b["id"] for b in server.bodies} == {row["id"]}  # one message, 3 tries
    task = tasks(cli, db_url, cfg, "P1")["check_1d"]
    assert task["channel"] == "phone" and task["status"] == "open"
    worklist = cli("worklist", "--site", "SH-DENT", "--date", "2026-11-24", "--format", "json",
                   db=db_url, config=cfg, now="2026-11-24T10:30+08:00").output
    assert "P1" in worklist
    assert _send(cli, db_url, cfg, "2026-11-24T11:00+08:00")["queued"] == 0  # no new message for a call


def test_a_refused_message_fails_at_once_and_delivery_reports_need_the_signature(cli, tmp_path, db_url, gateway):
    import hashlib
    import hmac
    from datetime import datetime

    from werkzeug.test import Client

    from core.config import load_config
    from core.plugins import get_plugins
    from core.web import create_app

    server = gateway([400])
    cfg = chain(tmp_path, sms="{provider: http, url: 'URL', report_secret: hook-secret}".replace("URL", server.url))
    seed(cli, tmp_path, db_url, PATIENTS, EPISODES)
    summary = _send(cli, db_url, cfg, SEND_AT)
    assert summary["failed"] == 1 and summary["sent"] == 1 and summary["fallbacks"] == 1
    sent = next(r for r in outbox(cli, db_url, cfg) if r["status"] == "sent")
    client = Client(create_app(db_url, load_config(cfg), get_plugins(),
                               clock=lambda: datetime.fromisoformat("2026-11-24T10:06+08:00")))
    body = json.dumps([{"id": "gw-2", "delivered": True}]).encode()
    forged = client.post("/hooks/sms", data=body, headers={"X-Followup-Signature": "0" * 64})
    assert forged.status_code == 403
    assert next(r for r in outbox(cli, db_url, cfg) if r["id"] == sent["id"])["status"] == "sent"
    signature = hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    ok = client.post("/hooks/http", data=body, headers={"X-Followup-Signature": signature})  # by provider
    assert ok.status_code == 200
    row = next(r for r in outbox(cli, db_url, cfg) if r["id"] == sent["id"])
    assert row["status"] == "delivered" and row["delivered_at"].startswith("2026-11-24T10:06")


def test_a_notice_the_day_before_a_call_and_the_questionnaire_after_unsuccessful_calls(cli, tmp_path, db_url):
    cfg = chain(tmp_path, by_sms=())
    site = cfg.parent / "sites" / "sh-dent.yaml"
    site.write_text(site.read_text(encoding="utf-8")
                    + "overrides:\n  - milestone: dental.scaling.check_1d\n    notice: sms\n", encoding="utf-8")
    seed(cli, tmp_path, db_url, [PATIENTS[0]], [EPISODES[0]])
    task = tasks(cli, db_url, cfg, "P1")["check_1d"]
    assert task["channel"] == "phone"
    day_before = _send(cli, db_url, cfg, "2026-11-23T10:05+08:00")
    assert day_before["sent"] == 1
    notice = (tmp_path / "messages" / "000001-sms-notice.txt").read_text(encoding="utf-8")
    assert "明天" in notice and "/q/" not in notice
    for at in ("2026-11-24T10:10+08:00", "2026-11-24T16:00+08:00", "2026-11-25T10:10+08:00"):
        cli("record", str(task["id"]), "--outcome", "no_answer", db=db_url, config=cfg, now=at, user="zhang.li")
    assert tasks(cli, db_url, cfg, "P1")["check_1d"]["status"] == "unsuccessful"
    after = _send(cli, db_url, cfg, "2026-11-25T10:20+08:00")
    assert after["sent"] == 1
    text = (tmp_path / "messages" / "000002-sms-after_unsuccessful.txt").read_text(encoding="utf-8")
    assert "/q/" in text
    from datetime import datetime

    from werkzeug.test import Client

    from core.config import load_config
    from core.plugins import get_plugins
    from core.web import create_app

    path = re.search(r"Link: \S+?8000(\S+)", text).group(1)  # type: ignore[union-attr]
    client = Client(create_app(db_url, load_config(cfg), get_plugins(),
                               clock=lambda: datetime.fromisoformat("2026-11-25T20:00+08:00")))
    assert client.post(path, data={"pain_level": "2", "sensitivity": "no"}).status_code == 200
    assert tasks(cli, db_url, cfg, "P1")["check_1d"]["status"] == "completed"


def test_a_message_is_sent_again_only_on_purpose(cli, tmp_path, db_url, seeded):
    cfg = seeded
    _send(cli, db_url, cfg, SEND_AT)
    first = outbox(cli, db_url, cfg)[0]
    assert _send(cli, db_url, cfg, "2026-11-24T11:00+08:00")["sent"] == 0
    again = json.loads(cli("send", "--resend", str(first["id"]), "--format", "json", db=db_url, config=cfg,
                           now="2026-11-24T11:00+08:00").output)
    assert again["sent"] == 1
    rows = [r for r in outbox(cli, db_url, cfg) if r["task_id"] == first["task_id"]]
    assert [r["status"] for r in rows] == ["sent", "sent"]
    missing = cli("send", "--resend", "999", db=db_url, config=cfg, now=SEND_AT, ok=False)
    assert missing.exit_code == 1 and "no message 999" in missing.output
    csv_out = cli("outbox", "--format", "csv", db=db_url, config=cfg).output
    assert "13912345678" not in csv_out and "139****5678" in csv_out


def test_email_and_wechat_addresses_come_from_the_import(cli, tmp_path, db_url):
    from clinic_data import write_csv

    cfg = chain(tmp_path, by_sms=())
    site = cfg.parent / "sites" / "sh-dent.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "overrides:\n  - milestone: dental.scaling.check_1d\n"
                    "    channel: email\n    fallback: phone\n", encoding="utf-8")
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(
        "  email: {plugin: file, folder: var/messages}", f"  email: {{plugin: file, folder: {tmp_path / 'mail'}}}"),
        encoding="utf-8")
    header = ["patient_id", "name", "gender", "birth_date", "phone", "site", "邮箱", "微信openid"]
    rows = [[*PATIENTS[0], "li.na@example.com", "oUser_12345678"], [*PATIENTS[1], "", ""]]
    cli("import", str(write_csv(tmp_path / "p.csv", header, rows)), db=db_url, config=cfg, now="2026-11-23T08:00+08:00")
    bad = cli("import", str(write_csv(tmp_path / "bad.csv", header, [[*PATIENTS[0], "not-an-email", ""]])),
              db=db_url, config=cfg, now="2026-11-23T08:00+08:00", ok=False)
    assert bad.exit_code == 1
    from clinic_data import EPISODE_HEADER as EH

    cli("import", str(write_csv(tmp_path / "e.csv", EH, EPISODES)), db=db_url, config=cfg, now="2026-11-23T08:00+08:00")
    cli("schedule", db=db_url, config=cfg, now="2026-11-23T08:00+08:00")
    summary = _send(cli, db_url, cfg, SEND_AT)
    assert summary["sent"] == 1 and summary["failed"] == 1 and summary["fallbacks"] == 1
    [mail] = list((tmp_path / "mail").iterdir())
    text = mail.read_text(encoding="utf-8")
    assert "To: l***@example.com" in text and "li.na@example.com" not in text
    failed = next(r for r in outbox(cli, db_url, cfg) if r["status"] == "failed")
    assert failed["error"] == "no email for this patient"
    assert tasks(cli, db_url, cfg, "P2")["check_1d"]["channel"] == "phone"


def test_an_unanswered_questionnaire_becomes_a_call_at_the_windows_end(cli, tmp_path, db_url, seeded):
    cfg = seeded
    _send(cli, db_url, cfg, SEND_AT)
    window_end = tasks(cli, db_url, cfg, "P1")["check_1d"]["window_end"]
    assert window_end.startswith("2026-11-25T23:59")  # [1d, 2d]: to the end of the second day
    assert _send(cli, db_url, cfg, "2026-11-25T18:00+08:00")["fallbacks"] == 0  # the window is still open
    later = _send(cli, db_url, cfg, "2026-11-26T12:00+08:00")
    assert later["fallbacks"] == 2
    task = tasks(cli, db_url, cfg, "P1")["check_1d"]
    assert task["channel"] == "phone" and task["status"] == "open"
    assert task["next_attempt_at"] == "2026-11-26T15:30+08:00"  # SH-DENT's afternoon calling window
    assert _send(cli, db_url, cfg, "2026-11-26T16:00+08:00")["fallbacks"] == 0


def test_a_birthday_greeting_goes_out_by_sms_and_is_completed_when_sent(cli, tmp_path, db_url):
    from clinic_data import write_csv

    cfg = chain(tmp_path, by_sms=())
    header = ["patient_id", "name", "gender", "birth_date", "phone", "site", "birthday"]
    cli("import", str(write_csv(tmp_path / "p.csv", header, [[*PATIENTS[0], "11-27"]])), db=db_url, config=cfg,
        now="2026-11-23T08:00+08:00")
    from clinic_data import EPISODE_HEADER as EH

    cli("import", str(write_csv(tmp_path / "e.csv", EH, [EPISODES[0]])), db=db_url, config=cfg,
        now="2026-11-23T08:00+08:00")
    cli("schedule", db=db_url, config=cfg, now="2026-11-23T08:00+08:00")
    greeting = next(t for t in tasks(cli, db_url, cfg, "P1").values() if t["purpose"] == "greeting")
    assert greeting["channel"] == "sms"
    summary = _send(cli, db_url, cfg, "2026-11-24T11:00+08:00")
    assert summary["sent"] == 1
    [text] = [f.read_text(encoding="utf-8") for f in (tmp_path / "messages").iterdir() if "milestone" in f.name]
    assert "生日快乐" in text and "/q/" not in text
    done = next(t for t in tasks(cli, db_url, cfg, "P1").values() if t["purpose"] == "greeting")
    assert done["status"] == "completed"
