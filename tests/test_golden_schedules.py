"""Golden schedules: every procedure's effective calls from fixed event times.

Two event times per procedure: 31 January (month-end arithmetic: +1 month is
28 February) and 28 September (calls in the first week fall into the National
Day holiday). The expected placements live in ``tests/data/golden/schedules.json``;
a change to a protocol or to the placement rules shows up here as a diff to
review. Regenerate after a deliberate change with ``UPDATE_GOLDEN=1 pytest
tests/test_golden_schedules.py``. A few facts are also asserted by hand below.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.planner import Timing, planner

GOLDEN = Path(__file__).parent / "data" / "golden" / "schedules.json"
SITE_FOR = {"dental": "SH-DENT", "aesthetic": "SH-AES", "hair": "SH-AES", "inpatient": "BJ-HOSP"}
EVENTS = ("2026-01-31T10:00", "2026-09-28T10:00")
TZ = ZoneInfo("Asia/Shanghai")


def effective(config, plugins) -> dict[str, list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[dict[str, str]]] = {}
    for key, (_plugin, spec) in plugins.specialties().items():
        site = config.site(SITE_FOR[key])
        for proc in spec.procedures:
            milestones = site.apply_overrides(key, proc.code, [m for _, m in plugins.milestones(key, proc.code)],
                                              proc.events)
            for event in EVENTS:
                anchor = datetime.fromisoformat(event).replace(tzinfo=TZ)
                rows = []
                for ms in milestones:
                    placed = planner(config, site).plan(Timing.of(ms), anchor)  # the one planner
                    rows.append({
                        "milestone": ms.key,
                        "target": placed.target_at.astimezone(site.timezone).isoformat(timespec="minutes"),
                        "due": placed.due_at.astimezone(site.timezone).isoformat(timespec="minutes"),
                        "flags": ",".join(f for f, on in (("provisional", placed.provisional),
                                                          ("outside_window", placed.outside_window)) if on),
                    })
                out[f"{key}.{proc.code}@{site.code} from {event}"] = rows
    return out


def test_effective_schedules_match_the_reviewed_golden_file(config, plugins) -> None:  # type: ignore[no-untyped-def]
    got = effective(config, plugins)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        pytest.skip("golden file rewritten")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert set(got) == set(want), "procedures added or removed: regenerate and review the golden file"
    for key in want:
        assert got[key] == want[key], key


def _row(config, plugins, key: str, milestone: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return next(r for r in effective(config, plugins)[key] if r["milestone"] == milestone)


def test_implant_three_months_from_january_31_is_april_30(config, plugins) -> None:  # type: ignore[no-untyped-def]
    row = _row(config, plugins, "dental.implant@SH-DENT from 2026-01-31T10:00", "review_3mo")
    assert row["target"] == "2026-04-30T10:00+08:00"
    assert row["due"].startswith("2026-04-30")  # a Thursday and a working day


def test_one_month_after_january_31_is_february_28(config, plugins) -> None:  # type: ignore[no-untyped-def]
    row = _row(config, plugins, "aesthetic.rhinoplasty@SH-AES from 2026-01-31T10:00", "review_1mo")
    assert row["target"] == "2026-02-28T10:00+08:00"
    # 28 Feb 2026 is a make-up Saturday (调休): a working day, so the routine review stays.
    assert row["due"] == "2026-02-28T10:00+08:00"


def test_one_year_implant_call_lands_in_an_unpublished_year_and_is_provisional(config, plugins) -> None:  # type: ignore[no-untyped-def]
    row = _row(config, plugins, "dental.implant@SH-DENT from 2026-01-31T10:00", "review_1y")
    assert row["target"] == "2027-01-31T10:00+08:00"
    assert "provisional" in row["flags"]


def test_a_routine_call_due_on_national_day_moves_past_the_holiday(config, plugins) -> None:  # type: ignore[no-untyped-def]
    # Hair transplant scabs check: 8 days after 28 Sep = 6 Oct, inside the 1-7 Oct holiday.
    row = _row(config, plugins, "hair.transplant@SH-AES from 2026-09-28T10:00", "scabs")
    assert row["target"].startswith("2026-10-06")
    assert row["due"] == "2026-10-08T09:00+08:00"  # first calling window of the first working day


def test_a_clinical_call_on_national_day_keeps_its_date(config, plugins) -> None:  # type: ignore[no-untyped-def]
    # Breast augmentation dressing change at day 3 = 1 Oct: clinical, not postponed by the holiday.
    row = _row(config, plugins, "aesthetic.breast_augmentation@SH-AES from 2026-09-28T10:00", "dressing_change")
    assert row["due"].startswith("2026-10-01")
