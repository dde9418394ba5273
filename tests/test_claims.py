"""Claiming calls: holds, expiry, sites, and two coordinators never getting the same patient.

Calendar facts used: 2026-11-23 is a Monday (a working day); SH-DENT calls
10:00-11:30 and 15:30-17:00; the chain's claim_hold is 30 minutes.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clinic_data import seed

SH = ZoneInfo("Asia/Shanghai")
NOW = "2026-11-23T10:30+08:00"  # Monday morning, SH-DENT's morning window is open






def tasks_of(cli, url: str, **filters: str) -> list[dict]:  # type: ignore[no-untyped-def]
    args = ["tasks", "--format", "json"]
    for key, value in filters.items():
        args += [f"--{key}", value]
    return json.loads(cli(*args, db=url, now=NOW).output)


def claim_json(cli, url: str, user: str, now: str = NOW, *args: str) -> list[int]:  # type: ignore[no-untyped-def]
    return json.loads(cli("claim", "--format", "json", *args, db=url, now=now, user=user).output)["claimed"]


def worklist_json(cli, url: str, user: str, now: str = NOW, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(cli("worklist", "--format", "json", *args, db=url, now=now, user=user).output)


@pytest.fixture
def clinic(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """Three SH-DENT patients and one SH-AES patient with calls due on Monday 2026-11-23.

    D1 implant on Sunday 15:00: clinical 24 h check due Monday 11:00.
    D2 extraction the Monday before: its 2-3 h check is overdue, its 1-week check due Monday 10:00.
    D3 scaling on Sunday 10:00: routine next-day check, Monday 10:00.
    A1 hair consultation lead at SH-AES.
    """
    seed(cli, tmp_path, db_url,
         [["D1", "王秀英", "F", "1951-04-12", "13812345601", "SH-DENT"],
          ["D2", "李强", "M", "1986-09-03", "13912345602", "SH-DENT"],
          ["D3", "赵敏", "F", "1990-12-01", "18812345607", "SH-DENT"],
          ["A1", "朱浩", "M", "1992-09-29", "15612345614", "SH-AES"]],
         [["E1", "D1", "SH-DENT", "dental", "implant", "2026-11-22T15:00", "陈志远"],
          ["E2", "D2", "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"],
          ["E3", "D3", "SH-DENT", "dental", "scaling", "2026-11-22T10:00", "林雪"],
          ["E4", "A1", "SH-AES", "hair", "consultation", "2026-11-20T16:00", "邓涛"]])
    return db_url


def task_id(cli, url: str, patient: str, milestone: str) -> int:  # type: ignore[no-untyped-def]
    return next(t["id"] for t in tasks_of(cli, url, patient=patient) if t["milestone"] == milestone)


# -- the CLI --------------------------------------------------------------------------------------


def test_claim_gives_clinical_first_and_holds_the_whole_patient(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    got = claim_json(cli, clinic, "zhang.li", NOW, "--count", "1")
    # D2 is clinical and overdue (its 2-3 h check was due a week ago): both of D2's due calls, one patient.
    assert sorted(got) == sorted([task_id(cli, clinic, "D2", "check_2h"), task_id(cli, clinic, "D2", "check_1w")])
    mine = worklist_json(cli, clinic, "zhang.li", NOW, "--mine")
    assert [line["patient_id"] for line in mine] == ["D2"]
    assert mine[0]["assignee"] == "zhang.li"


def test_colleague_never_receives_a_held_patient_and_expired_holds_return(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    first = claim_json(cli, clinic, "zhang.li", NOW, "--count", "2")
    second = claim_json(cli, clinic, "admin", NOW, "--site", "SH-DENT", "--count", "5")
    assert first and second
    assert not set(first) & set(second)
    d3 = task_id(cli, clinic, "D3", "check_1d")
    assert second == [d3]  # what was left at SH-DENT
    assert claim_json(cli, clinic, "admin", NOW, "--site", "SH-DENT") == []
    # 31 minutes later zhang.li's hold (30 min) has expired: the calls are back in the pool.
    later = "2026-11-23T11:01+08:00"
    assert worklist_json(cli, clinic, "zhang.li", later, "--mine") == []
    again = claim_json(cli, clinic, "admin", later, "--site", "SH-DENT", "--count", "5")
    assert set(first) <= set(again)


def test_claim_hold_is_the_configured_time(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    result = json.loads(cli("claim", "--format", "json", db=clinic, now=NOW, user="zhang.li").output)
    assert result["hold"] == "30min"
    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(clinic) as session:
        for tid in result["claimed"]:
            task = session.get(Task, tid)
            assert task.assignee == "zhang.li"
            assert task.claimed_until == datetime(2026, 11, 23, 11, 0, tzinfo=SH)


def test_coordinators_only_claim_their_own_sites(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    got = claim_json(cli, clinic, "wang.fang", NOW, "--count", "10")
    assert got == [task_id(cli, clinic, "A1", "lead_care")]
    denied = cli("claim", "--site", "SH-DENT", "--locale", "en", db=clinic, now=NOW, user="wang.fang", ok=False)
    assert denied.exit_code == 1
    assert "wang.fang works for SH-AES, not for site SH-DENT" in denied.output
    unknown = cli("claim", "--locale", "en", db=clinic, now=NOW, user="nobody", ok=False)
    assert unknown.exit_code == 1 and "not in the staff list" in unknown.output


def test_a_failed_call_is_not_handed_out_again_before_its_next_attempt(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d3 = task_id(cli, clinic, "D3", "check_1d")
    cli("record", str(d3), "--outcome", "no_answer", db=clinic, now="2026-11-23T10:05+08:00", user="zhang.li")
    # Next attempt: the afternoon window, 15:30. At 10:30 a new claim must not offer D3 again.
    assert d3 not in claim_json(cli, clinic, "zhang.li", NOW, "--count", "10")
    # It is still on today's worklist, due 15:30, and claimable from 15:30.
    worklist = worklist_json(cli, clinic, "admin", NOW, "--site", "SH-DENT")
    line = next(ln for ln in worklist if ln["patient_id"] == "D3")
    assert line["due_at"] == "2026-11-23T15:30+08:00"
    assert d3 in claim_json(cli, clinic, "admin", "2026-11-23T15:30+08:00", "--site", "SH-DENT", "--count", "9")


def test_a_callback_is_not_handed_out_before_the_time_the_patient_asked_for(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    d3 = task_id(cli, clinic, "D3", "check_1d")
    cli("record", str(d3), "--outcome", "callback_requested", "--callback-at", "2026-11-23T16:00",
        db=clinic, now="2026-11-23T10:05+08:00", user="zhang.li")
    assert d3 not in claim_json(cli, clinic, "zhang.li", "2026-11-23T15:59+08:00", "--count", "10")
    assert d3 in claim_json(cli, clinic, "zhang.li", "2026-11-23T16:00+08:00", "--count", "10")


def test_a_patient_held_by_one_coordinator_is_not_split_with_another(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    two_h, one_w = task_id(cli, clinic, "D2", "check_2h"), task_id(cli, clinic, "D2", "check_1w")
    # The patient asked to be called back about the 1-week check at 10:40.
    cli("record", str(one_w), "--outcome", "callback_requested", "--callback-at", "2026-11-23T10:40",
        db=clinic, now="2026-11-23T10:01+08:00", user="zhang.li")
    assert two_h in claim_json(cli, clinic, "zhang.li", NOW, "--count", "1")  # holds D2 until 11:00
    # At 10:45 the callback is due, but D2 is on zhang.li's phone list: not to a colleague.
    colleague = claim_json(cli, clinic, "admin", "2026-11-23T10:45+08:00", "--site", "SH-DENT", "--count", "9")
    assert one_w not in colleague
    # ...and a colleague cannot record on zhang.li's held call either.
    held = cli("record", str(two_h), "--outcome", "reached", "--locale", "en", db=clinic,
               now="2026-11-23T10:45+08:00", user="admin", ok=False)
    assert held.exit_code == 1 and "held by zhang.li until 11:00" in held.output
    after = next(t for t in tasks_of(cli, clinic, patient="D2") if t["id"] == two_h)
    assert (after["status"], after["attempts"]) == ("open", 0)  # nothing written for the colleague
    assert not [e for e in json.loads(cli("audit", "--patient", "D2", "--format", "json", db=clinic, now=NOW).output)
                if e["action"] == "attempt" and e["entity_id"] == two_h]
    # zhang.li herself picks the callback up.
    assert one_w in claim_json(cli, clinic, "zhang.li", "2026-11-23T10:45+08:00", "--count", "9")


def test_claims_are_audited_with_user_time_and_patient(cli, clinic: str) -> None:  # type: ignore[no-untyped-def]
    got = claim_json(cli, clinic, "zhang.li", NOW, "--count", "1")
    entries = json.loads(cli("audit", "--patient", "D2", "--format", "json", db=clinic, now=NOW).output)
    claims = [e for e in entries if e["action"] == "claim"]
    assert sorted(e["entity_id"] for e in claims) == sorted(got)
    assert {e["user"] for e in claims} == {"zhang.li"}
    assert {e["at"] for e in claims} == {"2026-11-23T10:30:00+08:00"}  # clinic time, not UTC


# -- concurrency ----------------------------------------------------------------------------------

WORKERS = 8


@pytest.fixture
def crowd(cli, tmp_path: Path, db_url: str) -> str:  # type: ignore[no-untyped-def]
    """24 SH-DENT patients due on Monday: 12 with one call (scaling), 12 with two (extraction)."""
    patients, episodes = [], []
    for i in range(24):
        pid = f"C{i:02d}"
        patients.append([pid, f"患者{i:02d}", "F" if i % 2 else "M", "1980-01-01", f"1380000{i:04d}", "SH-DENT"])
        if i % 2:
            episodes.append([f"S{i:02d}", pid, "SH-DENT", "dental", "scaling", "2026-11-22T10:00", "林雪"])
        else:
            episodes.append([f"X{i:02d}", pid, "SH-DENT", "dental", "extraction", "2026-11-16T10:00", "陈志远"])
    seed(cli, tmp_path, db_url, patients, episodes)
    return db_url


def _run_workers(target) -> list:  # type: ignore[no-untyped-def]
    results: list = [None] * WORKERS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)
    return results


@pytest.fixture
def config(config):  # type: ignore[no-untyped-def]
    """The demo chain with eight more SH-DENT coordinators (coord0..7) and admins (admin0..7)."""
    from core.config import StaffMember

    config.model.staff.extend(
        StaffMember(username=f"{role[:5]}{i}", name=f"{role} {i}", role=role, sites=["SH-DENT"])
        for role in ("coordinator", "admin") for i in range(WORKERS)
    )
    return config


def _task_patients(url: str) -> dict[int, int]:
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Task

    with session_scope(url) as session:
        return dict(session.execute(select(Task.id, Task.patient_id)).all())


def test_eight_concurrent_claimers_never_share_a_patient(crowd: str, config) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from core.claims import claim
    from core.db.engine import session_scope
    from core.db.models import Task

    patient_of = _task_patients(crowd)
    for round_no in range(3):  # 10:30, 11:30, 12:30: each round after the previous 30-minute holds expired
        now = datetime.fromisoformat(NOW) + timedelta(hours=round_no)
        barrier = threading.Barrier(WORKERS, timeout=60)

        def worker(i: int, now: datetime = now, barrier: threading.Barrier = barrier) -> list[int]:
            barrier.wait()  # all claim at the same moment
            with session_scope(crowd, immediate=True) as session:
                return claim(session, config, user=f"coord{i}", sites=["SH-DENT"], count=3, now=now)

        results = _run_workers(worker)
        claimed = [tid for ids in results for tid in ids]
        assert claimed, "nobody got anything: the test would prove nothing"
        duplicates = [tid for tid, n in Counter(claimed).items() if n > 1]
        assert duplicates == [], f"round {round_no}: tasks claimed twice: {duplicates}"
        owners: dict[int, set[int]] = {}
        for i, ids in enumerate(results):
            for tid in ids:
                owners.setdefault(patient_of[tid], set()).add(i)
        shared = {p: o for p, o in owners.items() if len(o) > 1}
        assert shared == {}, f"round {round_no}: patients given to two coordinators: {shared}"
        assert all(len({patient_of[t] for t in ids}) <= 3 for ids in results)  # --count is patients
        with session_scope(crowd) as session:
            stored = dict(session.execute(select(Task.id, Task.assignee).where(Task.id.in_(claimed))).all())
        for i, ids in enumerate(results):
            assert all(stored[t] == f"coord{i}" for t in ids)  # what each was told is what the database holds
        # every patient with both extraction calls has both on the same coordinator
        for ids in results:
            for tid in ids:
                siblings = [t for t, p in patient_of.items() if p == patient_of[tid]]
                assert set(siblings) <= set(ids)


def test_eight_claiming_processes_share_nothing_and_stop_only_when_nothing_is_left(  # type: ignore[no-untyped-def]
    crowd: str
) -> None:
    """Eight processes start together (a barrier) and each claims 2 patients at a time until it is told
    there is nothing to claim. Nobody gets a task or a patient another got, and nobody is told "nothing"
    while work is free: no claim that started after someone's empty answer got anything. A claimer
    that loses a race goes on to the next patients. On SQLite they wait for the write lock in turn
    (never "database is locked")."""
    from claimer import claim_until_empty
    from processes import worker_context

    patient_of = _task_patients(crowd)
    ctx = worker_context()
    barrier, out = ctx.Barrier(WORKERS, timeout=120), ctx.Queue()
    procs = [ctx.Process(target=claim_until_empty, args=(crowd, f"coord{i}", 2, NOW, barrier, out))
             for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    results = dict(out.get(timeout=240) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    assert {user: r for user, r in results.items() if isinstance(r, str)} == {}
    claimed = [tid for claims in results.values() for _, _, ids in claims for tid in ids]
    assert [tid for tid, n in Counter(claimed).items() if n > 1] == []
    owners: dict[int, set[str]] = {}
    for user, claims in results.items():
        for _, _, ids in claims:
            for tid in ids:
                owners.setdefault(patient_of[tid], set()).add(user)
    assert {p: o for p, o in owners.items() if len(o) > 1} == {}
    assert len(owners) == 24  # every patient of the crowd was handed out
    told_empty = {user: claims[-1][1] for user, claims in results.items()}
    late = [(user, when, other) for user, when in told_empty.items() for other, claims in results.items()
            for started, _, ids in claims if ids and started > when]
    assert late == [], "told there was nothing to claim while work was free (a claim after it got some)"


def test_a_claimer_that_loses_the_race_takes_the_next_patients(  # type: ignore[no-untyped-def]
    crowd: str, config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's first candidates are all taken by A: B is not told "nothing to claim" but gets the next three patients.

    SQLite: B read its candidates just before A's claim of the same patients committed (made certain here
    by handing B a stale first read). PostgreSQL reads the candidates and takes them in one statement:
    there A's claim of twelve patients (B's whole first pool) is still in flight, its patients locked."""
    import core.claims
    from core.claims import claim
    from core.db.engine import session_scope

    now = datetime.fromisoformat(NOW)
    patient_of = _task_patients(crowd)
    if crowd.startswith("postgresql"):
        monkeypatch.setattr(core.claims, "POOL", 4)  # B's pool of 3 x 4 patients: half the crowd
        with session_scope(crowd) as in_flight:
            first = claim(in_flight, config, user="coord0", sites=["SH-DENT"], count=3 * core.claims.POOL, now=now)
            taken = sorted({patient_of[t] for t in first})
            assert len(taken) == 3 * core.claims.POOL
            with session_scope(crowd) as session:
                second = claim(session, config, user="coord1", sites=["SH-DENT"], count=3, now=now)
        got = {patient_of[t] for t in second}
        assert len(got) == 3 and not got & set(taken)
        return
    with session_scope(crowd, immediate=True) as session:
        first = claim(session, config, user="coord0", sites=["SH-DENT"], count=3, now=now)
    taken = sorted({patient_of[t] for t in first})
    assert len(taken) == 3
    real, reads = core.claims._candidates, []

    def stale_then_real(session, statement, params, tried, wanted):  # type: ignore[no-untyped-def]
        reads.append(wanted)
        return taken[:wanted] if len(reads) == 1 else real(session, statement, params, tried, wanted)

    monkeypatch.setattr(core.claims, "_candidates", stale_then_real)
    with session_scope(crowd, immediate=True) as session:
        second = claim(session, config, user="coord1", sites=["SH-DENT"], count=3, now=now)
    got = {patient_of[t] for t in second}
    assert len(got) == 3 and not got & set(taken) and len(reads) >= 2


def test_eight_coordinators_recording_at_once_keep_the_report_counts_exact(  # type: ignore[no-untyped-def]
    crowd: str, config, plugins
) -> None:
    """Each records every call of the patients they claimed, in one transaction, half of them in the
    opposite task order: the reports' day rows (updated by each call) neither deadlock nor drift."""
    from sqlalchemy import func, select

    from core.calls import record_call
    from core.claims import claim
    from core.db import rollups
    from core.db.engine import get_engine, session_scope
    from core.db.models import Attempt

    now = datetime.fromisoformat(NOW)
    barrier = threading.Barrier(WORKERS, timeout=60)

    def worker(i: int) -> list[int]:
        with session_scope(crowd, immediate=True) as session:
            ids = claim(session, config, user=f"coord{i}", sites=["SH-DENT"], count=3, now=now)
        barrier.wait()
        with session_scope(crowd, immediate=True) as session:
            for tid in sorted(ids, reverse=bool(i % 2)):
                record_call(session, config, plugins, tid, outcome="reached" if tid % 3 else "no_answer",
                            user=f"coord{i}", now=now + timedelta(minutes=5))
        return ids

    recorded = [tid for ids in _run_workers(worker) for tid in ids]
    assert len(recorded) >= 2 * WORKERS  # most claims hold a patient's two extraction calls
    with session_scope(crowd) as session:
        assert session.execute(select(func.count()).select_from(Attempt)).scalar() == len(recorded)
    with get_engine(crowd).connect() as conn:
        assert rollups.verify(conn) == {}


def test_calls_and_do_not_contact_at_once_keep_the_report_counts_exact(  # type: ignore[no-untyped-def]
    crowd: str, config, plugins
) -> None:
    """Four coordinators record their claimed calls while four others mark the remaining patients
    do-not-contact, three per transaction, half of each in the opposite order."""
    from core.calls import record_call
    from core.claims import claim
    from core.db import rollups
    from core.db.engine import get_engine, session_scope
    from core.followthrough import set_do_not_contact

    now = datetime.fromisoformat(NOW)
    claimed: list[list[int]] = []
    for i in range(WORKERS // 2):
        with session_scope(crowd, immediate=True) as session:
            claimed.append(claim(session, config, user=f"coord{i}", sites=["SH-DENT"], count=3, now=now))
    held = {patient for ids in claimed for patient in _patients_of(crowd, ids)}
    rest = sorted({f"C{i:02d}" for i in range(24)} - held)
    assert len(rest) >= WORKERS // 2 * 3
    barrier = threading.Barrier(WORKERS, timeout=60)

    def worker(i: int) -> None:
        half = i // (WORKERS // 2)
        mine = claimed[i] if not half else rest[(i - WORKERS // 2) * 3:(i - WORKERS // 2) * 3 + 3]
        barrier.wait()
        with session_scope(crowd, immediate=True) as session:
            for item in sorted(mine, reverse=bool(i % 2)):
                if half:
                    set_do_not_contact(session, config, item, on=True, reason="test", user=f"admin{i}", now=now)
                else:
                    record_call(session, config, plugins, item, outcome="no_answer", user=f"coord{i}",
                                now=now + timedelta(minutes=5))

    _run_workers(worker)
    with get_engine(crowd).connect() as conn:
        assert rollups.verify(conn) == {}


def _patients_of(url: str, task_ids: list[int]) -> set[str]:
    from sqlalchemy import select

    from core.db.engine import session_scope
    from core.db.models import Patient, Task

    with session_scope(url) as session:
        return set(session.scalars(select(Patient.external_id).join(Task, Task.patient_id == Patient.id)
                                   .where(Task.id.in_(task_ids))))


def test_the_naive_claim_does_hand_out_duplicates(crowd: str, config) -> None:  # type: ignore[no-untyped-def]
    """Negative control: the same 8-worker race with read-then-write and no re-check duplicates work.

    Every worker reads before any writes (a barrier between the phases), so the
    race is certain, not lucky; it shows the test above can catch duplicates.
    """
    from core.claims import naive_claim
    from core.db.engine import get_engine, session_scope
    from core.worklist import end_of_day

    if get_engine(crowd).dialect.name == "sqlite":
        pytest.skip("SQLite refuses the naive writer (SQLITE_BUSY): the race needs a database with row locks")
    now = datetime.fromisoformat(NOW)
    cutoff = end_of_day(now.astimezone(SH).date(), SH)
    barrier = threading.Barrier(WORKERS, timeout=60)

    def worker(i: int) -> list[int]:
        with session_scope(crowd) as session:
            return naive_claim(session, user=f"naive{i}", sites=["SH-DENT"], count=3, now=now, cutoff=cutoff,
                               between=barrier.wait)

    results = _run_workers(worker)
    claimed = [tid for ids in results for tid in ids]
    duplicates = {tid: n for tid, n in Counter(claimed).items() if n > 1}
    assert duplicates, "the naive claim produced no duplicates: the concurrency test could not catch any"
    assert max(duplicates.values()) == WORKERS  # all eight were told they own the same calls


# -- sites in different timezones ----------------------------------------------------------------


def _two_zone_config(config, zone: str):  # type: ignore[no-untyped-def]
    """The demo chain with SH-AES moved to ``zone``; SH-DENT stays in Asia/Shanghai."""
    from dataclasses import replace

    return replace(config, sites={**config.sites, "SH-AES": replace(config.sites["SH-AES"], timezone=ZoneInfo(zone))})


def _due_tasks(url: str, due: dict[str, tuple[str, datetime]]) -> dict[str, int]:
    """One patient and one open first-call task per key, at ``site`` due at the given instant."""
    from core.db.engine import session_scope
    from core.db.models import Episode, Patient, Task
    from core.db.uow import outside

    ids = {}
    with session_scope(url) as session:
        for n, (key, (site, at)) in enumerate(due.items()):
            patient = Patient(external_id=key, name=f"患者{key}", phone=f"1380000{n:04d}", site=site)
            session.add(patient)
            session.flush()
            episode = Episode(external_id=f"E-{key}", patient_id=patient.id, site=site, specialty="dental",
                              procedure="scaling", trigger="procedure", occurred_at=at - timedelta(days=1))
            session.add(episode)
            session.flush()
            task = Task(episode_id=episode.id, patient_id=patient.id, site=site, specialty="dental",
                        procedure="scaling", milestone="check_1d", purpose="recovery_check", channel="phone",
                        urgency="routine", due_at=at, window_start=at - timedelta(hours=1),
                        window_end=at + timedelta(days=1), target_at=at, offset="1d", window_earliest="0d",
                        window_latest="2d", next_attempt_at=at)
            with outside(session):  # tasks no scheduler would make: due exactly then
                session.add(task)
            ids[key] = task.id
    return ids


@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Urumqi"])
@pytest.mark.parametrize("order", [("SH-DENT", "SH-AES"), ("SH-AES", "SH-DENT")])
def test_each_site_is_cut_at_its_own_end_of_day(  # type: ignore[no-untyped-def]
    db_url: str, config, zone: str, order: tuple[str, str]
) -> None:
    """SH-DENT in Shanghai, SH-AES in London (UTC+0) or Urumqi (UTC+6): 10:30 in Shanghai is Monday everywhere.

    Late-Monday tasks of either site are claimable; a task due just after its own site's
    midnight is not, although it falls before the other site's midnight. Whichever site
    the coordinator's list names first.
    """
    from core.claims import claim
    from core.db.engine import session_scope
    from core.worklist import worklist

    chain = _two_zone_config(config, zone)
    other = ZoneInfo(zone)
    ids = _due_tasks(db_url, {
        "SH-late": ("SH-DENT", datetime(2026, 11, 23, 23, 30, tzinfo=SH)),  # after the other site's midnight if UTC+6
        "SH-next": ("SH-DENT", datetime(2026, 11, 24, 0, 30, tzinfo=SH)),   # Monday evening in the other zone
        "XX-late": ("SH-AES", datetime(2026, 11, 23, 23, 30, tzinfo=other)),  # Tuesday morning in Shanghai
        "XX-next": ("SH-AES", datetime(2026, 11, 24, 0, 30, tzinfo=other)),
    })
    now = datetime.fromisoformat(NOW)
    day = now.astimezone(SH).date()
    assert now.astimezone(other).date() == day
    with session_scope(db_url) as session:
        listed = {line.patient_id for line in worklist(session, chain, day=day, now=now, sites=list(order))}
    assert listed == {"SH-late", "XX-late"}
    with session_scope(db_url, immediate=True) as session:
        got = claim(session, chain, user="admin", sites=list(order), count=10, now=now)
    assert sorted(got) == sorted([ids["SH-late"], ids["XX-late"]])
    # The claim's audit shows the hold in each task's own site time.
    from sqlalchemy import select

    from core.db.models import AuditEntry

    with session_scope(db_url) as session:
        until = {e.entity_id: e.detail["until"] for e in session.scalars(select(AuditEntry).where(
            AuditEntry.action == "claim"))}
    hold_end = now + timedelta(minutes=30)
    assert until[ids["SH-late"]] == hold_end.astimezone(SH).isoformat(timespec="minutes")
    assert until[ids["XX-late"]] == hold_end.astimezone(other).isoformat(timespec="minutes")
    # Tuesday: the rest becomes due, each at its own site's day.
    with session_scope(db_url, immediate=True) as session:
        tomorrow = claim(session, chain, user="admin", sites=list(order), count=10, now=now,
                         day=day + timedelta(days=1))
    assert sorted(tomorrow) == sorted([ids["SH-next"], ids["XX-next"]])


def test_today_is_each_sites_own_date(db_url: str, config) -> None:  # type: ignore[no-untyped-def]
    """At 07:00 Tuesday in Shanghai it is still Monday 23:00 in London: London's Tuesday calls are not due yet."""
    from core.claims import claim
    from core.db.engine import session_scope

    chain = _two_zone_config(config, "Europe/London")
    london = ZoneInfo("Europe/London")
    ids = _due_tasks(db_url, {
        "SH-tue": ("SH-DENT", datetime(2026, 11, 24, 9, 0, tzinfo=SH)),
        "LO-mon": ("SH-AES", datetime(2026, 11, 23, 22, 0, tzinfo=london)),
        "LO-tue": ("SH-AES", datetime(2026, 11, 24, 9, 0, tzinfo=london)),
    })
    now = datetime(2026, 11, 24, 7, 0, tzinfo=SH)
    with session_scope(db_url, immediate=True) as session:
        got = claim(session, chain, user="admin", sites=["SH-DENT", "SH-AES"], count=10, now=now)
    assert sorted(got) == sorted([ids["SH-tue"], ids["LO-mon"]])


# -- the claim order -------------------------------------------------------------------------------


def _mixed_tasks(url: str, seed: int, now: datetime) -> list[dict]:
    """30 SH-DENT patients with 1-3 due calls each: value tiers in any case (or none), clinical or routine,
    due at scattered times, some held by a colleague (live or expired hold), some already tried."""
    import random

    from core.db.engine import session_scope
    from core.db.models import Episode, Patient, Task
    from core.db.uow import outside

    rng = random.Random(seed)
    rows = []
    with session_scope(url) as session, outside(session):  # states no scheduler would make at once
        for n in range(30):
            tier = rng.choice([None, None, None, "VIP", "vip", "Gold", "silver"])
            patient = Patient(external_id=f"M{n:02d}", name=f"患者{n:02d}", phone=f"1390000{n:04d}",
                              site="SH-DENT", value_tier=tier)
            session.add(patient)
            session.flush()
            for k in range(rng.randint(1, 3)):
                at = now - timedelta(minutes=rng.choice([5, 30, 90, 240, 600]) + n % 3)
                episode = Episode(external_id=f"E-{n}-{k}", patient_id=patient.id, site="SH-DENT",
                                  specialty="dental", procedure="scaling", trigger="procedure",
                                  occurred_at=at - timedelta(days=1))
                session.add(episode)
                session.flush()
                held = rng.random()
                task = Task(episode_id=episode.id, patient_id=patient.id, site="SH-DENT", specialty="dental",
                            procedure="scaling", milestone="check_1d", purpose="recovery_check", channel="phone",
                            urgency=rng.choice(["clinical", "routine", "routine"]), due_at=at,
                            window_start=at - timedelta(hours=1), window_end=at + timedelta(days=1), target_at=at,
                            offset="1d", window_earliest="0d", window_latest="2d", next_attempt_at=at,
                            attempts=rng.choice([0, 0, 1]),
                            assignee="coord1" if held < 0.25 else None,
                            claimed_until=(now + timedelta(minutes=20) if held < 0.1
                                           else now - timedelta(minutes=5) if held < 0.25 else None))
                session.add(task)
                session.flush()
                rows.append({"id": task.id, "patient": patient.id, "tier": tier, "urgency": task.urgency,
                             "at": at, "held": held < 0.1})
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_claims_follow_the_worklist_order_through_tiers_urgency_and_holds(  # type: ignore[no-untyped-def]
    db_url: str, config, seed: int
) -> None:
    """One patient per claim, again and again: the patients come in the worklist's order (clinical calls
    first, then valued patients by tier whatever the case of the tier's name, then by next attempt);
    a patient with a call a colleague still holds never comes, one whose colleague's hold expired does."""
    from core.claims import claim
    from core.db.engine import session_scope

    config.model.value_tiers[:] = ["vip", "gold"]
    now = datetime.fromisoformat(NOW)
    rows = _mixed_tasks(db_url, seed, now)
    blocked = {r["patient"] for r in rows if r["held"]}
    first: dict[int, tuple] = {}
    for r in sorted(rows, key=lambda r: (r["urgency"] != "clinical", config.tier_rank(r["tier"]), r["at"], r["id"])):
        if r["patient"] not in blocked:
            first.setdefault(r["patient"], ())
    expected = list(first)
    got = []
    while True:
        with session_scope(db_url, immediate=True) as session:
            ids = claim(session, config, user="admin", sites=["SH-DENT"], count=1, now=now)
        if not ids:
            break
        patients = {r["patient"] for r in rows if r["id"] in ids}
        assert len(patients) == 1
        mine = {r["id"] for r in rows if r["patient"] in patients and not r["held"]}
        assert set(ids) == mine  # all of the patient's due calls at once
        got += patients
    assert got == expected


def _unsorted_walk(node: dict, index: str, sorted_above: bool = False) -> dict | None:
    """The node of a PostgreSQL plan reading ``index`` with no Sort between it and the LIMIT above it."""
    if node.get("Index Name") == index and not sorted_above:
        return node
    sorted_above = (sorted_above or "Sort" in node["Node Type"]) and node["Node Type"] != "Limit"
    return next(filter(None, (_unsorted_walk(child, index, sorted_above) for child in node.get("Plans", []))), None)


def test_the_candidates_are_read_in_claim_order_from_the_index(db_url: str, config) -> None:  # type: ignore[no-untyped-def]
    """The read of the next candidates walks ix_tasks_claim (migration 0017) and stops after the first free
    rows, instead of sorting every due task of the coordinator's sites: the condition of claims at queue
    speed, lost silently if the order or the hold is written differently from the index."""
    from core import claims
    from core.db.engine import analyze, get_engine
    from core.db.uow import outside

    now = datetime.fromisoformat(NOW)
    _mixed_tasks(db_url, 4, now)
    analyze(db_url)
    postgres = db_url.startswith("postgresql")
    cutoffs = claims._cutoffs(config, ["SH-DENT"], now, None)
    for tiers in (0, 1):
        candidates, take = claims._statements(tuple(map(tuple, cutoffs.values())), postgres, tiers)
        params = {"now": claims._utc(now, postgres), "tried": [0] if postgres else "[0]", "rows": 8, "tier_0": "vip",
                  "cutoff_0": claims._utc(next(iter(cutoffs)), postgres), "wanted": 2, "need": 1,
                  "user": "admin", "until": claims._utc(now, postgres), "recorded": now, "details": "[{}]"}
        with get_engine(db_url).connect() as conn, outside(conn):  # EXPLAIN: planned, nothing written
            if postgres:
                # A tiny table: planned as a large one would be, where sorting every due task costs most
                for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                    conn.exec_driver_sql(f"SET {setting} = off")
                # the candidates are read by the claim's statement itself
                plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + take, params).scalar_one()
                walk = _unsorted_walk(plan[0]["Plan"], "ix_tasks_claim")
                # held tasks passed over inside the index, not fetched one by one to be thrown away
                assert walk and "COALESCE(claimed_until" in walk.get("Index Cond", ""), plan
            else:
                plan = "\n".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + candidates, params))
                walk = plan.split("CO-ROUTINE others")[-1].split("SCAN others")[0]
                assert "USING INDEX ix_tasks_claim" in walk and "TEMP B-TREE" not in walk, plan
