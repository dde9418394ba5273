"""Building test clinics through the public CLI: CSV exports, import, schedule.

Test modules import these directly (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

PATIENT_HEADER = ["patient_id", "name", "gender", "birth_date", "phone", "site"]
EPISODE_HEADER = ["episode_id", "patient_id", "site", "specialty", "procedure", "occurred_at", "doctor"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def seed(cli: Any, tmp_path: Path, url: str, patients: list[list[str]], episodes: list[list[str]],
         now: str = "2026-11-23T08:00+08:00", episode_header: list[str] | None = None) -> None:
    """Import patients and episodes the way a clinic does, then schedule."""
    cli("import", str(write_csv(tmp_path / "patients.csv", PATIENT_HEADER, patients)), db=url, now=now)
    cli("import", str(write_csv(tmp_path / "episodes.csv", episode_header or EPISODE_HEADER, episodes)),
        db=url, now=now)
    cli("schedule", db=url, now=now)


def task_id(cli: Any, url: str, patient: str, milestone: str) -> int:
    """The id of a patient's task for one milestone, as `followup tasks` shows it."""
    tasks = json.loads(cli("tasks", "--patient", patient, "--format", "json", db=url).output)
    return next(t["id"] for t in tasks if t["milestone"] == milestone)
