#!/usr/bin/env python
"""Scale benchmark: a synthetic 50-site chain, measured against what the database alone can do.

    .venv/bin/python benchmarks/scale.py                       # SQLite, 1,000,000 tasks, 2,000,000 attempts
    .venv/bin/python benchmarks/scale.py --pg postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/scale.py --tasks 30000 --attempts 60000    # a quick run

For each database (a fresh SQLite file; with ``--pg URL`` also a fresh schema in
that PostgreSQL database, dropped afterwards) it generates a chain of 50 sites
(dental, aesthetic + hair, in-patient), its patients and episodes spread over
2026 (bulk Core inserts; setup is not measured), then measures, each against a
hand-written baseline in the same run:

1. ``core.scheduling.schedule`` creating every task, against a raw ``executemany``
   (sqlite3) or ``COPY`` (psycopg) of the same rows into an identically indexed
   table (the rows are computed beforehand, untimed, by the plain per-episode
   ``core.scheduling.task_rows``, so the check "scheduled tasks equal the raw
   rows" compares the optimised batch path with the straightforward one);
   then the calls made (``--attempts``, answers, final statuses) loaded as a call history by
   ``core.callhistory.load_attempts``, chunk by chunk, each chunk against a raw load of the
   same rows (the attempts and answers by ``executemany`` / ``COPY``, the tasks' new values by
   one ``UPDATE``, the day-count triggers dropped; rolled back, then the framework loads them),
   both timed up to the commit; the day counts and task counters must equal a recount;
2. ``core.worklist.worklist`` for the busiest site on one day, against the
   hand-written indexed query (PostgreSQL: prepared, on a generic plan), the two
   alternately (A/B/A/B), medians;
3. ``core.reports.build_report`` for a month, over the tasks and the synthetic
   attempts and answers (scores and free text), against hand-written SQL for every
   figure and list it shows (``report_sql``: the figures from the same per-day counts,
   the lists from the rows), alternately; the figures and lists must be equal;
4. ``followup --help`` against ``python -c pass`` (wall time, median);
5. claims: a second database with ``--claim-tasks`` open tasks drained by 1, 4
   (PostgreSQL) and 8 processes calling ``core.claims.claim`` (5 patients a claim),
   and by 8 processes running a plain ``SKIP LOCKED`` queue that takes as many
   patients a claim (benchmarks/claimers.py), 8-process runs alternating; no task
   claimed twice, none left;
6. ``record_call`` ``--records`` times (default 20,000) with the reports' day-count triggers
   and as many times without them (alternating blocks of 250, a database of its own with twice
   as many open tasks: each recorded once);
7. the everyday commands of benchmarks/cli.py (CPU time against
   ``python -c "import sqlalchemy.orm"``);
8. import: the patients and episodes of ``--tasks`` tasks (at most ``--import-episodes``)
   as a HIS export (two CSV files) imported by ``core.importing.import_file`` on a
   fresh SQLite database and a fresh PostgreSQL schema, alternating, against a raw
   ``executemany`` / ``COPY`` of the same rows into a fresh database; rows/s each.

Every measurement prints one line with both times and the ratio; the last line
is ``ratios: schedule=X worklist=Y report=Z claims=C cli=L import=I attempts=A`` (the worst
over the databases run; claims: the queue's claims per second over the
framework's; import: PostgreSQL's import time over SQLite's for the same file).
Each framework result is also checked against its baseline's rows; a mismatch
makes the exit status 1.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2026
SCHEDULE_NOW = datetime(YEAR, 1, 1, 0, 0, tzinfo=TZ)  # before every event: nothing expires
REPORT_NOW = datetime(YEAR, 12, 1, 9, 0, tzinfo=TZ)  # calls were made up to here
REPORT_PERIOD = f"{YEAR}-11"
WORKLIST_DAY = REPORT_NOW.date()
CLAIM_NOW = datetime(YEAR + 2, 6, 1, 10, 0, tzinfo=TZ)  # after every task's due time
CHUNK = 20_000
GOALS = {"schedule": 2.0, "worklist": 2.0, "report": 3.0, "claims": 3.0, "cli": 1.5, "import": 2.0, "attempts": 1.5}
HELP_GOAL_MS = 150.0

# 50 sites: (prefix, count, specialties)
SITE_KINDS = (("D", 20, ["dental"]), ("A", 15, ["aesthetic", "hair"]), ("H", 15, ["inpatient"]))
SPECIALTY_WEIGHTS = {"aesthetic": 0.7, "hair": 0.3}
EVENT_HOURS = {  # local hours an event of this trigger happens in
    "procedure": (9, 19), "discharge": (10, 16), "consultation": (10, 20),
    "visit_without_treatment": (10, 20), "missed_appointment": (9, 18), "interruption": (9, 18),
}


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the synthetic chain ---------------------------------------------------------------------------
def write_chain(folder: Path, n_sites: int = 50) -> Path:
    """A chain YAML and one file per site: dental, aesthetic + hair and in-patient sites."""
    sites_dir = folder / "sites"
    sites_dir.mkdir(parents=True, exist_ok=True)
    staff = []
    codes = []
    for prefix, count, specialties in SITE_KINDS:
        for i in range(1, count + 1):
            codes.append((f"{prefix}{i:02d}", specialties, i))
    codes = codes[:n_sites]
    for code, specialties, i in codes:
        lines = [
            f"code: {code}",
            f"name: {{zh_CN: 康华{code}店, en: Kanghua {code}}}",
            f"phone: 021-6000-{i:04d}",
            f"specialties: [{', '.join(specialties)}]",
        ]
        if code.startswith("D") and i % 4 == 0:  # some dental sites call around 10:30 and 16:00
            lines.append('calling_windows: ["10:00-11:30", "15:30-17:00"]')
        if i % 5 == 0:
            lines.append(f"closed_days: [{YEAR}-12-31]")
        if code.startswith("A") and i % 3 == 0:
            lines += [
                "overrides:",
                "  - milestone: aesthetic.rhinoplasty.splint_removal",
                "    offset: 5d",
                "    window: [4d, 6d]",
            ]
        (sites_dir / f"{code.lower()}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for n in (1, 2):
            staff.append(f"  - {{username: {code.lower()}.c{n}, name: {code}-{n}, role: coordinator, sites: [{code}]}}")
    # the claim benchmark's chain-wide coordinators (no sites: every site; core/access.py)
    staff += [f"  - {{username: bench{i}, name: bench-{i}, role: coordinator}}" for i in range(16)]
    chain = folder / "chain.yaml"
    chain.write_text(
        "\n".join([
            "name: {zh_CN: 康华医疗集团（基准）, en: Kanghua Benchmark Chain}",
            "defaults:",
            "  locale: zh_CN",
            "  timezone: Asia/Shanghai",
            '  calling_windows: ["09:00-11:30", "14:30-17:30"]',
            '  quiet_hours: "21:00-08:00"',
            "  holiday_country: CN",
            "holiday_notices: {}",
            "staff:",
            *staff,
            "sites_dir: sites",
        ]) + "\n",
        encoding="utf-8",
    )
    return chain


@dataclass
class Chain:
    config: Any
    plugins: Any
    protocols: Any
    # site -> [(specialty, weight)], (specialty) -> [procedure]
    procedures: dict[str, list[Any]]
    milestone_counts: dict[tuple[str, str, str, bool], int]


def load_chain(chain_yaml: Path) -> Chain:
    from core.config import load_config
    from core.plugins import get_plugins
    from core.scheduling import Protocols, applies

    plugins = get_plugins()
    config = load_config(chain_yaml)
    protocols = Protocols(config, plugins)
    procedures = {key: list(spec.procedures) for key, (_, spec) in plugins.specialties().items()}
    counts: dict[tuple[str, str, str, bool], int] = {}
    for site in config.sites.values():
        for spec in site.specialties:
            for proc in procedures[spec]:
                milestones = protocols.milestones(site, spec, proc.code)
                for flag in (False, True):
                    attrs = {k: flag for m in milestones for k in m.when}
                    counts[(site.code, spec, proc.code, flag)] = sum(applies(m, attrs) for m in milestones)
    return Chain(config, plugins, protocols, procedures, counts)


def generate(chain: Chain, n_tasks: int, rng: random.Random, *, dnc_rate: float = 0.01,
             ) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], int]]:
    """Chunks of (patients, episodes, their task count) until ``n_tasks`` tasks are planned."""
    sites = list(chain.config.sites.values())
    start = date(YEAR, 1, 1)
    now = SCHEDULE_NOW
    recent: dict[str, list[int]] = defaultdict(list)
    planned = 0
    patient_id = episode_id = 0
    patients: list[dict[str, Any]] = []
    episodes: list[dict[str, Any]] = []
    chunk_tasks = 0
    while planned < n_tasks:
        site = sites[rng.randrange(len(sites))]
        if len(site.specialties) == 1:
            spec = site.specialties[0]
        else:
            spec = rng.choices(site.specialties, [SPECIALTY_WEIGHTS.get(s, 1.0) for s in site.specialties])[0]
        proc = rng.choice(chain.procedures[spec])
        flag = rng.random() < 0.5
        count = chain.milestone_counts[(site.code, spec, proc.code, flag)]
        if count == 0:
            continue
        pool = recent[site.code]
        if pool and rng.random() < 0.25:
            pid = rng.choice(pool)
        else:
            patient_id += 1
            pid = patient_id
            patients.append({
                "id": pid, "external_id": f"P{pid:08d}", "name": f"患者{pid}", "gender": rng.choice("FM"),
                "birth_date": date(1950 + pid % 60, 1 + pid % 12, 1 + pid % 28), "phone": f"138{pid:08d}",
                "site": site.code, "locale": "zh_CN", "do_not_contact": rng.random() < dnc_rate,
                "phone_invalid": False, "created_at": now, "updated_at": now,
            })
            pool.append(pid)
            if len(pool) > 500:
                pool.pop(0)
        low, high = EVENT_HOURS.get(proc.trigger, (9, 18))
        local = datetime.combine(start + timedelta(days=rng.randrange(365)),
                                 dtime(rng.randrange(low, high), rng.randrange(60)), TZ)
        episode_id += 1
        when_keys = {k for m in chain.protocols.milestones(site, spec, proc.code) for k in m.when}
        episodes.append({
            "id": episode_id, "external_id": f"E{episode_id:08d}", "patient_id": pid, "site": site.code,
            "specialty": spec, "procedure": proc.code, "trigger": proc.trigger, "occurred_at": local,
            "doctor": f"Dr {site.code}-{rng.randrange(1, 6)}", "department": spec, "diagnosis": None,
            "notes": None, "attributes": {k: flag for k in when_keys}, "status": "active",
            "scheduled_at": None, "created_at": now,
        })
        planned += count
        chunk_tasks += count
        if len(episodes) >= CHUNK // 4:
            yield patients, episodes, chunk_tasks
            patients, episodes, chunk_tasks = [], [], 0
    if episodes:
        yield patients, episodes, chunk_tasks


# -- databases ----------------------------------------------------------------------------------------
@dataclass
class Database:
    name: str  # "sqlite" or "postgresql"
    url: str
    cleanup: Callable[[], None] = lambda: None

    @property
    def is_pg(self) -> bool:
        return self.name == "postgresql"


def sqlite_database(folder: Path) -> Database:
    from core.db.migrate import upgrade

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    return Database("sqlite", url)


def pg_database(base: str, *, keep: bool = False) -> Database:
    """A fresh schema in the PostgreSQL database at ``base``, migrated; dropped by ``cleanup``."""
    from sqlalchemy import create_engine, text

    from core.db.engine import get_engine, normalize_url
    from core.db.migrate import upgrade

    base = normalize_url(base)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    upgrade(url)

    def cleanup() -> None:
        get_engine(url).dispose()
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return Database("postgresql", url, cleanup)


class Raw:
    """The database driver itself (sqlite3 or psycopg), on a connection of the framework's engine."""

    def __init__(self, db: Database):
        from core.db.engine import get_engine

        self.db = db
        self._fairy = get_engine(db.url).raw_connection()
        self.conn = self._fairy.driver_connection
        self.mark = "%s" if db.is_pg else "?"
        if not db.is_pg:
            self.conn.isolation_level = None  # explicit BEGIN/COMMIT, as the engine does

    def close(self) -> None:
        self._fairy.close()

    def begin(self) -> None:
        if not self.db.is_pg:
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        if self.db.is_pg:
            self.conn.commit()
        else:
            self.conn.execute("COMMIT")

    def value(self, v: Any) -> Any:
        """A Python value as the driver stores it in the framework's columns (naive UTC instants)."""
        if isinstance(v, datetime):
            v = v.astimezone(UTC).replace(tzinfo=None)
            if self.db.is_pg:
                return v
            return f"{v:%Y-%m-%d %H:%M:%S}.{v.microsecond:06d}"
        if isinstance(v, bool) and not self.db.is_pg:
            return int(v)
        if isinstance(v, dict | list):
            return json.dumps(v)
        return v

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("?", self.mark)
        cur = self.conn.cursor()
        cur.execute(sql, [self.value(p) for p in params])
        rows = cur.fetchall()
        cur.close()
        return rows

    def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", self.mark), [self.value(p) for p in params])
        cur.close()

    def load(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Bulk-load rows already in driver values: executemany (sqlite3) or COPY (psycopg)."""
        if self.db.is_pg:
            with self.conn.cursor() as cur:
                with cur.copy(f'COPY {table} ({", ".join(_quote(c) for c in columns)}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(
                f'INSERT INTO {table} ({", ".join(_quote(c) for c in columns)}) VALUES ({marks})', rows
            )


def _quote(column: str) -> str:
    return f'"{column}"'


def insert_core(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy import insert

    from core.db.engine import get_engine

    with get_engine(db.url).begin() as conn:
        conn.execute(insert(table), rows)


def populate(db: Database, chain: Chain, n_tasks: int, seed: int, *, dnc_rate: float = 0.01) -> tuple[int, int, int]:
    """Patients and episodes by bulk Core inserts; returns (patients, episodes, planned tasks)."""
    from sqlalchemy import text

    from core.db.engine import get_engine
    from core.db.models import Episode, Patient

    rng = random.Random(seed)
    n_patients = n_episodes = n_planned = 0
    for patients, episodes, planned in generate(chain, n_tasks, rng, dnc_rate=dnc_rate):
        if patients:
            insert_core(db, Patient.__table__, patients)
        insert_core(db, Episode.__table__, episodes)
        n_patients += len(patients)
        n_episodes += len(episodes)
        n_planned += planned
    if db.is_pg:  # explicit ids: move the sequences past them
        with get_engine(db.url).begin() as conn:
            for table in ("patients", "episodes"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT coalesce(max(id), 1) FROM {table}))"))
    return n_patients, n_episodes, n_planned


def analyze(db: Database) -> None:
    """Planner statistics, and on PostgreSQL the dead row versions of the bulk updates vacuumed:
    the steady state autovacuum keeps a live database in."""
    from sqlalchemy import text

    from core.db.engine import analyze as refresh
    from core.db.engine import get_engine

    if db.is_pg:
        with get_engine(db.url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        refresh(db.url)  # what `followup schedule` does after a large run


# -- 1. scheduling ------------------------------------------------------------------------------------
RAW_TASKS = "bench_raw_tasks"


def create_raw_tasks(db: Database) -> list[str]:
    """A copy of the tasks table with every constraint and index (renamed); returns its columns.

    The indexes only the migrations create (partial or on expressions: ix_tasks_leads, ix_tasks_claim ...)
    are copied from the database itself: each is maintained on every insert into tasks."""
    import re

    from sqlalchemy import MetaData

    from core.db.engine import get_engine
    from core.db.models import NAMING, Episode, Patient, Task

    meta = MetaData(naming_convention=NAMING)
    Patient.__table__.to_metadata(meta)
    Episode.__table__.to_metadata(meta)
    raw = Task.__table__.to_metadata(meta, name=RAW_TASKS)
    declared = {str(index.name) for index in Task.__table__.indexes}
    for index in raw.indexes:
        index.name = f"{RAW_TASKS}_{index.name}"
    for constraint in raw.constraints:
        if constraint.name:
            constraint.name = f"{RAW_TASKS}_{constraint.name}"
    with get_engine(db.url).begin() as conn:
        raw.drop(conn, checkfirst=True)
        raw.create(conn)
        live = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'tasks'"
            if db.is_pg else "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
        ).all()
        for name, sql in live:
            if name.startswith("ix_") and name not in declared:
                sql = sql.replace(f"INDEX {name} ", f"INDEX {RAW_TASKS}_{name} ", 1)
                conn.exec_driver_sql(re.sub(r" ON ((?:\S+\.)?)tasks ", rf" ON \g<1>{RAW_TASKS} ", sql, count=1))
    return [c.name for c in Task.__table__.columns if c.name != "id"]


def reference_rows(chain: Chain, db: Database, raw: Raw, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    """The rows schedule() must create, chunk by chunk, by the plain per-episode task_rows()."""
    from sqlalchemy import select

    from core.db.engine import get_engine
    from core.db.models import Episode, Patient
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from reference import task_rows  # the plain per-episode reference (tests/reference.py)

    config, protocols = chain.config, chain.protocols
    engine = get_engine(db.url)
    last = 0
    while True:
        with engine.connect() as conn:
            batch = conn.execute(
                select(Episode.id, Episode.patient_id, Episode.site, Episode.specialty, Episode.procedure,
                       Episode.trigger, Episode.occurred_at, Episode.attributes, Patient.do_not_contact)
                .join(Patient, Patient.id == Episode.patient_id)
                .where(Episode.status == "active", Episode.id > last)
                .order_by(Episode.id).limit(CHUNK // 4)
            ).all()
        if not batch:
            return
        last = batch[-1].id
        out = []
        for ep in batch:
            site = config.sites[ep.site]
            for row in task_rows(
                ep, site, protocols.milestones(site, ep.specialty, ep.procedure),
                calendar=site.calendar(config),
                max_attempts=protocols.max_attempts(site, ep.specialty, ep.procedure),
                now=SCHEDULE_NOW, do_not_contact=bool(ep.do_not_contact), config=config,
            ):
                out.append(tuple(raw.value(row.get(c)) for c in columns))
        yield out


class _RolledBack(Exception):
    """Raised inside a session to roll a measured run back (the next round does the same work)."""


def measure_schedule(db: Database, chain: Chain, out: Results, rounds: int = 1) -> None:
    """Scheduling every episode against the reference rows loaded by the driver into a copy of ``tasks``
    with every index, ``rounds`` times A/B (which side goes first alternating), all but the last round
    rolled back (their dead rows vacuumed away on PostgreSQL, untimed); medians compared."""
    from core.db.engine import session_scope
    from core.scheduling import schedule

    rss_before = peak_rss_mb()
    columns = create_raw_tasks(db)
    raw = Raw(db)
    try:  # a fresh chain: nothing scheduled and nothing referring to its tasks yet (truncated between rounds)
        empty = all(raw.query(f"SELECT count(*) FROM {table}")[0][0] == 0
                    for table in ("tasks", "report_task_days", "attempts", "answers"))
    finally:
        raw.close()
    settle_tasks(db, empty=False)  # the chain just loaded: vacuumed (and its WAL flushed) before the first round
    fws: list[float] = []
    raws: list[float] = []
    result: Any = None
    raw_check: tuple[int, int, int, int] = (0, 0, 0, 0)
    rss_after: float | None = None  # the process's peak after the framework's first run (round 0 starts with it)

    def framework(commit: bool) -> None:
        nonlocal result, rss_after
        t0 = time.perf_counter()
        try:
            with session_scope(db.url) as session:
                result = schedule(session, chain.config, chain.plugins, SCHEDULE_NOW)
                if not commit:
                    fws.append(time.perf_counter() - t0)
                    raise _RolledBack
        except _RolledBack:
            pass
        else:
            fws.append(time.perf_counter() - t0)
        if rss_after is None:  # before the baseline's reference rows, which are the benchmark's own
            rss_after = peak_rss_mb()

    def baseline(commit: bool) -> None:
        nonlocal raw_check
        raw = Raw(db)
        raw_time = 0.0
        n_raw = 0
        try:
            raw.begin()
            for rows in reference_rows(chain, db, raw, columns):
                t0 = time.perf_counter()
                raw.load(RAW_TASKS, columns, rows)
                raw_time += time.perf_counter() - t0
                n_raw += len(rows)
            if not commit:
                raws.append(raw_time)
                return
            t0 = time.perf_counter()
            raw.commit()
            raws.append(raw_time + time.perf_counter() - t0)
            cols = ", ".join(_quote(c) for c in columns)
            n_tasks = raw.query("SELECT count(*) FROM tasks")[0][0]
            diff = "SELECT count(*) FROM (SELECT {0} FROM {1} EXCEPT SELECT {0} FROM {2}) AS x"
            only_fw = raw.query(diff.format(cols, "tasks", RAW_TASKS))[0][0]
            only_raw = raw.query(diff.format(cols, RAW_TASKS, "tasks"))[0][0]
            raw.commit() if db.is_pg else None
            raw_check = (n_tasks, n_raw, only_fw, only_raw)
        finally:
            if not commit:
                if db.is_pg:
                    raw.conn.rollback()
                else:
                    raw.conn.execute("ROLLBACK")
            raw.close()

    for round_ in range(rounds):
        final = round_ == rounds - 1  # both kept: the baseline's rows are compared with the framework's
        for side in ((framework, baseline) if round_ % 2 == 0 else (baseline, framework)):
            side(commit=final)
            if not final:
                settle_tasks(db, empty)
    n_tasks, n_raw, only_fw, only_raw = raw_check
    ok = result.created == n_tasks == n_raw and only_fw == 0 and only_raw == 0
    out.add(db, "schedule", statistics.median(fws), statistics.median(raws), "executemany" if not db.is_pg else "COPY",
            f"{n_tasks} tasks; {result.provisional} provisional, {result.suppressed} suppressed "
            f"(the median of {rounds} A/B round(s), the side going first alternating); "
            f"peak RSS {rss_after:.0f} MB (before scheduling {rss_before:.0f} MB)",
            check=ok,
            check_detail=f"tasks={n_tasks} created={result.created} raw={n_raw} "
                         f"only_framework={only_fw} only_raw={only_raw}")
    out.data[db.name]["schedule_rows"] = {"tasks": n_tasks, "raw": n_raw, "only_framework": only_fw,
                                          "only_raw": only_raw, "created": result.created}
    out.data[db.name]["schedule_rounds"] = {"framework_s": [round(t, 3) for t in fws],
                                            "raw_s": [round(t, 3) for t in raws]}
    out.data[db.name]["peak_rss_mb"] = {"before": round(rss_before), "after": round(rss_after)}


def settle_tasks(db: Database, empty: bool) -> None:
    """After a rolled-back schedule or baseline (PostgreSQL), untimed: the tables they wrote as the first round
    found them. Vacuumed, their rolled-back rows and index entries stayed in the indexes' pages, and each
    round's schedule read slower than the one before (1.83, 2.21, 2.56 s against 1.03, 1.05, 1.24 s);
    ``empty``: they were empty before the first round (a fresh chain): truncated, as new."""
    if not db.is_pg:
        return
    from sqlalchemy import create_engine

    engine = create_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if empty:
                conn.exec_driver_sql(f"TRUNCATE tasks, {RAW_TASKS}, report_task_days CASCADE")
            else:
                conn.exec_driver_sql(f"VACUUM tasks, {RAW_TASKS}, report_task_days")
            checkpoint(conn)
    finally:
        engine.dispose()


def checkpoint(conn: Any) -> None:
    """PostgreSQL, untimed: the WAL written so far flushed now, so that no checkpoint the rounds before
    caused lands inside the next measured round (on one side of an A/B pair, by chance). A user without
    the right to (not a superuser nor pg_checkpoint): nothing."""
    try:
        conn.exec_driver_sql("CHECKPOINT")
    except Exception:  # noqa: BLE001 - a benchmark's courtesy, not its measurement
        pass


def drop_raw_tasks(db: Database) -> None:
    from sqlalchemy import text

    from core.db.engine import get_engine

    with get_engine(db.url).begin() as conn:
        conn.execute(text(f"DROP TABLE {RAW_TASKS}"))


# -- calls made: attempts, answers and task statuses (setup of 2 and 3) --------------------------
FAILED = ("no_answer", "busy", "powered_off", "out_of_service", "cannot_connect", "not_convenient")


def simulate_calls(db: Database, chain: Chain, n_attempts: int, seed: int, out: Results | None = None,
                   rounds: int = 1) -> dict[str, int]:
    """Attempts on every task due before REPORT_NOW (``n_attempts`` in all), answers, final statuses:
    loaded chunk by chunk by ``core.callhistory.load_attempts`` (a call-history import), each chunk
    measured against a raw load of the same rows (below), ``rounds`` times A/B, which side goes first
    alternating (all but the framework's last load rolled back), each side's median counted."""
    from sqlalchemy import text

    from core.callhistory import PastCall, load_attempts, plan_history
    from core.db import counters, rollups
    from core.db.engine import get_engine, session_scope
    from core.vocab import TREATED_TRIGGERS

    rng = random.Random(seed + 1)
    config, plugins = chain.config, chain.plugins
    bookable = {(s, p.code) for s, procs in chain.procedures.items() for p in procs if p.allows_booking}
    counts: Counter[str] = Counter()
    engine = get_engine(db.url)
    with engine.connect() as conn:
        n_due = conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'open' AND due_at < :now"),
                             {"now": REPORT_NOW.astimezone(UTC).replace(tzinfo=None)}).scalar_one()
    if not n_due:
        return dict(counts)
    base, extra = divmod(n_attempts, n_due)
    asks: dict[tuple[str, str, str, str], set[str]] = {}
    last = seen = 0
    retry_from = REPORT_NOW - timedelta(days=3)  # older failures were given up (closed as unsuccessful)
    fw_time = raw_time = plan_time = days_time = 0.0
    rounds_seen: list[dict[str, list[float]]] = []  # each load's A/B rounds, for the JSON
    chunks = 0
    while True:
        with engine.connect() as conn:
            tasks = conn.execute(text(
                "SELECT id, due_at, site, specialty, procedure, milestone, trigger FROM tasks "
                "WHERE status = 'open' AND due_at < :now AND id > :last ORDER BY id LIMIT :n"),
                {"now": REPORT_NOW.astimezone(UTC).replace(tzinfo=None), "last": last, "n": CHUNK}).all()
        if not tasks:
            break
        last = tasks[-1][0]
        calls: list[PastCall] = []
        given_up: list[int] = []
        for task_id, due, site, spec, proc, milestone, trigger in tasks:
            if isinstance(due, str):
                due = datetime.fromisoformat(due)
            due = due.replace(tzinfo=UTC)
            # base or base + 1 attempts, the extra ones spread evenly: exactly n_attempts in all
            k = base + ((seen + 1) * extra // n_due - seen * extra // n_due)
            seen += 1
            if k == 0:
                continue
            roll = rng.random()
            if roll < 0.80:
                final = "booked" if (spec, proc) in bookable and rng.random() < 0.3 else "reached"
            elif roll < 0.83:
                final = "refused"
            elif roll < 0.85:
                final = "wrong_number"
            else:
                final = rng.choice(FAILED)
            gap = min(timedelta(days=1), (REPORT_NOW - due) / (k + 1))
            for i in range(k):
                # a few minutes late, but within its share of the time: the calls stay in order and in the past
                at = due + gap * i + min(timedelta(minutes=rng.randrange(20)), gap / 2)
                outcome = final if i == k - 1 else rng.choice(FAILED)
                answers: dict[str, str] = {}
                if outcome == final and final in ("reached", "booked") and rng.random() < 0.3:
                    score = rng.choice((5, 5, 5, 4, 4, 3, 2, 1))
                    nps = rng.choice((10, 10, 9, 9, 8, 7, 6, 3))
                    key = (spec, proc, milestone, trigger)
                    if key not in asks:  # the questions this task asks (some only of treated patients)
                        asked = plugins.questions(spec, proc, milestone)
                        asks[key] = {q for q, question in asked.items()
                                     if not question.treated_only or trigger in TREATED_TRIGGERS}
                    if {"overall_satisfaction", "recommend"} <= asks[key]:
                        answers = {"overall_satisfaction": str(score), "recommend": str(nps)}
                        # free text: the report lists it
                        answers.update((q, t) for q, t in _texts(rng, site) if q in asks[key])
                calls.append(PastCall(task_id, at, f"{site.lower()}.c{1 + rng.randrange(2)}", outcome, answers))
            if final in FAILED and due < retry_from:
                given_up.append(task_id)
        t0 = time.perf_counter()
        with session_scope(db.url) as session:  # the rows the load writes, for the raw baseline
            day_rows = rollups.DayCounts(rollups.offset(session.connection()))
            plan = plan_history(session, config, plugins, calls, now=REPORT_NOW, given_up=given_up,
                                counts=day_rows)
        plan_time += time.perf_counter() - t0  # not in either time: what the framework's load spends on it
        # A/B in every chunk: the raw load of the plan's rows (then rolled back), the framework's load
        raws, fws, days = [], [], []

        def framework(commit: bool, calls: list[Any] = calls, given_up: list[int] = given_up) -> tuple[float, Any]:
            with session_scope(db.url) as session:  # timed up to the commit, as the raw load (rolled back)
                t0 = time.perf_counter()
                loaded = load_attempts(session, config, plugins, calls, user="system", now=REPORT_NOW,
                                       given_up=given_up)
                elapsed = time.perf_counter() - t0
                if not commit:
                    session.rollback()  # the same rows again into the same tables
            if not commit:
                settle_day_rows(db)
            return elapsed, loaded

        for round_ in range(rounds):
            # Which side goes first alternates (a rolled-back load leaves dead rows the next one steps over);
            # the framework's last load is kept, untimed when the raw load came after it.
            final = round_ == rounds - 1
            if (chunks + round_) % 2:
                fws.append(framework(commit=False)[0])
                raws.append(raw_history(db, plan))
                if final:
                    result = framework(commit=True)[1]
            else:
                raws.append(raw_history(db, plan))
                elapsed, result = framework(commit=final)
                fws.append(elapsed)
            days.append(day_rows_alone(db, day_rows))
            settle_day_rows(db)
        rounds_seen.append({"framework_s": [round(t, 3) for t in fws], "raw_s": [round(t, 3) for t in raws]})
        raw_time += statistics.median(raws)
        fw_time += statistics.median(fws)
        days_time += statistics.median(days)
        chunks += 1
        counts["attempts"] += result.attempts
        counts["answers"] += result.answers
        counts.update({str(k): v for k, v in result.statuses.items()})
    with engine.connect() as conn:
        differ = rollups.verify(conn)
        mismatched = counters.mismatches(conn)
    if out is not None:
        ok = not differ and not mismatched and counts["attempts"] == n_attempts
        out.add(db, "attempts", fw_time, raw_time, "COPY" if db.is_pg else "executemany",
                f"{counts['attempts']} attempts, {counts['answers']} answers of {seen} tasks in {chunks} load(s) "
                f"(each the median of {rounds} A/B round(s), the side going first alternating) "
                f"(core.callhistory.load_attempts; raw: the same rows and task updates, no day-count triggers); "
                f"of the framework's time, checking the calls and applying the rules about {_fmt(plan_time).strip()}; "
                f"the day rows alone (appended beside the day tables, added up beforehand) {_fmt(days_time).strip()}: "
                f"raw + day rows {(raw_time + days_time) / raw_time:.2f}x the raw load",
                check=ok, check_detail=f"day counts differ: {list(differ)}, task counters differ: {mismatched[:3]}")
        out.data[db.name]["attempts_load"] = {"attempts": counts["attempts"], "answers": counts["answers"],
                                              "day_counts_agree": not differ, "counters_agree": not mismatched,
                                              "plan_s": round(plan_time, 3), "day_rows_s": round(days_time, 3),
                                              "raw_plus_day_rows": round((raw_time + days_time) / raw_time, 3),
                                              "loads": rounds_seen}
    return dict(counts)


def settle_day_rows(db: Database) -> None:
    """After a rolled-back write of day rows (a framework load or :func:`day_rows_alone`): on PostgreSQL
    its dead row versions and index entries stay until vacuumed, and the next load's upserts would step
    over them, a cost only the framework pays (the raw load writes no day rows). Vacuumed, untimed.
    (Tasks, calls and answers are written by both sides: which side goes first alternates instead.)"""
    if not db.is_pg:
        return
    from sqlalchemy import create_engine

    engine = create_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM report_task_days, report_call_days, report_answer_days")
            checkpoint(conn)
    finally:
        engine.dispose()


def day_rows_alone(db: Database, day_rows: Any) -> float:
    """What writing a load's day rows costs by itself (``DayCounts.write`` as the load writes them: appended
    beside the day tables, one ``COPY`` / ``executemany`` per table, the rows added up beforehand, untimed),
    rolled back: the part of any load that keeps the day counts which no Python can save. Raw load + this
    = the floor of a load with the day counts."""
    from core.db.engine import get_engine

    with get_engine(db.url).connect() as conn:
        tx = conn.begin()
        day_rows = copy.deepcopy(day_rows)  # a write empties them: each round writes the same rows
        t0 = time.perf_counter()
        day_rows.write(conn, append=True)
        elapsed = time.perf_counter() - t0
        tx.rollback()
    return elapsed


def raw_history(db: Database, plan: Any) -> float:
    """The plan's rows loaded by the driver alone, the day-count triggers dropped: the attempts and answers
    (executemany / COPY) and the tasks' new values (a temporary table and one UPDATE). Rolled back
    afterwards (untimed), so the framework then loads the same rows into the same tables."""
    raw = Raw(db)
    try:
        raw.begin()
        if db.is_pg:
            for table in ("tasks", "attempts", "answers"):
                for event in ("ins", "upd", "del"):
                    raw.execute(f"DROP TRIGGER IF EXISTS trg_{table}_rollup_{event} ON {table}")
        else:
            for table in ("tasks", "attempts", "answers"):
                for event in ("ins", "upd", "del"):
                    raw.execute(f"DROP TRIGGER IF EXISTS trg_{table}_rollup_{event}")
        top = raw.query("SELECT COALESCE(MAX(id), 0) FROM attempts")[0][0]
        ids = range(int(top) + 1, int(top) + 1 + len(plan.attempts))
        # the plan's rows are in the driver's values already (instants, booleans, answers as JSON text)
        attempts = [(i, task_id, at, site, by, outcome, note, None, counted, "phone", None)
                    for i, (task_id, at, site, by, outcome, note, counted) in zip(ids, plan.attempts, strict=True)]
        answers = [(task_id, ids[index], question, dim, value, number)
                   for index, task_id, question, dim, value, number in plan.answers]
        updates = list(plan.tasks)
        upd_cols = ["id", "status", "attempts", "failed_attempts", "attempts_logged", "next_attempt_at",
                    "completed_at", "booked_at"]
        t0 = time.perf_counter()
        raw.execute("CREATE TEMP TABLE bench_history (id INTEGER PRIMARY KEY, status VARCHAR(20), attempts INTEGER, "
                    "failed_attempts INTEGER, attempts_logged INTEGER, next_attempt_at TIMESTAMP, "
                    "completed_at TIMESTAMP, booked_at TIMESTAMP)")
        raw.load("attempts", ["id", "task_id", "at", "site", "by", "outcome", "note", "callback_at", "counted",
                              "channel", "recording"], attempts)
        raw.load("answers", ["task_id", "attempt_id", "question", "dimension", "value", "number"], answers)
        raw.load("bench_history", upd_cols, updates)
        raw.execute(
            "UPDATE tasks SET status = u.status, attempts = u.attempts, failed_attempts = u.failed_attempts, "
            "attempts_logged = u.attempts_logged, "
            "next_attempt_at = COALESCE(u.next_attempt_at, tasks.next_attempt_at), "
            "completed_at = COALESCE(u.completed_at, tasks.completed_at), "
            "booked_at = COALESCE(u.booked_at, tasks.booked_at), claimed_until = NULL, updated_at = ? "
            "FROM bench_history AS u WHERE tasks.id = u.id", [REPORT_NOW])
        elapsed = time.perf_counter() - t0
    finally:
        if db.is_pg:
            raw.conn.rollback()
        else:
            raw.conn.execute("ROLLBACK")
        raw.close()
    return elapsed


TEXT_ANSWERS = (  # (question, chance, texts): praise and criticism name staff; a suggestion may hold a phone
    ("staff_praise", 0.4, ("Dr {site}-{n}", "{site}-{n}号医生", "前台小{n}")),
    ("staff_criticism", 0.1, ("Dr {site}-{n}", "护士{n}")),
    ("suggestions", 0.25, ("停车位太少", "希望周末也能复诊", "请改用微信联系 1380013{n}000", "  等候时间太长  ")),
    ("interruption_reason", 0.02, ("cost", "time", "fear", "result", "other")),
)


def _texts(rng: random.Random, site: str) -> list[tuple[str, str]]:
    return [(question, rng.choice(texts).format(site=site, n=1 + rng.randrange(5)))
            for question, chance, texts in TEXT_ANSWERS if rng.random() < chance]


# -- 2. worklist -----------------------------------------------------------------------------------
WORKLIST_SQL = """
SELECT t.id, p.external_id, t.urgency, t.window_end, t.next_attempt_at, t.due_at, t.assignee, t.claimed_until,
       t.milestone, t.procedure, t.attempts, p.name, p.phone
FROM tasks t JOIN patients p ON p.id = t.patient_id
WHERE t.site = ? AND t.status = 'open' AND t.window_start < ? AND t.next_attempt_at < ?
  AND p.do_not_contact = ?
ORDER BY t.next_attempt_at, t.id
"""


def ab_medians(framework: Callable[[], Any], baseline: Callable[[], Any], repeat: int
               ) -> tuple[float, Any, float, Any]:
    """Framework and baseline alternately (A/B/A/B, after one warm-up each): a busy machine slows both
    alike, instead of one of them minutes later. Returns each one's median time and last result."""
    fw_result, raw_result = framework(), baseline()
    fw_times, raw_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fw_result = framework()
        t1 = time.perf_counter()
        raw_result = baseline()
        t2 = time.perf_counter()
        fw_times.append(t1 - t0)
        raw_times.append(t2 - t1)
    return statistics.median(fw_times), fw_result, statistics.median(raw_times), raw_result


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up: statement caches, page cache
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure_worklist(db: Database, chain: Chain, out: Results, repeat: int) -> None:
    """Both sides on an open connection: the framework's session, like the raw one, is opened once."""
    from sqlalchemy.orm import Session

    from core.db.engine import get_engine
    from core.worklist import end_of_day, worklist

    config = chain.config
    raw = Raw(db)
    session = Session(get_engine(db.url))
    try:
        cutoff = end_of_day(WORKLIST_DAY, TZ)
        site = raw.query(
            "SELECT site FROM tasks WHERE status = 'open' AND next_attempt_at < ? "
            "GROUP BY site ORDER BY count(*) DESC, site LIMIT 1", [cutoff])
        code = site[0][0] if site else next(iter(config.sites))

        def framework() -> Any:
            return worklist(session, config, day=WORKLIST_DAY, now=REPORT_NOW, sites=[code])

        if db.is_pg:
            # The best plan for the hand-written query: a generic one (the custom plan PostgreSQL picks for
            # the first executions hashes every patient), prepared once like the framework's statements.
            raw.execute("SET plan_cache_mode = force_generic_plan")
            # and no parallel workers: at a million tasks the generic plan gathers one or two, milliseconds to
            # start them for 130 rows (a merge dropped this setting once: the baseline took 26 ms, not 1-2 ms)
            raw.execute("SET max_parallel_workers_per_gather = 0")

        def baseline() -> Any:
            if db.is_pg:
                cur = raw.conn.cursor()
                cur.execute(WORKLIST_SQL.replace("?", "%s"), [raw.value(p) for p in (code, cutoff, cutoff, False)],
                            prepare=True)
                rows = cur.fetchall()
                cur.close()
                return rows
            return raw.query(WORKLIST_SQL, [code, cutoff, cutoff, False])

        fw_time, lines, raw_time, rows = ab_medians(framework, baseline, repeat)
    finally:
        session.close()
        if db.is_pg:
            raw.execute("RESET plan_cache_mode")
            raw.execute("RESET max_parallel_workers_per_gather")
            raw.commit()
        raw.close()
    expected: dict[str, list[int]] = defaultdict(list)
    for task_id, ext_id, *_ in rows:
        expected[ext_id].append(task_id)
    got = {line.patient_id: line.task_ids for line in lines}
    ok = got == dict(expected)
    out.add(db, "worklist", fw_time, raw_time, "indexed SQL",
            f"site {code} on {WORKLIST_DAY}: {len(lines)} calls, {len(rows)} tasks (median of {repeat})",
            check=ok, check_detail=f"lines={len(got)} expected={len(expected)}")
    out.data[db.name]["worklist_rows"] = {"site": code, "lines": len(lines), "tasks": len(rows), "equal": ok}


# -- 3. report -------------------------------------------------------------------------------------
def report_sql(db: Database, scope: Any, period: Any, now: datetime) -> list[tuple[str, str, list[Any]]]:
    """Every figure and list ``build_report`` gives, as hand-written SQL: (section, SQL, parameters).

    What the best hand-written report would read, on the same tables and indexes: the figures
    from the per-day counts (core/db/rollups.py keeps them; a day is the chain's local date), the
    sales leads, interruption reasons, sweep and greetings from their partial indexes (their
    predicates stated), the lists and the other follow-up figures from the rows.
    The statements are written once, untimed; the baseline runs them and fetches every row.
    """
    from core.db import rollups
    from core.db.models import LEADS_PREDICATE
    from core.reports import queries as q
    from core.vocab import UNREACHABLE_OUTCOMES, sql_in

    pg = db.is_pg
    sites = "(" + ", ".join("?" for _ in scope.sites) + ")"
    codes = list(scope.sites)
    before = period.previous()
    end = min(period.end, now) if period.start <= now else period.end
    day = lambda instant: instant.astimezone(period.tz).date()  # noqa: E731 - the day counts' day
    days = [day(before.start), day(period.start), day(end)]
    hours = ("extract(epoch FROM max(last_at) - min(first_at)) / 3600.0" if pg
             else "(julianday(max(last_at)) - julianday(min(first_at))) * 24.0")
    text = "trim(an.value #>> '{}')" if pg else "trim(json_extract(an.value, '$'))"
    pairs = " OR ".join("(specialty = ? AND procedure = ?)" for _ in scope.sales_procedures) or "1 = 0"
    pair_values = [v for pair in scope.sales_procedures for v in pair]
    questions = sorted({q.OVERALL, q.RECOMMEND, *(k for keys in scope.scale_questions.values() for k in keys)})
    marks = lambda values: "(" + ", ".join("?" for _ in values) + ")"  # noqa: E731
    answered, reached = sql_in(rollups.ANSWERED), sql_in(rollups.REACHED)
    not_due = sql_in(rollups.NOT_DUE)

    def texts(questions: str, join: str = "") -> str:
        return f"""
            FROM attempts a JOIN answers an ON an.attempt_id = a.id JOIN tasks t ON t.id = an.task_id {join}
            WHERE a.at >= ? AND a.at < ? AND a.site IN {sites} AND a.outcome IN {answered}
              AND an.question IN {questions} AND {text} <> ''"""

    def with_parts(table: str, where: str) -> str:
        """A day table's rows and those bulk loads appended beside it (migration 0019): a report adds up both."""
        rollup = next(r for r in rollups.ROLLUPS if r.table == table)
        names = ", ".join(f'"{c}"' for c in rollup.columns)
        return (f"(SELECT {names} FROM {table} WHERE {where} "
                f"UNION ALL SELECT {names} FROM {rollup.parts} WHERE {where}) AS days")

    in_period = [period.start, period.end]
    if pg:  # each unreachable task's latest call by its index, not a hash of every attempt
        last = ("LEFT JOIN LATERAL (SELECT outcome, at FROM attempts WHERE task_id = t.id ORDER BY id DESC LIMIT 1) "
                "l ON true")
    else:
        last = "LEFT JOIN attempts l ON l.id = (SELECT max(id) FROM attempts WHERE task_id = t.id)"
    return [
        ("task days", f"""
            SELECT CASE WHEN day < ? THEN 0 ELSE 1 END, site, sum(due), sum(attempted), sum(reached),
                   sum(reached_in_window), sum(unsuccessful), sum(refused), sum(wrong_number), sum(open),
                   sum(reached_attempts)
            FROM {with_parts("report_task_days", f"day >= ? AND day < ? AND site IN {sites}")} GROUP BY 1, 2""",
         [days[1], *[days[0], days[2], *codes] * 2]),
        ("leads", f"""
            SELECT CASE WHEN due_at < ? THEN 0 ELSE 1 END, site, count(DISTINCT episode_id),
                   count(DISTINCT CASE WHEN attempts_logged > 0 THEN episode_id END),
                   count(DISTINCT CASE WHEN status = 'booked' THEN episode_id END)
            FROM tasks WHERE {LEADS_PREDICATE} AND ({pairs}) AND due_at >= ? AND due_at < ?
              AND status NOT IN {not_due} AND site IN {sites} GROUP BY 1, 2""",
         [period.start, *pair_values, before.start, end, *codes]),
        ("answer days", f"""
            SELECT CASE WHEN day < ? THEN 0 ELSE 1 END, site, specialty, question, dimension, sum(n), sum(total),
                   sum(top2), sum(promoters), sum(detractors)
            FROM {with_parts("report_answer_days",
                             f"day >= ? AND day < ? AND site IN {sites} AND question IN {marks(questions)}")}
            GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) > 0""",
         [days[1], *[days[0], days[2], *codes, *questions] * 2]),
        ("texts", f"""
            SELECT an.question, an.task_id, a.at, t.site, {text}, p.external_id, p.name, p.phone
            {texts("('suggestions')", "JOIN patients p ON p.id = t.patient_id")}
            ORDER BY a.at, an.task_id""",
         [*in_period, *codes]),
        ("staff", f"""
            SELECT {text}, sum(CASE WHEN an.question = 'staff_praise' THEN 1 ELSE 0 END),
                   sum(CASE WHEN an.question = 'staff_criticism' THEN 1 ELSE 0 END)
            {texts("('staff_praise', 'staff_criticism')")}
            GROUP BY 1""",
         [*in_period, *codes]),
        ("coordinators", f"""
            SELECT "by", sum(attempts), sum(reached), sum(CASE WHEN span > 1.0 THEN span ELSE 1.0 END)
            FROM (SELECT "by", day, sum(attempts) AS attempts, sum(reached) AS reached, {hours} AS span
                  FROM {with_parts("report_call_days", f"day >= ? AND day < ? AND site IN {sites}")}
                  GROUP BY "by", day HAVING sum(attempts) > 0) AS d
            GROUP BY "by" ORDER BY 2 DESC, 1""",
         [*[days[1], day(period.end), *codes] * 2]),
        ("qa", f"""
            SELECT a."by", count(*), avg(r.score) FROM qa_reviews r JOIN attempts a ON a.id = r.attempt_id
            WHERE a.at >= ? AND a.at < ? AND a.site IN {sites} GROUP BY 1""",
         [*in_period, *codes]),
        ("complaints", f"""
            SELECT count(*), sum(CASE WHEN responded_at IS NOT NULL AND responded_at <= due_at THEN 1 ELSE 0 END),
                   sum(CASE WHEN status <> 'closed' AND responded_at IS NULL AND due_at < ? THEN 1 ELSE 0 END),
                   sum(CASE WHEN status = 'closed' THEN 1 ELSE 0 END)
            FROM complaints WHERE opened_at >= ? AND opened_at < ? AND site IN {sites}""",
         [now, *in_period, *codes]),
        ("complaint categories", f"""
            SELECT category, categories FROM complaints WHERE opened_at >= ? AND opened_at < ? AND site IN {sites}""",
         [*in_period, *codes]),
        ("escalations", f"""
            SELECT count(*), sum(CASE WHEN resolved_at IS NOT NULL THEN 1 ELSE 0 END),
                   sum(CASE WHEN status <> 'resolved' AND due_at IS NOT NULL AND due_at < ? THEN 1 ELSE 0 END)
            FROM escalations WHERE opened_at >= ? AND opened_at < ? AND site IN {sites}""",
         [now, *in_period, *codes]),
        ("escalation spans", f"""
            SELECT opened_at, resolved_at FROM escalations
            WHERE opened_at >= ? AND opened_at < ? AND site IN {sites} AND resolved_at IS NOT NULL""",
         [*in_period, *codes]),
        ("channels", f"""
            SELECT channel, sum(CASE WHEN sent_at >= ? AND sent_at < ? THEN 1 ELSE 0 END),
                   sum(CASE WHEN delivered_at >= ? AND delivered_at < ? THEN 1 ELSE 0 END),
                   sum(CASE WHEN status = 'failed' AND queued_at >= ? AND queued_at < ? THEN 1 ELSE 0 END),
                   sum(CASE WHEN answered_at >= ? AND answered_at < ? THEN 1 ELSE 0 END)
            FROM outbox WHERE site IN {sites} GROUP BY channel ORDER BY channel""",
         [*in_period * 4, *codes]),
        ("interruptions", f"""
            SELECT t.site, t.specialty, an.value FROM answers an JOIN attempts a ON a.id = an.attempt_id
            JOIN tasks t ON t.id = an.task_id
            WHERE {q.INTERRUPTIONS_PREDICATE} AND a.at >= ? AND a.at < ? AND t.site IN {sites}""",
         [*in_period, *codes]),
        ("bookings", f"""
            SELECT site, specialty, count(*) FROM tasks
            WHERE status = 'booked' AND completed_at >= ? AND completed_at < ? AND NOT {LEADS_PREDICATE}
              AND site IN {sites} GROUP BY 1, 2 ORDER BY 1, 2""",
         [*in_period, *codes]),
        ("referrals", f"""
            SELECT site, kind, count(*) FROM referrals WHERE at >= ? AND at < ? AND site IN {sites} GROUP BY 1, 2""",
         [*in_period, *codes]),
        ("referrers", f"""
            SELECT p.external_id, p.name, r.kind, count(*) FROM referrals r JOIN patients p ON p.id = r.referrer_id
            WHERE r.at >= ? AND r.at < ? AND r.site IN {sites} GROUP BY 1, 2, 3""",
         [*in_period, *codes]),
        ("sweep", f"""
            SELECT site, count(*), sum(CASE WHEN status IN {reached} THEN 1 ELSE 0 END) FROM tasks
            WHERE swept_at >= ? AND swept_at < ? AND site IN {sites} GROUP BY 1 ORDER BY 1""",
         [*in_period, *codes]),
        ("greetings", f"""
            SELECT count(*), sum(CASE WHEN status IN {reached} THEN 1 ELSE 0 END) FROM tasks
            WHERE purpose = 'greeting' AND due_at >= ? AND due_at < ? AND status <> 'cancelled'
              AND site IN {sites}""",
         [*in_period, *codes]),
        ("unreachable", f"""
            SELECT t.id, t.site, t.specialty, t.procedure, t.milestone, t.due_at, t.status, t.attempts,
                   p.external_id, p.name, p.phone, l.outcome, l.at
            FROM tasks t JOIN patients p ON p.id = t.patient_id {last}
            WHERE t.due_at >= ? AND t.due_at < ? AND t.status IN ('unsuccessful', 'open') AND t.attempts > 0
              AND t.site IN {sites} AND (t.status = 'unsuccessful' OR l.outcome IN {sql_in(UNREACHABLE_OUTCOMES)})
            ORDER BY t.site, t.due_at, t.id""",
         [period.start, end, *codes]),
        ("open complaints", f"""
            SELECT c.id, c.task_id, c.site, c.category, c.status, c.opened_at, c.due_at, c.description,
                   p.external_id, p.name, p.phone
            FROM complaints c JOIN patients p ON p.id = c.patient_id
            WHERE c.status <> 'closed' AND c.opened_at < ? AND c.site IN {sites} ORDER BY c.due_at, c.id""",
         [period.end, *codes]),
        ("open escalations", f"""
            SELECT e.id, e.task_id, e.site, e.severity, e.status, e.opened_at, e.due_at, e.reason,
                   p.external_id, p.name, p.phone
            FROM escalations e JOIN patients p ON p.id = e.patient_id
            WHERE e.status <> 'resolved' AND e.opened_at < ? AND e.site IN {sites} ORDER BY e.due_at, e.id""",
         [period.end, *codes]),
    ]


def report_from_sql(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """What the hand-written rows say the report must show, in the shape ``report_view`` gives (untimed)."""
    from core.privacy import mask_phone, scrub_phones
    from core.reports.queries import COUNTS

    figures: dict[int, Counter[str]] = {0: Counter(), 1: Counter()}
    per_site: Counter[tuple[str, str]] = Counter()
    for bucket, site, *values in rows["task days"]:
        for name, value in zip(COUNTS, values, strict=False):  # not the last: the attempts of the reached
            figures[bucket][name] += int(value or 0)
            if bucket == 1 and name in ("due", "reached"):
                per_site[site, name] += int(value or 0)
    for bucket, _, *values in rows["leads"]:  # the report shows this period's
        for name, value in zip(("leads", "followed_up", "booked"), values, strict=True):
            figures[bucket][name] += int(value or 0) if bucket == 1 else 0
    for bucket, _, _, question, _, n, *_ in rows["answer days"]:
        if question in ("overall_satisfaction", "recommend"):
            figures[bucket]["satisfaction_n" if question == "overall_satisfaction" else "nps_n"] += int(n)
    return {
        "figures": {k: dict(v) for k, v in figures.items()},
        "sites": {k: v for k, v in per_site.items() if v},
        "staff": sorted(((scrub_phones(t), int(p), int(c)) for t, p, c in rows["staff"]),
                        key=lambda r: (-r[1], -r[2], r[0])),
        "suggestions": [(task_id, ext, scrub_phones(text)) for _, task_id, _, _, text, ext, _, _ in rows["texts"]],
        "coordinators": [(by, int(n), int(reached), float(h)) for by, n, reached, h in rows["coordinators"]],
        "unreachable": [(r[0], r[8], mask_phone(r[10]), r[6], int(r[7]), r[11]) for r in rows["unreachable"]],
        "complaints": int(rows["complaints"][0][0] or 0),
        "escalations": int(rows["escalations"][0][0] or 0),
        "open": (len(rows["open complaints"]), len(rows["open escalations"])),
        "followups": (len(rows["interruptions"]), sum(int(r[2]) for r in rows["bookings"]),
                      sum(int(r[2]) for r in rows["referrals"]), sum(int(r[1]) for r in rows["sweep"]),
                      int(rows["greetings"][0][0] or 0)),
    }


def report_view(report: dict[str, Any]) -> dict[str, Any]:
    """The same from the report itself."""
    from core.reports.queries import COUNTS

    names = (*COUNTS, "satisfaction_n", "nps_n")
    sales = ("leads", "followed_up", "booked")

    f = report["followups"]
    return {
        "figures": {1: {**{n: report["figures"][n] for n in names}, **{n: report["sales"][n] for n in sales}},
                    0: {**{n: report["previous"][n] for n in names}, **dict.fromkeys(sales, 0)}},
        "sites": {(r["key"], n): r[n] for r in report["sites"] for n in ("due", "reached") if r[n]},
        "staff": [(r["staff"], r["praise"], r["criticism"]) for r in report["staff"]],
        "suggestions": [(r["task_id"], r["patient_id"], r["text"]) for r in report["lists"]["suggestions"]],
        "coordinators": [(r["coordinator"], r["attempts"], r["reached"], r["calling_hours"])
                         for r in report["coordinators"]],
        "unreachable": [(r["task_id"], r["patient_id"], r["phone"], r["status"], r["attempts"], r["last_outcome"])
                        for r in report["lists"]["unreachable"]],
        "complaints": report["complaints"]["opened"],
        "escalations": report["escalations"]["opened"],
        "open": (len(report["lists"]["open_complaints"]), len(report["lists"]["open_escalations"])),
        "followups": (f["interruptions"]["answered"], f["bookings"]["reviews_booked"], f["referrals"]["accepted"]
                      + f["referrals"]["referred"], f["sweep"]["swept"], f["greetings"]["due"]),
    }


def _same(got: Any, expected: Any) -> bool:
    """Equal; a float (calling hours, sums of spans added up in another order, rounded) to 0.01."""
    if isinstance(got, list | tuple) and isinstance(expected, list | tuple):
        return len(got) == len(expected) and all(_same(a, b) for a, b in zip(got, expected, strict=True))
    if isinstance(got, float) or isinstance(expected, float):
        return abs(got - expected) <= 0.0100001
    return bool(got == expected)


def _difference(name: str, got: Any, expected: Any) -> str:
    """Where the report and the hand-written SQL first differ."""
    if isinstance(got, list) and isinstance(expected, list):
        at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if not _same(a, b)), None)
        if at is not None:
            return f"{name}[{at}]: report {got[at]!r} sql {expected[at]!r}"
        return f"{name}: {len(got)} in the report, {len(expected)} by SQL"
    return f"{name}: report {got!r:.400} sql {expected!r:.400}"


def measure_report(db: Database, chain: Chain, out: Results, repeat: int) -> None:
    """``build_report`` for a month against the hand-written SQL of every section it shows (``report_sql``),
    alternately; check: the same figures and lists."""
    from core.db.engine import session_scope
    from core.reports import ReportRequest, build_report, parse_period, scope_from_plugins

    config, plugins = chain.config, chain.plugins
    codes = list(config.sites)
    period = parse_period(REPORT_PERIOD, TZ)
    scope = scope_from_plugins(plugins, codes, None)
    request = ReportRequest(period=period, scope=scope, by=None, locale="en", now=REPORT_NOW)

    def framework() -> Any:
        with session_scope(db.url) as session:
            return build_report(session, config, plugins, request)

    raw = Raw(db)
    statements = [(name, sql, [raw.value(v) for v in params])
                  for name, sql, params in report_sql(db, scope, period, REPORT_NOW)]

    def baseline() -> dict[str, list[tuple[Any, ...]]]:
        rows = {}
        cur = raw.conn.cursor()
        for name, sql, params in statements:
            cur.execute(sql.replace("?", raw.mark), params)
            rows[name] = cur.fetchall()
        cur.close()
        raw.commit() if db.is_pg else None
        return rows

    try:
        fw_time, report, raw_time, rows = ab_medians(framework, baseline, repeat)
    finally:
        raw.close()
    got, expected = report_view(report), report_from_sql(rows)
    differ = sorted(k for k in expected if not _same(got[k], expected[k]))
    ok = not differ
    figures = got["figures"][1]
    out.add(db, "report", fw_time, raw_time, f"{len(statements)} SQL",
            f"{REPORT_PERIOD}: due {figures['due']}, attempted {figures['attempted']}, reached {figures['reached']}; "
            f"unreachable {len(got['unreachable'])}, suggestions {len(got['suggestions'])}, staff {len(got['staff'])}, "
            f"coordinators {len(got['coordinators'])} (median of {repeat})",
            check=ok, check_detail="differ: " + "; ".join(_difference(k, got[k], expected[k]) for k in differ))
    out.data[db.name]["report_rows"] = {"equal": ok, "differ": differ, "due": figures["due"],
                                        "reached": figures["reached"], "unreachable": len(got["unreachable"]),
                                        "suggestions": len(got["suggestions"]), "staff": len(got["staff"])}

    # The HTML report also draws the six-period trend: five more months of tasks and calls.
    html = dataclasses.replace(request, trend=6)

    def with_trend() -> Any:
        with session_scope(db.url) as session:
            return build_report(session, config, plugins, html)

    trend_time, trended = median_time(with_trend, repeat)
    same = trended["figures"] == report["figures"] and trended["trend"][-1]["due"] == figures["due"]
    out.emit(f"report    {db.name:<10} with the 6-period trend (html) {_fmt(trend_time)}   "
             f"ratio {trend_time / raw_time:5.2f} (no goal)   {'' if same else 'CHECK FAILED '}")
    out.checks.append((db.name, "report trend", same, "figures with and without the trend"))
    out.data[db.name]["report_html_trend"] = {"framework_s": round(trend_time, 6),
                                              "ratio": round(trend_time / raw_time, 3), "check": same}


# -- 4. CLI start-up ----------------------------------------------------------------------------------
def measure_help(out: Results, repeat: int = 9) -> None:
    exe = Path(sys.executable).parent / "followup"
    help_cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "core.cli.main", "--help"]

    def wall(cmd: list[str]) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    wall([sys.executable, "-c", "pass"])  # warm the file cache
    python = wall([sys.executable, "-c", "pass"])
    followup = wall(help_cmd)
    ms = followup * 1000
    ok = ms < HELP_GOAL_MS
    line = (f"help      followup --help {ms:8.1f} ms   python -c pass {python * 1000:8.1f} ms   "
            f"ratio {followup / python:5.2f}   goal < {HELP_GOAL_MS:.0f} ms {'ok' if ok else 'MISSED'}")
    out.emit(line)
    out.data["help"] = {"followup_ms": round(ms, 1), "python_ms": round(python * 1000, 1), "goal_met": ok}


# -- 5. concurrent claims ------------------------------------------------------------------------------
def _reset_claims(db: Database) -> None:
    """Every task free again, no claim audit rows, dead row versions vacuumed: each drain starts alike."""
    from sqlalchemy import text

    from core.db.engine import get_engine
    from core.db.uow import outside

    with get_engine(db.url).begin() as conn, outside(conn):  # a benchmark's reset, not a writer
        conn.execute(text("UPDATE tasks SET assignee = NULL, claimed_until = NULL WHERE assignee IS NOT NULL"))
        conn.execute(text("DELETE FROM audit_log WHERE action = 'claim'"))
    analyze(db)
    get_engine(db.url).dispose()  # the children connect on their own


def _drain(db: Database, chain_yaml: Path, kind: str, workers: int, per_claim: int) -> dict[str, Any]:
    """``workers`` processes (spawned: real parallelism, no shared interpreter lock) claim until nothing is
    left; claims per second from the moment all were ready to the last one's finish."""
    import multiprocessing

    from benchmarks.claimers import run as claimer

    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1, timeout=600), ctx.Queue()
    procs = [ctx.Process(target=claimer, args=(kind, db.url, str(chain_yaml), f"bench{i}", per_claim,
                                               CLAIM_NOW.isoformat(), barrier, out)) for i in range(workers)]
    for proc in procs:
        proc.start()
    errors: list[str] = []
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        errors.append("a claimer failed before the start")
    t0 = time.monotonic()
    results = [out.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    errors += [ids[0] for _, n, ids, _ in results if n < 0]
    every = [t for _, n, ids, _ in results if n >= 0 for t in ids]
    elapsed = max(end for *_, end in results) - t0
    claims = sum(n for _, n, _, _ in results if n > 0)
    return {"kind": kind, "workers": workers, "claims": claims, "tasks": len(every),
            "doubles": len(every) - len(set(every)), "seconds": round(elapsed, 3),
            "claims_per_s": round(claims / elapsed, 1) if elapsed > 0 else 0.0, "errors": errors}


def measure_claims(db: Database, chain: Chain, chain_yaml: Path, out: Results, n_tasks: int, seed: int, *,
                   workers: int = 8, per_claim: int = 5, rounds: int = 2) -> None:
    """``followup claim``'s claims against a plain SKIP LOCKED queue taking as many patients per claim,
    both drained by the same number of processes in the same run, alternately (A/B/A/B); the framework
    also with 1 and 4 processes (more claimers must not mean fewer claims)."""
    from sqlalchemy import text

    from core.db.engine import get_engine, session_scope
    from core.scheduling import schedule

    populate(db, chain, n_tasks, seed + 7, dnc_rate=0.0)
    with session_scope(db.url) as session:
        schedule(session, chain.config, chain.plugins, SCHEDULE_NOW)
    analyze(db)
    with get_engine(db.url).connect() as conn:
        open_tasks = conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'open'")).scalar_one()
    plan = [("framework", 1), ("framework", 4)] if db.is_pg else [("framework", 1)]
    plan += [("framework", workers), ("queue", workers)] * rounds
    runs: list[dict[str, Any]] = []
    for kind, n in plan:
        _reset_claims(db)
        run = _drain(db, chain_yaml, kind, n, per_claim)
        with get_engine(db.url).connect() as conn:
            run["left"] = conn.execute(text(
                "SELECT count(*) FROM tasks WHERE status = 'open' AND assignee IS NULL")).scalar_one()
        runs.append(run)
        out.emit(f"claims    {db.name:<10} {kind:<9} {n} processes: {run['claims']} claims of {per_claim} "
                 f"patients, {run['tasks']}/{open_tasks} tasks in {run['seconds']:.2f} s = "
                 f"{run['claims_per_s']:.0f} claims/s, double claims {run['doubles']}, left {run['left']}"
                 f"{'' if not run['errors'] else ', errors: ' + run['errors'][0]}")

    def rate(kind: str, n: int) -> float:
        return statistics.median(r["claims_per_s"] for r in runs if r["kind"] == kind and r["workers"] == n)

    framework, queue = rate("framework", workers), rate("queue", workers)
    fw_runs = [r for r in runs if r["kind"] == "framework"]
    ok = all(r["doubles"] == 0 and r["left"] == 0 and not r["errors"] and r["tasks"] == open_tasks for r in runs)
    rising = not db.is_pg or rate("framework", 4) >= rate("framework", 1)
    scaling = " -> ".join(f"{n}: {rate('framework', n):.0f}/s" for n in sorted({r["workers"] for r in fw_runs}))
    # As the other lines: the framework's time per claim over the baseline's (queue rate / framework rate).
    out.add(db, "claims", 1 / framework if framework else math.inf, 1 / queue if queue else 0.0,
            f"SKIP LOCKED queue ({queue:.0f}/s)",
            f"{workers} processes, {per_claim} patients per claim: {framework:.0f} claims/s; by processes {scaling}"
            f"{'' if rising else ' (FALLS from 1 to 4)'} (median of {rounds})",
            check=ok, check_detail=f"runs={runs}")  # rising is a goal, like the ratio: printed, not checked
    out.data[db.name]["claims"] = {"tasks": open_tasks, "per_claim": per_claim, "runs": runs,
                                   "framework_claims_per_s": framework, "queue_claims_per_s": queue}


# -- 6. what the day counts cost a write --------------------------------------------------------------------
RECORD_GOAL = 1.2


def run_records(db: Database, chain: Chain, out: Results, n: int, seed: int) -> None:
    """:func:`measure_records` on a database of its own: ``2 n`` open tasks (no do-not-contact), each
    recorded once, half of them with the day-count triggers and half without."""
    from core.db.engine import session_scope
    from core.scheduling import schedule

    populate(db, chain, 2 * n + 100, seed + 11, dnc_rate=0.0)
    with session_scope(db.url) as session:
        schedule(session, chain.config, chain.plugins, SCHEDULE_NOW)
    analyze(db)
    measure_records(db, chain, out, n)


def measure_records(db: Database, chain: Chain, out: Results, n: int, block: int = 250) -> None:
    """``record_call`` (no_answer, one transaction each, as ``followup record``) ``n`` times with the
    day-count triggers and ``n`` times without, in alternating blocks on different open tasks."""
    from sqlalchemy import text

    from core.calls import record_call
    from core.db import rollups
    from core.db.engine import get_engine, session_scope

    _reset_claims(db)
    engine = get_engine(db.url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM tasks WHERE status = 'open' AND channel = 'phone' ORDER BY id LIMIT :n"), {"n": 2 * n})]
    n = len(ids) // 2
    block = max(1, min(block, n // 2))
    if n < 2:
        out.emit(f"writes    {db.name:<10} skipped: {len(ids)} open tasks, fewer than two blocks of {block}")
        return
    times = {True: 0.0, False: 0.0}
    done = {True: 0, False: 0}
    at = CLAIM_NOW
    for start in range(0, 2 * n - 2 * block + 1, 2 * block):
        for counted in (True, False):
            chunk = ids[start + (0 if counted else block):start + (block if counted else 2 * block)]
            if not counted:
                with engine.begin() as conn:
                    rollups.drop_triggers(conn)
            t0 = time.perf_counter()
            for task_id in chunk:
                with session_scope(db.url) as session:
                    record_call(session, chain.config, chain.plugins, task_id, outcome="no_answer",
                                user="bench0", now=at)
            times[counted] += time.perf_counter() - t0
            done[counted] += len(chunk)
            if not counted:
                with engine.begin() as conn:
                    rollups.create_triggers(conn)
    with engine.begin() as conn:
        rollups.rebuild(conn)
    per = {k: times[k] / done[k] for k in times}
    ratio = per[True] / per[False]
    out.emit(f"writes    {db.name:<10} record x{done[True]} with day counts {per[True] * 1000:7.2f} ms each, "
             f"x{done[False]} without {per[False] * 1000:7.2f} ms   ratio {ratio:5.2f}   "
             f"goal <= {RECORD_GOAL:g}x {'ok' if ratio <= RECORD_GOAL else 'MISSED'}   "
             f"(blocks of {block}, alternating)")
    out.data[db.name]["record"] = {"n": done[True], "with_ms": round(per[True] * 1000, 3),
                                   "without_ms": round(per[False] * 1000, 3), "ratio": round(ratio, 3)}


# -- 6. everyday commands (benchmarks/cli.py) ---------------------------------------------------------
def measure_cli(out: Results, rounds: int) -> None:
    from benchmarks import cli

    with tempfile.TemporaryDirectory(prefix="followup-cli-") as tmp:
        times = cli.measure(rounds, Path(tmp))
    lines, ratios = cli.report(times)
    for line in lines:
        out.emit(line)
    worst = max(ratios.values())
    out.ratios.setdefault("cli", {})["cli"] = worst
    out.checks.append(("cli", "cli", True, ""))
    out.data["cli"] = {"cpu_s": {k: statistics.median(v) for k, v in times.items()}, "ratios": ratios}


# -- 8. import: a HIS export of patients and episodes on each database --------------------------------
IMPORT_NOW = SCHEDULE_NOW
IMPORT_PATIENTS = ("patient_id", "name", "gender", "birth_date", "phone", "site", "locale", "do_not_contact")
IMPORT_EPISODES = ("episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at", "doctor",
                   "department")


@dataclass
class ImportFiles:
    """The export (patients.csv, episodes.csv) and the same rows as the tables store them."""

    patients_csv: Path
    episodes_csv: Path
    patients: list[dict[str, Any]]
    episodes: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(self.patients) + len(self.episodes)


def write_import_files(chain: Chain, folder: Path, n_tasks: int, seed: int, limit: int | None) -> ImportFiles:
    """Patients and episodes of the synthetic chain (those of ``n_tasks`` tasks, at most ``limit``
    episodes) as two CSV files with canonical headers, and as table rows for the raw load."""
    import csv

    from core.importing import Columns

    attributes = Columns.of_plugins(chain.plugins).attributes
    patients: list[dict[str, Any]] = []
    episodes: list[dict[str, Any]] = []
    for chunk_patients, chunk_episodes, _ in generate(chain, n_tasks, random.Random(seed + 13)):
        patients += chunk_patients
        episodes += chunk_episodes
        if limit is not None and len(episodes) >= limit:
            break
    if limit is not None:
        episodes = episodes[:limit]
        used = {e["patient_id"] for e in episodes}
        patients = [p for p in patients if p["id"] in used]
    external = {p["id"]: p["external_id"] for p in patients}
    for p in patients:  # what an import stores beside the file's columns
        p["dnc_reason"] = "import" if p["do_not_contact"] else None
        p["created_at"] = p["updated_at"] = IMPORT_NOW
    for e in episodes:
        e["created_at"] = IMPORT_NOW
    folder.mkdir(parents=True, exist_ok=True)
    patients_csv, episodes_csv = folder / "patients.csv", folder / "episodes.csv"
    with patients_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(IMPORT_PATIENTS)
        writer.writerows(
            (p["external_id"], p["name"], p["gender"], p["birth_date"].isoformat(), p["phone"], p["site"],
             p["locale"], "yes" if p["do_not_contact"] else "")
            for p in patients)
    with episodes_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(IMPORT_EPISODES + tuple(a.key for a in attributes))
        for e in episodes:
            flags = e["attributes"]
            writer.writerow(
                (e["external_id"], external[e["patient_id"]], e["site"], e["specialty"], e["procedure"],
                 e["occurred_at"].strftime("%Y-%m-%d %H:%M"), e["doctor"], e["department"])
                + tuple(("yes" if flags[a.key] else "no") if a.key in flags else "" for a in attributes))
    return ImportFiles(patients_csv, episodes_csv, patients, episodes)


def import_framework(db: Database, chain: Chain, files: ImportFiles) -> tuple[float, dict[str, int]]:
    """``followup import`` of the two files, one transaction each, as the command runs it; seconds."""
    from core.db.engine import session_scope
    from core.importing import import_file

    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for path in (files.patients_csv, files.episodes_csv):
        with session_scope(db.url) as session:
            result = import_file(session, chain.config, chain.plugins, path, user="system", now=IMPORT_NOW)
        counts.update({k: counts.get(k, 0) + v for k, v in result.counts().items()})
    return time.perf_counter() - t0, counts


def import_raw(db: Database, files: ImportFiles) -> float:
    """The same rows by the driver alone: ``COPY`` (psycopg) or ``executemany`` (sqlite3), one
    transaction per table like the import; seconds."""
    raw = Raw(db)
    try:
        elapsed = 0.0
        for table, rows in (("patients", files.patients), ("episodes", files.episodes)):
            columns = list(rows[0])
            values = [tuple(raw.value(row[c]) for c in columns) for row in rows]  # driver values, untimed
            t0 = time.perf_counter()
            raw.begin()
            raw.load(table, columns, values)
            raw.commit()
            elapsed += time.perf_counter() - t0
    finally:
        raw.close()
    return elapsed


def stored_import(db: Database) -> tuple[int, int, str]:
    """The imported patients and episodes as stored (counts and a digest of every row, by external id)."""
    import hashlib

    from sqlalchemy import select

    from core.db.engine import get_engine
    from core.db.models import Episode, Patient

    digest = hashlib.sha256()
    counts = []
    queries = (
        select(Patient.external_id, Patient.name, Patient.gender, Patient.birth_date, Patient.phone, Patient.site,
               Patient.locale, Patient.do_not_contact, Patient.dnc_reason, Patient.phone_invalid,
               Patient.created_at, Patient.updated_at).order_by(Patient.external_id),
        select(Episode.external_id, Patient.external_id, Episode.site, Episode.specialty, Episode.procedure,
               Episode.trigger, Episode.occurred_at, Episode.doctor, Episode.department, Episode.diagnosis,
               Episode.notes, Episode.attributes, Episode.status, Episode.scheduled_at, Episode.created_at)
        .join(Patient, Patient.id == Episode.patient_id).order_by(Episode.external_id),
    )
    with get_engine(db.url).connect() as conn:
        for query in queries:
            n = 0
            for row in conn.execute(query):
                n += 1
                digest.update(repr(tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
                                         for v in row)).encode())
            counts.append(n)
    return counts[0], counts[1], digest.hexdigest()


def measure_import(chain: Chain, out: Results, workdir: Path, *, pg: str | None, keep: bool, n_tasks: int,
                   limit: int | None, seed: int, rounds: int) -> None:
    """The same export imported on a fresh SQLite database and a fresh PostgreSQL schema (each round,
    each database: one for the import, one for the raw load), the databases alternating (S P, P S, ...),
    medians. PostgreSQL's time over SQLite's is ``import=`` (SQLite is the reference, so it is measured
    even with ``--only postgresql``); each database's time is also set against its driver's raw load of
    the same rows. Checked: the counts, and the stored rows equal the raw load's."""
    from core.db.engine import get_engine

    files = write_import_files(chain, workdir / "import", n_tasks, seed, limit)
    log(f"import: {len(files.patients)} patients, {len(files.episodes)} episodes")
    fresh: dict[str, Callable[[str], Database]] = {
        "sqlite": lambda tag: sqlite_database(workdir / "import" / tag)}
    if pg:
        fresh["postgresql"] = lambda tag: pg_database(pg, keep=keep)
    times: dict[str, dict[str, list[float]]] = {name: {"framework": [], "raw": []} for name in fresh}
    checks: dict[str, list[str]] = {name: [] for name in fresh}
    expected = {"patients_created": len(files.patients), "episodes_created": len(files.episodes)}
    for round_ in range(rounds):
        order = list(fresh) if round_ % 2 == 0 else list(reversed(fresh))
        for name in order:
            stored = {}
            for kind in ("framework", "raw"):
                db = fresh[name](kind)
                try:
                    if kind == "framework":
                        seconds, counts = import_framework(db, chain, files)
                        if {k: v for k, v in counts.items() if v} != expected:
                            checks[name].append(f"counts {counts}")
                    else:
                        seconds = import_raw(db, files)
                    times[name][kind].append(seconds)
                    stored[kind] = stored_import(db)
                finally:
                    get_engine(db.url).dispose()
                    db.cleanup()
            if stored["framework"] != stored["raw"]:
                checks[name].append(f"stored rows differ: framework {stored['framework'][:2]}, "
                                    f"raw {stored['raw'][:2]}")
    medians = {name: {kind: statistics.median(v) for kind, v in kinds.items()} for name, kinds in times.items()}
    for name, m in medians.items():
        rate, raw_rate = files.rows / m["framework"], files.rows / m["raw"]
        out.emit(f"import    {name:<10} framework {_fmt(m['framework'])}   "
                 f"{'COPY' if name == 'postgresql' else 'executemany'} {_fmt(m['raw'])}   "
                 f"ratio {m['framework'] / m['raw']:5.2f}   | {files.rows} rows ({len(files.patients)} patients, "
                 f"{len(files.episodes)} episodes): {rate:,.0f} rows/s, raw {raw_rate:,.0f} rows/s "
                 f"(median of {rounds}, fresh database each)")
        out.data[name]["import_rows"] = {
            "patients": len(files.patients), "episodes": len(files.episodes),
            "framework_s": [round(t, 3) for t in times[name]["framework"]],
            "raw_s": [round(t, 3) for t in times[name]["raw"]],
            "rows_per_s": round(rate), "raw_rows_per_s": round(raw_rate), "problems": checks[name]}
    if "postgresql" in medians:
        pg_s, sqlite_s = medians["postgresql"]["framework"], medians["sqlite"]["framework"]
        out.add(Database("postgresql", ""), "import", pg_s, sqlite_s, "SQLite import",
                f"PostgreSQL {files.rows / pg_s:,.0f} rows/s, SQLite {files.rows / sqlite_s:,.0f} rows/s; "
                f"raw COPY {files.rows / medians['postgresql']['raw']:,.0f} rows/s",
                check=not checks["postgresql"] and not checks["sqlite"],
                check_detail="; ".join(f"{k}: {v}" for k, v in checks.items() if v))
    else:
        out.checks.append(("sqlite", "import", not checks["sqlite"], "; ".join(checks["sqlite"])))


# -- the run -------------------------------------------------------------------------------------------
@dataclass
class Results:
    emit: Callable[[str], None] = print
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: list[tuple[str, str, bool, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=lambda: defaultdict(dict))

    def add(self, db: Database, name: str, framework: float, raw: float, baseline: str, detail: str, *,
            check: bool, check_detail: str) -> None:
        ratio = framework / raw if raw > 0 else math.inf
        self.ratios.setdefault(db.name, {})[name] = ratio
        goal = GOALS[name]
        self.emit(
            f"{name:<9} {db.name:<10} framework {_fmt(framework)}   {baseline} {_fmt(raw)}   "
            f"ratio {ratio:5.2f}   goal <= {goal:g}x {'ok' if ratio <= goal else 'MISSED'}   "
            f"{'' if check else 'CHECK FAILED '}| {detail}"
        )
        self.checks.append((db.name, name, check, check_detail))
        self.data[db.name][name] = {"framework_s": round(framework, 6), "baseline_s": round(raw, 6),
                                    "ratio": round(ratio, 3), "check": check}

    @property
    def ok(self) -> bool:
        return all(ok for _, _, ok, _ in self.checks)

    def summary(self) -> str:
        worst = {name: max((r[name] for r in self.ratios.values() if name in r), default=math.nan)
                 for name in GOALS}
        return "ratios: " + " ".join(f"{name}={worst[name]:.2f}" for name in GOALS)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms" if seconds < 1 else f"{seconds:9.2f} s "


def run_backend(db: Database, chain: Chain, out: Results, *, tasks: int, attempts: int, seed: int,
                repeat: int, schedule_only: bool = False, history_only: bool = False,
                history_rounds: int = 1, schedule_rounds: int = 1) -> None:
    t0 = time.perf_counter()
    n_patients, n_episodes, planned = populate(db, chain, tasks, seed)
    log(f"{db.name}: {n_patients} patients, {n_episodes} episodes ({planned} tasks planned) "
        f"in {time.perf_counter() - t0:.1f} s")
    if history_only:  # the tasks scheduled, unmeasured: only the call history is
        from core.db.engine import session_scope
        from core.scheduling import schedule

        with session_scope(db.url) as session:
            schedule(session, chain.config, chain.plugins, SCHEDULE_NOW)
    else:
        measure_schedule(db, chain, out, rounds=schedule_rounds)
        drop_raw_tasks(db)
    if schedule_only:
        return
    t0 = time.perf_counter()
    counts = simulate_calls(db, chain, attempts, seed, out, rounds=history_rounds)
    log(f"{db.name}: calls simulated in {time.perf_counter() - t0:.1f} s: {counts}")
    if history_only:
        return
    analyze(db)
    out.data[db.name]["setup"] = {"patients": n_patients, "episodes": n_episodes, **counts}
    measure_worklist(db, chain, out, repeat=5 * max(repeat, 5))  # under a millisecond each: many rounds
    measure_report(db, chain, out, repeat=max(1, repeat // 3))


def machine() -> dict[str, Any]:
    import sqlite3

    import sqlalchemy

    mem = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = int(fh.readline().split()[1]) // 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "ram_mb": mem, "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__}


def run(argv: list[str] | None = None, emit: Callable[[str], None] = print) -> Results:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000,
                        help="follow-up tasks to schedule (default 1000000)")
    parser.add_argument("--attempts", type=int, default=2_000_000,
                        help="call attempts for the report (default 2000000)")
    parser.add_argument("--pg", metavar="URL", help="also measure on this PostgreSQL database (a fresh schema)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="measure on one database only")
    parser.add_argument("--claim-tasks", type=int, default=10_000, help="tasks the concurrent claimers drain")
    parser.add_argument("--claim-rounds", type=int, default=2, help="A/B rounds of the 8-claimer drains (median)")
    parser.add_argument("--cli-rounds", type=int, default=9, help="interleaved rounds of benchmarks/cli.py")
    parser.add_argument("--no-cli", action="store_true", help="skip the everyday commands' CPU time")
    parser.add_argument("--no-claims", action="store_true", help="skip the concurrent claims and the writes")
    parser.add_argument("--claims-only", action="store_true",
                        help="only the concurrent claims and the writes: no schedule, worklist, report, import, "
                             "help, cli")
    parser.add_argument("--records", type=int, default=20_000,
                        help="record_call runs with and without the day counts each, on a database of their own "
                             "(default 20000; 0: none)")
    parser.add_argument("--repeat", type=int, default=9, help="runs per worklist measurement (median)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workdir", type=Path, help="where the chain and SQLite file go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and PostgreSQL schemas")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--no-help", action="store_true", help="skip the CLI start-up measurement")
    parser.add_argument("--no-import", action="store_true", help="skip the import of patients and episodes")
    parser.add_argument("--import-only", action="store_true", help="measure the import only")
    parser.add_argument("--schedule-only", action="store_true",
                        help="measure scheduling only (step 1, on each database)")
    parser.add_argument("--history-only", action="store_true",
                        help="measure the call history only (the tasks scheduled unmeasured): no schedule, "
                             "worklist, report, claims, writes, import, help, cli")
    parser.add_argument("--import-episodes", type=int, metavar="N", default=200_000,
                        help="episodes in the import's file, at most those of --tasks (default 200000), "
                             "and their patients")
    parser.add_argument("--import-rounds", type=int, default=2, help="rounds of the import on each database (median)")
    parser.add_argument("--history-rounds", type=int, metavar="N",
                        help="A/B rounds of each call-history load (median; default 5 up to 100,000 attempts, "
                             "whose 1-2 loads swing with the machine, else 1)")
    parser.add_argument("--schedule-rounds", type=int, metavar="N",
                        help="A/B rounds of scheduling every episode (median; default 5 up to 100,000 tasks, "
                             "else 1)")
    args = parser.parse_args(argv)
    history_rounds = args.history_rounds or (5 if args.attempts <= 100_000 else 1)
    schedule_rounds = args.schedule_rounds or (5 if args.tasks <= 100_000 else 1)
    if args.schedule_only or args.history_only:
        args.no_claims = args.no_import = args.no_help = args.no_cli = True

    out = Results(emit=emit)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="followup-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    out.data["machine"] = info
    out.data["args"] = {"tasks": args.tasks, "attempts": args.attempts, "claim_tasks": args.claim_tasks}
    try:
        chain_yaml = write_chain(workdir / "chain")
        chain = load_chain(chain_yaml)
        emit(f"# clinic-followup scale benchmark: {args.tasks} tasks, {args.attempts} attempts, "
             f"{len(chain.config.sites)} sites; nproc {info['nproc']}, RAM {info['ram_mb']} MB, "
             f"Python {info['python']}, SQLite {info['sqlite']}")
        if args.only != "postgresql" and not args.import_only:
            if not args.claims_only:
                db = sqlite_database(workdir)
                try:
                    run_backend(db, chain, out, tasks=args.tasks, attempts=args.attempts, seed=args.seed,
                                repeat=args.repeat, schedule_only=args.schedule_only,
                                history_only=args.history_only, history_rounds=history_rounds,
                                schedule_rounds=schedule_rounds)
                finally:
                    from core.db.engine import get_engine

                    get_engine(db.url).dispose()
            if not args.no_claims:
                db = sqlite_database(workdir / "claims")
                try:
                    measure_claims(db, chain, chain_yaml, out, args.claim_tasks, args.seed,
                                   rounds=args.claim_rounds)
                finally:
                    from core.db.engine import get_engine

                    get_engine(db.url).dispose()
            if not args.no_claims and args.records > 0:
                db = sqlite_database(workdir / "records")
                try:
                    run_records(db, chain, out, args.records, args.seed)
                finally:
                    from core.db.engine import get_engine

                    get_engine(db.url).dispose()
        if args.pg and args.only != "sqlite" and not args.import_only:
            db = pg_database(args.pg, keep=args.keep)
            try:
                version = Raw(db)
                out.data["machine"]["postgresql"] = version.query("SHOW server_version")[0][0]
                version.commit()
                version.close()
                emit(f"# PostgreSQL {out.data['machine']['postgresql']}")
                if not args.claims_only:
                    run_backend(db, chain, out, tasks=args.tasks, attempts=args.attempts, seed=args.seed,
                                repeat=args.repeat, schedule_only=args.schedule_only,
                                history_only=args.history_only, history_rounds=history_rounds,
                                schedule_rounds=schedule_rounds)
            finally:
                db.cleanup()
            if not args.no_claims:
                db = pg_database(args.pg, keep=args.keep)
                try:
                    measure_claims(db, chain, chain_yaml, out, args.claim_tasks, args.seed,
                                   rounds=args.claim_rounds)
                finally:
                    db.cleanup()
            if not args.no_claims and args.records > 0:
                db = pg_database(args.pg, keep=args.keep)
                try:
                    run_records(db, chain, out, args.records, args.seed)
                finally:
                    db.cleanup()
        if not args.no_import and not args.claims_only:
            measure_import(chain, out, workdir, pg=args.pg if args.only != "sqlite" else None, keep=args.keep,
                           n_tasks=args.tasks, limit=args.import_episodes, seed=args.seed,
                           rounds=args.import_rounds)
        if not args.no_help and not args.import_only and not args.claims_only:
            measure_help(out)
        if not args.no_cli and not args.import_only and not args.claims_only:
            measure_cli(out, args.cli_rounds)
        for db_name, ratios in out.ratios.items():
            emit(f"{db_name} ratios: " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items()))
        for db_name, name, ok, detail in out.checks:
            if not ok:
                emit(f"CHECK FAILED {name} on {db_name}: {detail}")
        emit(out.summary())
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out.data, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    return 0 if run(argv).ok else 1


if __name__ == "__main__":
    sys.exit(main())
