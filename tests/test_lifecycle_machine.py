"""The task lifecycle as a state machine (issue 12): any sequence of what happens to a clinic's
records keeps the tasks consistent, on SQLite and PostgreSQL.

Steps: import a new episode, re-import one with a changed date, procedure or status, schedule
(reconcile), record a call, set or lift do-not-contact, edit the site's overrides. Every step
goes through the CLI. After each step:

* one task per (episode, milestone);
* every open task is inside its window, or flagged as outside it;
* no open task for a do-not-contact patient;
* each task's attempt counters equal its attempt rows (counted and logged);
* after a schedule: no open task of a cancelled episode, and ``db recount --check`` passes.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from clinic_data import EPISODE_HEADER, PATIENT_HEADER, write_csv
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from core.db.engine import session_scope
from core.db.models import Attempt, Episode, Patient, Task

ROOT = Path(__file__).resolve().parents[1]
PROCEDURES = ("implant", "extraction", "scaling", "root_canal_treatment")
START = datetime.fromisoformat("2026-11-02T09:30+08:00")
OVERRIDES = (
    "",
    "overrides:\n  - milestone: dental.implant.review_3mo\n    offset: 4mo\n    window: [3mo, 5mo]\n",
    "overrides:\n  - milestone: dental.implant.review_6mo\n    disabled: true\n",
)


def machine_for(url: str, workdir: Path) -> type[RuleBasedStateMachine]:
    from core.cli.main import cli as group

    class Lifecycle(RuleBasedStateMachine):
        @initialize()
        def fresh(self) -> None:
            self.dir = workdir / uuid.uuid4().hex[:8]
            self.chain = Path(shutil.copytree(ROOT / "config", self.dir / "config")) / "chain.yaml"
            self.site_file = self.chain.parent / "sites" / "sh-dent.yaml"
            self.site_text = self.site_file.read_text(encoding="utf-8")
            self.now = START
            self.episodes: dict[str, list[str]] = {}
            self.patients = 0
            self._truncate()

        # -- helpers ---------------------------------------------------------------------------
        def run(self, *args: str, user: str = "zhang.li") -> str:
            result = CliRunner().invoke(group, ["--as", user, "--db", url, "--config", str(self.chain),
                                                "--now", self.now.isoformat(), *args], catch_exceptions=False)
            assert result.exit_code in (0, 1), result.output
            assert "Traceback" not in result.output
            return result.output

        def _truncate(self) -> None:
            from sqlalchemy import text

            from core.db.uow import outside

            with session_scope(url) as session, outside(session):  # a fresh database for each example
                for table in ("answers", "complaints", "escalations", "attempts", "tasks", "episodes", "patients",
                              "audit_log"):
                    session.execute(text(f"DELETE FROM {table}"))

        def _import_episode(self, row: list[str], status: str) -> None:
            path = write_csv(self.dir / "episodes.csv", [*EPISODE_HEADER, "status"], [[*row, status]])
            self.run("import", str(path))

        # -- rules -----------------------------------------------------------------------------
        @rule(procedure=st.sampled_from(PROCEDURES), days_ago=st.integers(0, 200))
        def new_episode(self, procedure: str, days_ago: int) -> None:
            self.patients += 1
            pid = f"P{self.patients}"
            path = write_csv(self.dir / "patients.csv", PATIENT_HEADER,
                             [[pid, "王秀英", "F", "1961-04-12", f"138{self.patients:08d}", "SH-DENT"]])
            self.run("import", str(path))
            occurred = (self.now - timedelta(days=days_ago)).replace(tzinfo=None).isoformat(timespec="minutes")
            row = [f"E{self.patients}", pid, "SH-DENT", "dental", procedure, occurred, "陈志远"]
            self.episodes[row[0]] = row
            self._import_episode(row, "active")

        @precondition(lambda self: self.episodes)
        @rule(data=st.data(), shift=st.integers(-60, 60), procedure=st.sampled_from((None, *PROCEDURES)),
              cancelled=st.booleans())
        def correct_episode(self, data: st.DataObject, shift: int, procedure: str | None, cancelled: bool) -> None:
            key = data.draw(st.sampled_from(sorted(self.episodes)))
            row = list(self.episodes[key])
            row[5] = (datetime.fromisoformat(row[5]) + timedelta(days=shift)).isoformat(timespec="minutes")
            if procedure:
                row[4] = procedure
            self.episodes[key] = row
            self._import_episode(row, "已取消" if cancelled else "正常")

        @rule()
        def schedule(self) -> None:
            self.run("schedule")
            self.check_after_schedule()

        @rule(overrides=st.sampled_from(OVERRIDES))
        def edit_site(self, overrides: str) -> None:
            self.site_file.write_text(self.site_text + overrides, encoding="utf-8")

        @rule(hours=st.integers(0, 72))
        def time_passes(self, hours: int) -> None:
            self.now += timedelta(hours=hours)

        @precondition(lambda self: self.patients)
        @rule(data=st.data(), outcome=st.sampled_from(("reached", "no_answer", "busy", "powered_off", "refused")))
        def record(self, data: st.DataObject, outcome: str) -> None:
            with session_scope(url) as session:
                ids = session.scalars(select(Task.id).where(Task.status == "open").order_by(Task.id)).all()
            if ids:
                task = data.draw(st.sampled_from(ids))
                self.run("record", str(task), "--outcome", outcome)

        @precondition(lambda self: self.patients)
        @rule(data=st.data(), on=st.booleans())
        def do_not_contact(self, data: st.DataObject, on: bool) -> None:
            pid = f"P{data.draw(st.integers(1, self.patients))}"
            self.run("patients", "dnc", pid, *([] if on else ["--undo"]))

        # -- what must always hold ---------------------------------------------------------------
        @invariant()
        def consistent(self) -> None:
            if not hasattr(self, "dir"):
                return
            with session_scope(url) as session:
                pairs = session.execute(select(Task.episode_id, Task.milestone, func.count()).group_by(
                    Task.episode_id, Task.milestone).having(func.count() > 1)).all()
                assert not pairs
                for task in session.scalars(select(Task).where(Task.status == "open")):
                    inside = task.window_start <= task.due_at <= task.window_end
                    assert inside or task.outside_window, (task.milestone, task.due_at, task.window_start)
                dnc_open = session.scalar(select(func.count()).select_from(Task).join(
                    Patient, Patient.id == Task.patient_id).where(Patient.do_not_contact.is_(True),
                                                                  Task.status == "open"))
                assert dnc_open == 0
                counted = Attempt.counted.is_(True) if hasattr(Attempt, "counted") else True
                rows = dict(session.execute(select(Attempt.task_id, func.count()).where(counted)
                                            .group_by(Attempt.task_id)).all())
                for task_id, attempts in session.execute(select(Task.id, Task.attempts)).all():
                    assert attempts == rows.get(task_id, 0), task_id

        def check_after_schedule(self) -> None:
            with session_scope(url) as session:
                stale = session.scalar(select(func.count()).select_from(Task).join(
                    Episode, Episode.id == Task.episode_id).where(Episode.status == "cancelled",
                                                                  Task.status == "open"))
                assert stale == 0
            result = CliRunner().invoke(group, ["--db", url, "--config", str(self.chain), "db", "recount", "--check"],
                                        catch_exceptions=False)
            assert result.exit_code == 0, result.output

    return Lifecycle


@pytest.mark.parametrize("examples", [12])
def test_the_lifecycle_stays_consistent(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        examples: int) -> None:
    monkeypatch.chdir(ROOT)
    for var in ("FOLLOWUP_CONFIG", "FOLLOWUP_DATABASE_URL", "FOLLOWUP_NOW", "FOLLOWUP_USER"):
        monkeypatch.delenv(var, raising=False)
    machine = machine_for(db_url, tmp_path)
    machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=15, deadline=None,
                                         suppress_health_check=list(HealthCheck))
    machine.TestCase().runTest()
