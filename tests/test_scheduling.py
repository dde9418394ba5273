"""Turning episodes into tasks (DESIGN.md §1, §5, §6), on SQLite and PostgreSQL.

The demo chain is checked against the tiny test plugins in ``tests/data/plugins``
(dental root canal and implant, the rhinoplasty reminders), so these tests do
not move when the shipped protocols are edited. Every ``now`` is fixed.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core.config import ChainConfig, check_against_plugins, load_config
from core.content import ProtocolPlugin
from core.db.engine import session_scope
from core.db.models import Episode, Patient, Task
from core.general import CorePlugin
from core.plugins import Plugins
from core.scheduling import ScheduleResult, replan, schedule

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=SHANGHAI)


def mini_plugins() -> Plugins:
    plugins = Plugins()
    plugins.register(CorePlugin(), "core")
    for name in ("aesthetic", "dental", "hair", "inpatient"):
        plugins.register(ProtocolPlugin(f"test_{name}", root=DATA / "plugins" / name), name)
    return plugins


@pytest.fixture
def chain_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(ROOT / "config", tmp_path / "config"))


def load(chain_dir: Path, plugins: Plugins) -> ChainConfig:
    config = load_config(chain_dir / "chain.yaml", check_plugins=False)
    check_against_plugins(config, plugins)
    return config


@pytest.fixture
def plugins() -> Plugins:  # a fresh, test-only manager (shadows conftest's shipped plugins)
    return mini_plugins()


@pytest.fixture
def config(chain_dir: Path, plugins: Plugins) -> ChainConfig:
    return load(chain_dir, plugins)


class Clinic:
    """Insert patients and episodes straight into the database, then schedule."""

    def __init__(self, url: str, config: ChainConfig, plugins: Plugins):
        self.url, self.config, self.plugins = url, config, plugins
        self._n = 0

    def episode(
        self,
        occurred_at: datetime,
        *,
        site: str = "SH-DENT",
        specialty: str = "dental",
        procedure: str = "implant_surgery",
        attributes: dict[str, Any] | None = None,
        do_not_contact: bool = False,
        status: str = "active",
    ) -> int:
        self._n += 1
        with session_scope(self.url) as session:
            patient = Patient(
                external_id=f"P{self._n}", name="王秀英", gender="F", do_not_contact=do_not_contact
            )
            session.add(patient)
            session.flush()
            episode = Episode(
                external_id=f"E{self._n}",
                patient_id=patient.id,
                site=site,
                specialty=specialty,
                procedure=procedure,
                trigger="procedure",
                occurred_at=occurred_at,
                attributes=attributes or {},
                status=status,
            )
            session.add(episode)
            session.flush()
            return episode.id

    def schedule(self, now: datetime = NOW, **kwargs: Any) -> ScheduleResult:
        with session_scope(self.url) as session:
            return schedule(session, self.config, self.plugins, now, **kwargs)

    def tasks(self, episode_id: int | None = None) -> dict[str, Task]:
        with session_scope(self.url) as session:
            query = select(Task).order_by(Task.id)
            if episode_id is not None:
                query = query.where(Task.episode_id == episode_id)
            return {t.milestone: t for t in session.scalars(query)}

    def count(self) -> int:
        with session_scope(self.url) as session:
            return session.scalar(select(func.count()).select_from(Task)) or 0


@pytest.fixture
def clinic(db_url: str, config: ChainConfig, plugins: Plugins) -> Clinic:
    return Clinic(db_url, config, plugins)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def add_holiday_notice(chain_dir: Path, year: int, holidays: list[str]) -> None:
    """Write a year's official holiday notice into the chain YAML (as a chain admin would)."""
    chain = chain_dir / "chain.yaml"
    text = chain.read_text(encoding="utf-8")
    assert "holiday_notices: {}" in text  # else the notice below would silently not be added
    notice = f"holiday_notices:\n  {year}:\n    holidays: [{', '.join(holidays)}]\n    workdays: []"
    chain.write_text(text.replace("holiday_notices: {}", notice), encoding="utf-8")


# --- one task per milestone, idempotently -----------------------------------------------


def test_scheduling_creates_one_task_per_milestone(clinic: Clinic) -> None:
    episode = clinic.episode(local("2026-06-01T10:00"))
    result = clinic.schedule()
    assert (result.episodes, result.created, result.existing) == (1, 2, 0)
    tasks = clinic.tasks(episode)
    assert sorted(tasks) == ["check_24h", "review_1y"]
    check = tasks["check_24h"]
    assert check.urgency == "clinical" and check.status == "open"
    assert check.due_at == datetime(
        2026, 6, 2, 2, 0, tzinfo=UTC
    )  # 10:00 in Shanghai, stored in UTC
    assert check.due_at.tzinfo is not None
    assert (check.offset, check.window_earliest, check.window_latest) == ("24h", "12h", "36h")
    assert check.next_attempt_at == check.due_at
    assert check.max_attempts == 3


def test_scheduling_twice_creates_nothing_new(clinic: Clinic) -> None:
    clinic.episode(local("2026-06-01T10:00"))
    clinic.episode(
        local("2026-06-02T10:00"), procedure="root_canal_treatment", attributes={"restored": False}
    )
    first = clinic.schedule()
    second = clinic.schedule(NOW + timedelta(hours=1))
    assert first.created == 4
    assert (second.created, second.existing) == (0, 4)
    assert clinic.count() == 4


def test_a_concurrent_run_that_stored_the_tasks_first_is_not_counted_again(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.scheduling

    clinic.episode(local("2026-06-01T10:00"))
    clinic.schedule()
    # As if another process inserted the tasks between our check and our insert.
    monkeypatch.setattr(core.scheduling, "_existing_tasks", lambda session, ids: set())
    again = clinic.schedule()
    assert (again.created, again.existing) == (0, 2)
    assert clinic.count() == 2


def test_the_day_counts_take_exactly_the_tasks_a_run_inserted(
    clinic: Clinic, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reports' day counts after scheduling equal a recount of the tasks: after a first run, after
    a run where a concurrent one had stored some of the batch's tasks first (only the tasks really
    inserted count), and after a run that adds a new milestone to an episode that has tasks."""
    import core.scheduling
    from core.db import rollups
    from core.db.engine import get_engine
    from core.hookspecs import hookimpl

    first = clinic.episode(local("2026-06-01T10:00"))
    clinic.episode(local("2026-06-03T15:00"), do_not_contact=True)  # suppressed: not counted as due
    assert clinic.schedule().created == 4
    with get_engine(clinic.url).connect() as conn:
        assert rollups.verify(conn) == {}
    clinic.episode(local("2026-06-02T11:00"))
    with monkeypatch.context() as patched:  # as if another process stored the first episodes' tasks meanwhile
        patched.setattr(core.scheduling, "_existing_tasks", lambda session, ids: {})
        again = clinic.schedule()
    assert (again.created, again.existing) == (2, 4)
    with get_engine(clinic.url).connect() as conn:
        assert rollups.verify(conn) == {}

    class ChainExtra:
        @hookimpl
        def followup_milestones(self, specialty: str, procedure: str) -> list[dict[str, Any]] | None:
            if procedure != "implant_surgery":
                return None
            return [{"key": "review_3mo", "purpose": "review", "names": {"zh_CN": "三个月复查", "en": "3-month review"},
                     "offset": "3mo", "window": ["11w", "14w"]}]

    plugins.register(ChainExtra(), "chain")
    assert clinic.schedule().created == 3
    assert "review_3mo" in clinic.tasks(first)
    with get_engine(clinic.url).connect() as conn:
        assert rollups.verify(conn) == {}


def test_scheduling_in_small_batches_covers_every_episode(clinic: Clinic) -> None:
    for day in range(1, 6):
        clinic.episode(local(f"2026-06-0{day}T10:00"))
    result = clinic.schedule(batch_size=2)
    assert (result.episodes, result.created) == (5, 10)
    assert clinic.count() == 10


def test_scheduling_only_the_given_episodes(clinic: Clinic) -> None:
    first = clinic.episode(local("2026-06-01T10:00"))
    second = clinic.episode(local("2026-06-02T10:00"))
    assert clinic.schedule(episode_ids=[second]).created == 2
    assert clinic.tasks(first) == {}


def test_closed_episodes_are_not_scheduled(clinic: Clinic) -> None:
    clinic.episode(local("2026-06-01T10:00"), status="cancelled")
    assert clinic.schedule().episodes == 0
    assert clinic.count() == 0


def test_a_new_milestone_in_the_protocol_is_added_on_the_next_run(
    clinic: Clinic, plugins: Plugins
) -> None:
    from core.hookspecs import hookimpl

    episode = clinic.episode(local("2026-06-01T10:00"))
    clinic.schedule()

    class ChainExtra:
        @hookimpl
        def followup_milestones(
            self, specialty: str, procedure: str
        ) -> list[dict[str, Any]] | None:
            if procedure != "implant_surgery":
                return None
            return [
                {
                    "key": "review_3mo",
                    "purpose": "review",
                    "names": {"zh_CN": "三个月复查", "en": "3-month review"},
                    "offset": "3mo",
                    "window": ["11w", "14w"],
                }
            ]

    plugins.register(ChainExtra(), "chain")
    result = clinic.schedule()
    assert (result.created, result.existing) == (1, 2)
    assert sorted(clinic.tasks(episode)) == ["check_24h", "review_1y", "review_3mo"]


# --- statuses ---------------------------------------------------------------------------------


def test_do_not_contact_patient_tasks_are_suppressed(clinic: Clinic) -> None:
    episode = clinic.episode(local("2026-06-01T10:00"), do_not_contact=True)
    result = clinic.schedule()
    assert result.suppressed == 2
    assert {t.status for t in clinic.tasks(episode).values()} == {"suppressed"}


def test_episode_whose_windows_closed_long_ago_gets_expired_tasks(clinic: Clinic) -> None:
    episode = clinic.episode(local("2024-03-04T10:00"))  # even the 13-month window closed in 2025
    result = clinic.schedule()
    assert result.expired == 2
    assert {t.status for t in clinic.tasks(episode).values()} == {"expired"}


def test_a_window_that_closed_yesterday_is_still_an_open_overdue_call(clinic: Clinic) -> None:
    episode = clinic.episode(local("2026-05-29T10:00"))  # 24h check window closed 2026-05-30 22:00
    clinic.schedule()
    task = clinic.tasks(episode)["check_24h"]
    assert task.status == "open"
    assert task.window_end < NOW


# --- the protocol as the site sees it ------------------------------------------------------------


def test_root_canal_restoration_reminder_when_not_restored(clinic: Clinic) -> None:
    episode = clinic.episode(
        local("2026-06-01T10:00"), procedure="root_canal_treatment", attributes={"restored": False}
    )
    clinic.schedule()
    tasks = clinic.tasks(episode)
    assert sorted(tasks) == ["check_same_day", "restoration_reminder"]
    reminder = tasks["restoration_reminder"]
    # Day 10 is Thursday 2026-06-11; SH-DENT calls 10:00-11:30 and 15:30-17:00.
    assert reminder.due_at.astimezone(SHANGHAI) == local("2026-06-11T10:00")
    assert reminder.window_start.astimezone(SHANGHAI) == local("2026-06-08T10:00")
    assert reminder.window_end.astimezone(SHANGHAI) == local("2026-06-15T23:59:59")  # ends with the day


def test_root_canal_no_restoration_reminder_when_already_restored(clinic: Clinic) -> None:
    episode = clinic.episode(
        local("2026-06-01T10:00"), procedure="root_canal_treatment", attributes={"restored": True}
    )
    clinic.schedule()
    assert sorted(clinic.tasks(episode)) == ["check_same_day"]


def test_root_canal_unknown_restoration_gets_the_reminder(clinic: Clinic) -> None:
    # Not knowing is treated as not restored: one call too many beats a tooth left to crack.
    episode = clinic.episode(local("2026-06-01T10:00"), procedure="root_canal_treatment")
    clinic.schedule()
    assert sorted(clinic.tasks(episode)) == ["check_same_day", "restoration_reminder"]


def test_a_reminder_is_scheduled_before_its_event(clinic: Clinic) -> None:
    # SH-AES takes the nasal splint off on day 5: the day-3 call reminds the patient of it.
    episode = clinic.episode(
        local("2026-06-01T10:00"), site="SH-AES", specialty="aesthetic", procedure="rhinoplasty"
    )
    clinic.schedule()
    splint = clinic.tasks(episode)["splint_removal"]
    assert (splint.offset, splint.window_earliest, splint.window_latest, splint.before_event) == (
        "3d", "2d", "4d", "5d")
    assert splint.due_at.astimezone(SHANGHAI) == local("2026-06-04T10:00")
    # The window ends with the day before the removal (Saturday 6 June), never on it.
    assert splint.window_end.astimezone(SHANGHAI) == local("2026-06-05T23:59:59")
    assert not splint.outside_window


def test_site_calling_windows_are_used(clinic: Clinic) -> None:
    episode = clinic.episode(
        local("2026-06-01T09:15"), procedure="root_canal_treatment", attributes={"restored": False}
    )
    clinic.schedule()
    # Day 10 at 09:15 is before SH-DENT's 10:00 window opens.
    assert clinic.tasks(episode)["restoration_reminder"].due_at.astimezone(SHANGHAI) == local(
        "2026-06-11T10:00"
    )


def test_site_closure_moves_a_routine_call(clinic: Clinic) -> None:
    # SH-DENT is closed for stock-taking on 2026-12-31.
    episode = clinic.episode(
        local("2026-12-21T10:30"), procedure="root_canal_treatment", attributes={"restored": False}
    )
    clinic.schedule()
    reminder = clinic.tasks(episode)["restoration_reminder"]
    assert reminder.target_at.astimezone(SHANGHAI) == local("2026-12-31T10:30")
    assert reminder.due_at.astimezone(SHANGHAI).date().isoformat() != "2026-12-31"
    assert reminder.due_at.astimezone(SHANGHAI) < local("2027-01-04T10:30")  # still inside [1w, 2w]


def test_episode_at_an_unknown_site_is_reported_not_scheduled(clinic: Clinic) -> None:
    clinic.episode(local("2026-06-01T10:00"), site="GZ-DENT")
    result = clinic.schedule()
    assert result.created == 0
    assert result.problems == ["episode E1: site 'GZ-DENT' is not in the configuration"]


def test_episode_of_a_specialty_the_site_does_not_enable_is_reported(clinic: Clinic) -> None:
    clinic.episode(local("2026-06-01T10:00"), site="BJ-HOSP")
    result = clinic.schedule()
    assert result.created == 0
    assert result.problems == ["episode E1: specialty 'dental' is not enabled at site BJ-HOSP"]


# --- provisional placement and replanning ------------------------------------------------------------


def test_one_year_review_in_an_unpublished_year_is_provisional(clinic: Clinic) -> None:
    episode = clinic.episode(local("2026-06-15T10:00"))
    result = clinic.schedule()
    assert result.provisional == 1
    tasks = clinic.tasks(episode)
    assert tasks["review_1y"].provisional
    assert not tasks["check_24h"].provisional
    assert tasks["review_1y"].due_at.astimezone(SHANGHAI) == local("2027-06-15T10:00")


def test_replan_moves_provisional_tasks_once_the_year_notice_is_added(
    clinic: Clinic, chain_dir: Path, plugins: Plugins
) -> None:
    episode = clinic.episode(local("2026-06-15T10:00"))
    clinic.schedule()
    with session_scope(clinic.url) as session:
        assert replan(session, clinic.config, NOW).moved == 0  # nothing new yet: the task stays
    assert clinic.tasks(episode)["review_1y"].provisional

    # The State Council's (hypothetical) 2027 notice makes Tuesday 2027-06-15 a holiday.
    add_holiday_notice(chain_dir, 2027, ["2027-06-14", "2027-06-15"])
    updated = load(chain_dir, plugins)
    with session_scope(clinic.url) as session:
        moved = replan(session, updated, NOW + timedelta(days=1)).moved
    assert moved == 1
    review = clinic.tasks(episode)["review_1y"]
    assert review.due_at.astimezone(SHANGHAI) == local("2027-06-16T10:00")
    assert not review.provisional
    assert review.next_attempt_at == review.due_at
    assert review.updated_at == NOW + timedelta(days=1)
    with session_scope(clinic.url) as session:
        assert replan(session, updated, NOW + timedelta(days=2)).moved == 0  # nothing provisional left


def test_replan_leaves_tasks_that_are_no_longer_open(
    clinic: Clinic, chain_dir: Path, plugins: Plugins
) -> None:
    episode = clinic.episode(local("2026-06-15T10:00"), do_not_contact=True)
    clinic.schedule()
    before = clinic.tasks(episode)["review_1y"]
    add_holiday_notice(chain_dir, 2027, ["2027-06-15"])
    with session_scope(clinic.url) as session:
        assert replan(session, load(chain_dir, plugins), NOW).moved == 0
    assert clinic.tasks(episode)["review_1y"].due_at == before.due_at


def test_shipped_dental_protocol_reminds_only_unrestored_root_canals(db_url: str) -> None:
    from core.plugins import get_plugins

    shipped = get_plugins()
    dental = shipped.infos.get("dental")
    assert dental is not None and dental.status == "ok", f"the shipped dental plugin did not load: {dental}"
    demo = load_config(ROOT / "config" / "chain.yaml")
    clinic = Clinic(db_url, demo, shipped)
    when = local("2026-06-01T10:00")
    restored = clinic.episode(when, procedure="root_canal_treatment", attributes={"restored": True})
    unrestored = clinic.episode(when, procedure="root_canal_treatment", attributes={"restored": False})
    clinic.schedule()
    reminders = {
        episode: [
            t.milestone
            for t in clinic.tasks(episode).values()
            if t.window_earliest == "1w" and t.window_latest == "2w"
        ]
        for episode in (restored, unrestored)
    }
    assert reminders[restored] == []
    assert len(reminders[unrestored]) == 1
