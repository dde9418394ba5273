"""A task's counters against its attempt rows (``followup db recount --check``).

``record_call`` keeps three counters on each task, under the task's row lock:
``attempts`` (the attempts that count), ``failed_attempts`` (the failed ones
that count towards the unsuccessful limit) and ``attempts_logged`` (every
attempt row). They must always equal a count of the task's ``attempts`` rows;
a lost update between two concurrent writers would show here.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.vocab import FAILED_OUTCOMES, sql_in


class Mismatch(NamedTuple):
    task_id: int
    stored: tuple[int, int, int]  # attempts, failed_attempts, attempts_logged
    rows: tuple[int, int, int]  # the same, counted from the attempt rows

    def __str__(self) -> str:
        names = ("attempts", "failed_attempts", "attempts_logged")
        parts = [f"{n} {a} (rows: {b})" for n, a, b in zip(names, self.stored, self.rows, strict=True) if a != b]
        return f"task {self.task_id}: " + ", ".join(parts)


COUNTED_ROWS = f"""
SELECT t.id, t.attempts, t.failed_attempts, t.attempts_logged,
       COALESCE(a.counted, 0), COALESCE(a.failed, 0), COALESCE(a.logged, 0)
FROM tasks t LEFT JOIN (
    SELECT task_id,
           SUM(CASE WHEN counted THEN 1 ELSE 0 END) AS counted,
           SUM(CASE WHEN counted AND outcome IN {sql_in(FAILED_OUTCOMES)} THEN 1 ELSE 0 END) AS failed,
           COUNT(*) AS logged
    FROM attempts GROUP BY task_id
) a ON a.task_id = t.id
WHERE t.attempts <> COALESCE(a.counted, 0) OR t.failed_attempts <> COALESCE(a.failed, 0)
   OR t.attempts_logged <> COALESCE(a.logged, 0)
ORDER BY t.id
"""


def mismatches(conn: Connection) -> list[Mismatch]:
    """Every task whose counters differ from its attempt rows (empty: all agree)."""
    return [Mismatch(row[0], tuple(map(int, row[1:4])), tuple(map(int, row[4:7])))  # type: ignore[arg-type]
            for row in conn.execute(text(COUNTED_ROWS))]
