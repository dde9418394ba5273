"""The report's figures as SQL aggregates, portable between SQLite and PostgreSQL.

Each figure family is one ``GROUP BY`` query over a subquery of the rows that
count (the period's due tasks, or the answers and attempts of calls made in the
period). Groupings that need bound parameters (day and period buckets) are
computed *inside* the subquery, so the outer ``GROUP BY`` only names plain
columns: PostgreSQL with server-side parameters would otherwise see the same
``CASE`` twice with different placeholders and refuse it.

Python only turns aggregate rows into dicts and divides; the two things SQL
cannot do portably are done on small aggregated inputs: the median time to
resolve an escalation (SQLite has no percentile) and the per-day calling span
(summed over the per-coordinator-per-day rows the query returns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from core import vocab
from core.db import models, rollups
from core.db.models import LEADS_PREDICATE
from core.vocab import TaskStatus

# The report reads tables, not mapped objects: a Core statement skips the ORM's compile step and the
# mappers' configuration (about a third of the report's own work, counted in instructions).
tasks, attempts, episodes, patients = (
    m.__table__ for m in (models.Task, models.Attempt, models.Episode, models.Patient))
answers, complaints, escalations = (m.__table__ for m in (models.Answer, models.Complaint, models.Escalation))
answer_days, call_days, report_settings, task_days = (
    m.__table__ for m in (models.AnswerDay, models.CallDay, models.ReportSettings, models.TaskDay))
answer_day_parts, call_day_parts, task_day_parts = (  # the rows bulk writers append beside them (0019)
    models.reports.answer_day_parts, models.reports.call_day_parts, models.reports.task_day_parts)

# what counts (task statuses, call outcomes): one definition for the rows and the day counts
REACHED, ANSWERED, NOT_DUE, CALL_REACHED = rollups.REACHED, rollups.ANSWERED, rollups.NOT_DUE, rollups.CALL_REACHED
UNREACHABLE_OUTCOMES = vocab.UNREACHABLE_OUTCOMES
OVERALL, RECOMMEND, PRAISE, CRITICISM, SUGGESTIONS = (
    "overall_satisfaction",
    "recommend",
    "staff_praise",
    "staff_criticism",
    "suggestions",
)
INTERRUPTION = "interruption_reason"
# The partial index ix_answers_interruptions holds only these answers (migration 0015); its predicate, stated
# word for word by the query that reads them (core/reports/followups.py).
INTERRUPTIONS_PREDICATE = f"question = '{INTERRUPTION}'"


@dataclass
class Scope:
    """Which rows a report looks at, and what the plugins say about questions and procedures."""

    sites: list[str]
    specialties: list[str] | None = None
    scale_questions: dict[str, list[str]] = field(
        default_factory=dict
    )  # specialty -> 1–5 scale question keys
    sales_procedures: list[tuple[str, str]] = field(
        default_factory=list
    )  # (specialty, procedure) bookable

    def call_filter(self) -> list[ColumnElement[bool]]:
        """Calls with answers (only a reached patient answers) of tasks in scope.

        By the attempt's own copy of the site and its outcome, both in the index
        ``(at, site, by, outcome)``: the planner starts from the period's calls and
        looks up answers only for the calls that can have some.
        """
        where = [attempts.c.site.in_(self.sites), attempts.c.outcome.in_(ANSWERED)]
        if self.specialties:
            where.append(tasks.c.specialty.in_(self.specialties))
        return where

    def task_filter(self) -> list[ColumnElement[bool]]:
        where = [tasks.c.site.in_(self.sites)]
        if self.specialties:
            where.append(tasks.c.specialty.in_(self.specialties))
        return where


def _int(value: Any) -> int:
    return int(value or 0)


def rate(numerator: float | None, denominator: float | None, digits: int = 4) -> float | None:
    """A fraction, or None when there is nothing to divide by (never an error, never a fake 0)."""
    if not denominator:
        return None
    return round((numerator or 0) / denominator, digits)


def _bucket(column: Any, boundaries: Sequence[datetime]) -> ColumnElement[Any]:
    """0, 1, 2… for the interval of ``boundaries`` the instant falls in.

    The rows are already restricted to [first, last) by the query. A balanced tree
    of ``CASE`` expressions: a month's 31 days take 5 comparisons per row, not 31.
    """

    def tree(lo: int, hi: int) -> Any:
        if hi - lo == 1:
            return literal(lo)
        mid = (lo + hi) // 2
        return case((column < boundaries[mid], tree(lo, mid)), else_=tree(mid, hi))

    return tree(0, len(boundaries) - 1)


def _text_of(session: Session, column: Any) -> ColumnElement[str]:
    """A JSON answer value as trimmed text, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.trim(column.op("#>>", return_type=String)(literal_column("'{}'")))
    return func.trim(func.json_extract(column, "$", type_=String))


# -- the period's due tasks ------------------------------------------------------------------------
def _due_where(scope: Scope, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    return [tasks.c.due_at >= start, tasks.c.due_at < end, tasks.c.status.notin_(NOT_DUE), *scope.task_filter()]


def _with_last_attempt(query: Any, pg: bool) -> tuple[Any, Any]:
    """``query`` (over tasks) outer-joined to each task's latest attempt, looked up by the
    ``attempts(task_id)`` index only for the rows that need it; returns (query, attempt columns).

    PostgreSQL takes a LATERAL subquery (joined on ``max(id)`` it hashes every attempt of the
    table); SQLite, which has no LATERAL, loops over the few candidate tasks either way.
    """
    if pg:
        latest = (
            select(attempts.c.by, attempts.c.outcome, attempts.c.at)
            .where(attempts.c.task_id == tasks.c.id)
            .order_by(attempts.c.id.desc())
            .limit(1)
            .lateral("last_attempt")
        )
        return query.outerjoin(latest, true()), latest.c
    last = attempts.alias("last_attempt")
    last_id = select(func.max(attempts.c.id)).where(attempts.c.task_id == tasks.c.id).correlate(tasks).scalar_subquery()
    return query.outerjoin(last, last.c.id == last_id), last.c


def due_rows(
    scope: Scope, start: datetime, end: datetime, *, last: bool = False, doctor: bool = False, pg: bool = False
) -> Subquery:
    """Tasks due in [start, end) that count (not cancelled, suppressed, expired).

    The attempt count is ``tasks.attempts_logged`` (every attempt, ``record_call`` keeps it); the latest
    attempt (``last``: by whom, how it ended) and the episode's doctor (``doctor``)
    are joined only for the breakdowns that group by them.
    """
    columns: list[Any] = [
        tasks.c.id.label("task_id"),
        tasks.c.episode_id,
        tasks.c.patient_id,
        tasks.c.status,
        tasks.c.site,
        tasks.c.specialty,
        tasks.c.procedure,
        tasks.c.milestone,
        tasks.c.due_at,
        tasks.c.completed_at,
        tasks.c.window_start,
        tasks.c.window_end,
        tasks.c.attempts_logged.label("n_attempts"),
    ]
    query = select(*columns).select_from(tasks)
    if last:
        query, latest = _with_last_attempt(query, pg)
        query = query.add_columns(latest.by.label("last_by"))
    if doctor:
        query = query.add_columns(episodes.c.doctor.label("doctor")).join(episodes, episodes.c.id == tasks.c.episode_id)
    return query.where(*_due_where(scope, start, end)).subquery("due")


def _reached_on_time(columns: Any) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    reached = columns.status.in_(REACHED)
    on_time = and_(
        reached, columns.completed_at >= columns.window_start, columns.completed_at <= columns.window_end
    )
    return reached, on_time


def _count_columns(columns: Any) -> list[Any]:
    """The aggregates behind ``COUNTS`` (and the attempts of reached tasks) over due-task rows."""
    reached, on_time = _reached_on_time(columns)
    return [
        func.count().label("due"),
        func.sum(case((columns.n_attempts > 0, 1), else_=0)).label("attempted"),
        func.sum(case((reached, 1), else_=0)).label("reached"),
        func.sum(case((on_time, 1), else_=0)).label("reached_in_window"),
        func.sum(case((columns.status == TaskStatus.UNSUCCESSFUL, 1), else_=0)).label("unsuccessful"),
        func.sum(case((columns.status == TaskStatus.REFUSED, 1), else_=0)).label("refused"),
        func.sum(case((columns.status == TaskStatus.WRONG_NUMBER, 1), else_=0)).label("wrong_number"),
        func.sum(case((columns.status == TaskStatus.OPEN, 1), else_=0)).label("open"),
        func.sum(case((reached, columns.n_attempts), else_=0)).label("reached_attempts"),
    ]


SALES = ("leads", "followed_up", "booked")


def rollup_days(session: Session, boundaries: Sequence[datetime]) -> list[date] | None:
    """The days of the per-day counts (core/db/rollups.py) the boundaries start, or None when one
    of them is not a midnight of those days (a summer-time change, another timezone): then the
    figures are counted from the rows."""
    minutes = session.execute(select(report_settings.c.offset_minutes).where(report_settings.c.id == 1)).scalar()
    return None if minutes is None else rollups.days_of(boundaries, minutes)


def _sum_columns(c: Any, names: Iterable[str]) -> list[Any]:
    return [func.sum(c[n]).label(n) for n in names]


def task_summary(
    session: Session, scope: Scope, boundaries: Sequence[datetime]
) -> dict[tuple[int, str], dict[str, int]]:
    """Every task count of consecutive periods, per (period index, site).

    From the per-day counts when the periods are whole days of them, else from the
    tasks in one grouped pass (:func:`task_summary_rows`); the same numbers either way.
    """
    days = rollup_days(session, boundaries)
    if days is None:
        return task_summary_rows(session, scope, boundaries)
    names = (*COUNTS, "reached_attempts")
    rows = _day_rows(task_days, task_day_parts, lambda c: _days_where(c, scope, days))
    inner = select(_bucket(rows.c.day, days).label("bucket"), rows.c.site, *(rows.c[n] for n in names)).subquery("days")
    query = select(inner.c.bucket, inner.c.site, *_sum_columns(inner.c, names)).group_by(inner.c.bucket, inner.c.site)
    out = {
        (int(row["bucket"]), row["site"]): {**{k: _int(row[k]) for k in names}, **dict.fromkeys(SALES, 0)}
        for row in session.execute(query).mappings()
    }
    for key, sales in _lead_summary(session, scope, boundaries).items():
        out.setdefault(key, {**dict.fromkeys(names, 0), **dict.fromkeys(SALES, 0)}).update(sales)
    return out


def _days_where(c: Any, scope: Scope, days: Sequence[date]) -> list[ColumnElement[bool]]:
    """A day table's (or its parts') rows of these days and the scope's sites and specialties."""
    where = [c.day >= days[0], c.day < days[-1], c.site.in_(scope.sites)]
    if scope.specialties:
        where.append(c.specialty.in_(scope.specialties))
    return where


def _day_rows(table: Any, parts: Any, where: Callable[[Any], list[ColumnElement[bool]]]) -> Any:
    """A day table's rows with the rows bulk writers appended beside it (core.db.rollups, migration 0019),
    each filtered by ``where(columns)``: what a report adds up (a key may have rows in both)."""
    return union_all(select(*table.c).where(*where(table.c)),
                     select(*parts.c).where(*where(parts.c))).subquery(table.name)


def _sales_pairs(scope: Scope) -> list[ColumnElement[bool]]:
    return [and_(tasks.c.specialty == s, tasks.c.procedure == p) for s, p in scope.sales_procedures]


def _lead_columns(c: Any) -> list[Any]:
    """Distinct lead episodes (``c.lead``): all, followed up (attempted), booked."""
    return [
        func.count(func.distinct(c.lead)).label("leads"),
        func.count(func.distinct(case((c.n_attempts > 0, c.lead), else_=None))).label("followed_up"),
        func.count(func.distinct(case((c.status == TaskStatus.BOOKED, c.lead), else_=None))).label("booked"),
    ]


def _lead_summary(
    session: Session, scope: Scope, boundaries: Sequence[datetime]
) -> dict[tuple[int, str], dict[str, int]]:
    """Sales leads per (period index, site): distinct episodes, from the lead tasks' own index."""
    pairs = _sales_pairs(scope)
    if not pairs:
        return {}
    inner = (
        select(
            _bucket(tasks.c.due_at, boundaries).label("bucket"),
            tasks.c.site,
            tasks.c.status,
            tasks.c.attempts_logged.label("n_attempts"),
            tasks.c.episode_id.label("lead"),
        )
        .where(text(LEADS_PREDICATE), or_(*pairs), *_due_where(scope, boundaries[0], boundaries[-1]))
        .subquery("leads")
    )
    c = inner.c
    query = select(
        c.bucket,
        c.site,
        *_lead_columns(c),
    ).group_by(c.bucket, c.site)
    return {
        (int(row["bucket"]), row["site"]): {k: _int(row[k]) for k in SALES}
        for row in session.execute(query).mappings()
    }


def task_summary_rows(
    session: Session, scope: Scope, boundaries: Sequence[datetime]
) -> dict[tuple[int, str], dict[str, int]]:
    """Every task count of consecutive periods, per (period index, site), in one grouped pass.

    ``boundaries`` are the periods' starts and the last one's end. The report's
    current and previous figures, its rows per site and its trend are all sums of
    these groups, so they agree with each other by construction. Sales leads are
    counted per episode (an episode belongs to one site, so per-site counts add up).
    """
    pairs = _sales_pairs(scope)
    sales = or_(*pairs) if pairs else false()
    inner = (
        select(
            _bucket(tasks.c.due_at, boundaries).label("bucket"),
            tasks.c.site,
            tasks.c.status,
            tasks.c.attempts_logged.label("n_attempts"),
            tasks.c.completed_at,
            tasks.c.window_start,
            tasks.c.window_end,
            case((sales, tasks.c.episode_id), else_=None).label("lead"),
        )
        .where(*_due_where(scope, boundaries[0], boundaries[-1]))
        .subquery("due")
    )
    c = inner.c
    query = select(
        c.bucket,
        c.site,
        *_count_columns(c),
        *_lead_columns(c),
    ).group_by(c.bucket, c.site)
    names = (*COUNTS, "reached_attempts", *SALES)
    return {
        (int(row["bucket"]), row["site"]): {k: _int(row[k]) for k in names}
        for row in session.execute(query).mappings()
    }


def add_counts(groups: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in groups:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def group_columns(base: Subquery, by: str, *, answers: bool = False) -> list[Any]:
    """The plain columns of ``base`` a breakdown (``--by``) groups by."""
    names = {
        "site": ("site",),
        "specialty": ("specialty",),
        "procedure": ("specialty", "procedure"),
        "coordinator": ("by" if answers else "last_by",),
        "staff": ("doctor",),
    }[by]
    return [base.c[name] for name in names]


def task_figures(session: Session, base: Subquery, by: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Due, attempted, reached… per group of ``due_rows``."""
    groups = group_columns(base, by)
    query = select(*groups, *_count_columns(base.c)).select_from(base).group_by(*groups)
    return {
        tuple(row[g.name] for g in groups): headline({k: _int(row[k]) for k in (*COUNTS, "reached_attempts")})
        for row in session.execute(query).mappings()
    }


# The task counts of a period; every rate is computed from them (docs/metrics.md).
COUNTS = ("due", "attempted", "reached", "reached_in_window", "unsuccessful", "refused", "wrong_number", "open")


def headline(counts: dict[str, int]) -> dict[str, Any]:
    c = {k: counts.get(k, 0) for k in COUNTS}
    return {
        **c,
        "coverage": rate(c["attempted"], c["due"]),
        "follow_up_rate": rate(c["reached"], c["due"]),
        "on_time_rate": rate(c["reached_in_window"], c["reached"]),
        "avg_attempts_per_reached": rate(counts.get("reached_attempts", 0), c["reached"], 2),
    }


# -- answers of calls made in the period -----------------------------------------------------------
def answer_rows(
    session: Session, scope: Scope, start: datetime, end: datetime, *, doctor: bool = False
) -> Subquery:
    """The answers given in calls made in [start, end), with the task's site and procedure."""
    columns: list[Any] = [
        answers.c.task_id,
        answers.c.question,
        func.coalesce(answers.c.dimension, answers.c.question).label("dimension"),
        answers.c.number,
        _text_of(session, answers.c.value).label("text"),
        attempts.c.by,
        attempts.c.at,
        tasks.c.site,
        tasks.c.specialty,
        tasks.c.procedure,
        tasks.c.patient_id,
    ]
    query = (
        select(*columns)
        .select_from(answers)
        .join(attempts, attempts.c.id == answers.c.attempt_id)
        .join(tasks, tasks.c.id == answers.c.task_id)
    )
    if doctor:
        query = query.add_columns(episodes.c.doctor.label("doctor")).join(episodes, episodes.c.id == tasks.c.episode_id)
    return query.where(attempts.c.at >= start, attempts.c.at < end, *scope.call_filter()).subquery("ans")


SCORES = ("n", "total", "top2", "promoters", "detractors")


def _scale_and_headline_questions(scope: Scope) -> list[str]:
    return sorted({OVERALL, RECOMMEND, *(k for keys in scope.scale_questions.values() for k in keys)})


def _score_groups(rows: Iterable[Any]) -> dict[tuple[int, str, str, str, str], dict[str, float]]:
    """Rows of (bucket, site, specialty, question, dimension, n, total, top2, promoters, detractors)
    keyed by the first five."""
    return {
        (int(row["bucket"]), row["site"], row["specialty"], row["question"], row["dimension"]): {
            "n": _int(row["n"]),
            "total": float(row["total"] or 0),
            "top2": _int(row["top2"]),
            "promoters": _int(row["promoters"]),
            "detractors": _int(row["detractors"]),
        }
        for row in rows
    }


def answer_summary(
    session: Session, scope: Scope, boundaries: Sequence[datetime]
) -> dict[tuple[int, str, str, str, str], dict[str, float]]:
    """The scored answers of consecutive periods: from the per-day counts when the periods are
    whole days of them, else from the answers (:func:`answer_summary_rows`)."""
    days = rollup_days(session, boundaries)
    if days is None:
        return answer_summary_rows(session, scope, boundaries)
    questions = _scale_and_headline_questions(scope)
    A = _day_rows(answer_days, answer_day_parts,
                  lambda c: [*_days_where(c, scope, days), c.question.in_(questions)]).c
    inner = select(_bucket(A.day, days).label("bucket"), A.site, A.specialty, A.question, A.dimension,
                   *(A[n] for n in SCORES)).subquery("days")
    c = inner.c
    query = (
        select(c.bucket, c.site, c.specialty, c.question, c.dimension, *_sum_columns(c, SCORES))
        .group_by(c.bucket, c.site, c.specialty, c.question, c.dimension)
        .having(func.sum(c.n) > 0)
    )
    return _score_groups(session.execute(query).mappings())


def answer_summary_rows(
    session: Session, scope: Scope, boundaries: Sequence[datetime]
) -> dict[tuple[int, str, str, str, str], dict[str, float]]:
    """The scored answers of consecutive periods in one grouped pass.

    Per (period index, site, specialty, question, dimension): how many answers,
    their sum, how many 4–5 (top-2-box on a 1–5 scale), 9–10 and 0–6 (NPS). The
    overall satisfaction rate, NPS and satisfaction per dimension of every period
    and site are sums of these groups.
    """
    questions = _scale_and_headline_questions(scope)
    inner = (
        select(
            _bucket(attempts.c.at, boundaries).label("bucket"),
            tasks.c.site,
            tasks.c.specialty,
            answers.c.question,
            func.coalesce(answers.c.dimension, answers.c.question).label("dimension"),
            answers.c.number,
        )
        .select_from(attempts)
        .join(answers, answers.c.attempt_id == attempts.c.id)
        .join(tasks, tasks.c.id == answers.c.task_id)
        .where(
            attempts.c.at >= boundaries[0],
            attempts.c.at < boundaries[-1],
            answers.c.number.is_not(None),
            answers.c.question.in_(questions),
            *scope.call_filter(),
        )
        .subquery("ans")
    )
    c = inner.c
    query = select(
        c.bucket,
        c.site,
        c.specialty,
        c.question,
        c.dimension,
        func.count().label("n"),
        func.sum(c.number).label("total"),
        func.sum(case((c.number >= 4, 1), else_=0)).label("top2"),
        func.sum(case((c.number >= 9, 1), else_=0)).label("promoters"),
        func.sum(case((c.number <= 6, 1), else_=0)).label("detractors"),
    ).group_by(c.bucket, c.site, c.specialty, c.question, c.dimension)
    return _score_groups(session.execute(query).mappings())


def scores_headline(groups: Iterable[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """Overall satisfaction rate and NPS from ``(question, scores)`` groups of ``answer_summary``."""
    overall_n = overall_top2 = nps_n = promoters = detractors = 0
    for question, scores in groups:
        if question == OVERALL:
            overall_n += int(scores["n"])
            overall_top2 += int(scores["top2"])
        elif question == RECOMMEND:
            nps_n += int(scores["n"])
            promoters += int(scores["promoters"])
            detractors += int(scores["detractors"])
    return nps_figures(overall_n, overall_top2, nps_n, promoters, detractors)


def satisfaction_rows(scope: Scope, groups: Iterable[tuple[str, str, str, dict[str, float]]]) -> list[dict[str, Any]]:
    """n, mean and top-2-box per dimension of the 1–5 scale questions, from
    ``(specialty, question, dimension, scores)`` groups of ``answer_summary``."""
    scale = {(s, k) for s, keys in scope.scale_questions.items() for k in keys}
    per: dict[str, list[float]] = {}
    for specialty, question, dimension, scores in groups:
        if (specialty, question) not in scale:
            continue
        entry = per.setdefault(dimension, [0, 0.0, 0])
        entry[0] += scores["n"]
        entry[1] += scores["total"]
        entry[2] += scores["top2"]
    rows = [
        {
            "dimension": dimension,
            "n": int(n),
            "mean": round(total / n, 2) if n else None,
            "top2": int(top2),
            "top2_rate": rate(top2, n),
            "small_sample": n < 30,
        }
        for dimension, (n, total, top2) in per.items()
    ]
    rows.sort(key=lambda r: (r["dimension"] != "overall", r["dimension"]))
    return rows


def answer_headline(session: Session, base: Subquery, by: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Overall satisfaction rate and NPS per group of ``answer_rows``."""
    groups = group_columns(base, by, answers=True)
    is_overall, is_recommend = base.c.question == OVERALL, base.c.question == RECOMMEND
    query = select(
        *groups,
        func.sum(case((is_overall, 1), else_=0)).label("overall_n"),
        func.sum(case((and_(is_overall, base.c.number >= 4), 1), else_=0)).label("overall_top2"),
        func.sum(case((is_recommend, 1), else_=0)).label("nps_n"),
        func.sum(case((and_(is_recommend, base.c.number >= 9), 1), else_=0)).label("promoters"),
        func.sum(case((and_(is_recommend, base.c.number <= 6), 1), else_=0)).label("detractors"),
    ).where(base.c.number.is_not(None), base.c.question.in_((OVERALL, RECOMMEND)))
    return {
        tuple(row[g.name] for g in groups): nps_figures(
            _int(row["overall_n"]),
            _int(row["overall_top2"]),
            _int(row["nps_n"]),
            _int(row["promoters"]),
            _int(row["detractors"]),
        )
        for row in session.execute(query.group_by(*groups)).mappings()
    }


def nps_figures(
    overall_n: int, overall_top2: int, nps_n: int, promoters: int, detractors: int
) -> dict[str, Any]:
    """The answer figures of the headline: the counts behind them stay out of the report."""
    nps = round((promoters - detractors) * 100 / nps_n, 1) if nps_n else None
    return {
        "satisfaction_n": overall_n,
        "overall_satisfaction_rate": rate(overall_top2, overall_n),
        "nps_n": nps_n,
        "nps": nps,
    }


def text_answers(session: Session, base: Subquery) -> list[Any]:
    """The period's staff praise, criticism and suggestions (non-empty), oldest first, with the patient."""
    query = (
        select(
            base.c.question,
            base.c.task_id,
            base.c.at,
            base.c.site,
            base.c.text,
            patients.c.external_id,
            patients.c.name,
            patients.c.phone,
        )
        .join(patients, patients.c.id == base.c.patient_id)
        .where(
            base.c.question.in_((PRAISE, CRITICISM, SUGGESTIONS)), base.c.text.is_not(None), base.c.text != ""
        )
        .order_by(base.c.at, base.c.task_id)
    )
    return list(session.execute(query).all())


def staff_from_answers(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Praise and criticism per distinct trimmed text naming a staff member, from the rows of
    ``text_answers``: most praised first."""
    counts: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.question in (PRAISE, CRITICISM):
            entry = counts.setdefault(row.text, {"staff": row.text, "praise": 0, "criticism": 0})
            entry["praise" if row.question == PRAISE else "criticism"] += 1
    return sorted(counts.values(), key=lambda r: (-r["praise"], -r["criticism"], r["staff"]))


# -- complaints and escalations --------------------------------------------------------------------
def _specialty_tasks(scope: Scope, column: Any) -> list[ColumnElement[bool]]:
    if not scope.specialties:
        return []
    return [column.in_(select(tasks.c.id).where(tasks.c.specialty.in_(scope.specialties)))]


def complaint_figures(
    session: Session, scope: Scope, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    where = [
        complaints.c.opened_at >= start,
        complaints.c.opened_at < end,
        complaints.c.site.in_(scope.sites),
        *_specialty_tasks(scope, complaints.c.task_id),
    ]
    on_time = and_(complaints.c.responded_at.is_not(None), complaints.c.responded_at <= complaints.c.due_at)
    overdue = and_(
        complaints.c.status != "closed", complaints.c.responded_at.is_(None), complaints.c.due_at < now
    )
    row = (
        session.execute(
            select(
                func.count().label("opened"),
                func.sum(case((on_time, 1), else_=0)).label("responded_within_3d"),
                func.sum(case((overdue, 1), else_=0)).label("overdue"),
                func.sum(case((complaints.c.status == "closed", 1), else_=0)).label("closed"),
            ).where(*where)
        )
        .mappings()
        .one()
    )
    # One call's complaint counts under each of its categories (core/calls.py merges them; issue 14 item 14).
    per_category: dict[str, int] = {}
    for category, several in session.execute(select(complaints.c.category, complaints.c.categories).where(*where)):
        for c in dict.fromkeys(several or [category]):
            per_category[c] = per_category.get(c, 0) + 1
    categories = list(per_category.items())
    opened = _int(row["opened"])
    return {
        "opened": opened,
        "responded_within_3d": _int(row["responded_within_3d"]),
        "responded_within_3d_rate": rate(row["responded_within_3d"], opened),
        "overdue": _int(row["overdue"]),
        "closed": _int(row["closed"]),
        "by_category": [
            {"category": c, "opened": _int(n)}
            for c, n in sorted(categories, key=lambda x: (-x[1], x[0]))
        ],
    }


def escalation_figures(
    session: Session, scope: Scope, start: datetime, end: datetime, now: datetime | None = None
) -> dict[str, Any]:
    where = [
        escalations.c.opened_at >= start,
        escalations.c.opened_at < end,
        escalations.c.site.in_(scope.sites),
        *_specialty_tasks(scope, escalations.c.task_id),
    ]
    resolved = escalations.c.resolved_at.is_not(None)
    # Past its deadline and not resolved when the report was made (core/escalations.py).
    e = escalations.c
    overdue = and_(e.status != "resolved", e.due_at.is_not(None), e.due_at < (now or end))
    row = session.execute(
        select(
            func.count().label("opened"), func.sum(case((resolved, 1), else_=0)).label("resolved"),
            func.sum(case((overdue, 1), else_=0)).label("overdue"),
        ).where(*where)
    ).one()
    spans = session.execute(
        select(escalations.c.opened_at, escalations.c.resolved_at).where(*where, resolved)
    ).all()
    hours = [(done - opened).total_seconds() / 3600 for opened, done in spans]
    return {
        "opened": _int(row[0]),
        "resolved": _int(row[1]),
        "overdue": _int(row[2]),
        "median_hours_to_resolve": round(_median(hours), 1) if hours else None,
    }


# the patient of a complaint's or an escalation's row, under names no column of theirs has
_PATIENT_OF_ROW = (patients.c.external_id.label("patient_external_id"), patients.c.name.label("patient_name"),
                   patients.c.phone.label("patient_phone"))


def open_complaints(
    session: Session, scope: Scope, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    query = (
        select(complaints, *_PATIENT_OF_ROW)
        .join(patients, patients.c.id == complaints.c.patient_id)
        .where(
            complaints.c.status != "closed",
            complaints.c.opened_at < end,
            complaints.c.site.in_(scope.sites),
            *_specialty_tasks(scope, complaints.c.task_id),
        )
        .order_by(complaints.c.due_at, complaints.c.id)
    )
    return [
        {
            "complaint": c,  # a row: the complaint's columns by name
            "patient_id": c.patient_external_id,
            "patient_name": c.patient_name,
            "phone": c.patient_phone,
            "overdue": c.responded_at is None and c.due_at < now,
        }
        for c in session.execute(query)
    ]


def open_escalations(
    session: Session, scope: Scope, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    """Escalations not resolved when the report is made, opened before the period ended: overdue first."""
    query = (
        select(escalations, *_PATIENT_OF_ROW)
        .join(patients, patients.c.id == escalations.c.patient_id)
        .where(
            escalations.c.status != "resolved",
            escalations.c.opened_at < end,
            escalations.c.site.in_(scope.sites),
            *_specialty_tasks(scope, escalations.c.task_id),
        )
        .order_by(escalations.c.due_at, escalations.c.id)
    )
    rows = [
        {
            "escalation": e,  # a row: the escalation's columns by name
            "patient_id": e.patient_external_id,
            "patient_name": e.patient_name,
            "phone": e.patient_phone,
            "overdue": e.due_at is not None and e.due_at < now,
        }
        for e in session.execute(query)
    ]
    return sorted(rows, key=lambda r: not r["overdue"])


# -- sales, coordinators, unreachable --------------------------------------------------------------
def sales_figures(counts: dict[str, int]) -> dict[str, Any]:
    """Leads counted per episode: a lead with two calls in the period is one lead."""
    leads, followed, booked = (counts.get(k, 0) for k in SALES)
    return {
        "leads": leads,
        "followed_up": followed,
        "booked": booked,
        "conversion_rate": rate(booked, followed),
        "small_sample": followed < 30,
    }


def coordinator_figures(
    session: Session, scope: Scope, day_starts: Sequence[datetime]
) -> list[dict[str, Any]]:
    """Attempts and reached calls per coordinator; calling hours = per-day spans (min 1 h).

    From the per-day counts when the days are theirs, else from the calls.
    """
    days = rollup_days(session, day_starts)
    if days is None:
        query = _coordinator_rows(scope, day_starts)
    else:
        C = _day_rows(call_days, call_day_parts, lambda c: _days_where(c, scope, days)).c
        query = (
            select(
                C.by,
                C.day,
                func.sum(C.attempts).label("attempts"),
                func.sum(C.reached).label("reached"),
                func.min(C.first_at).label("first"),
                func.max(C.last_at).label("last"),
            )
            .group_by(C.by, C.day)
            .having(func.sum(C.attempts) > 0)
        )
    return _coordinator_totals(session, query)


def _coordinator_rows(scope: Scope, day_starts: Sequence[datetime]) -> Any:
    """The calls per coordinator and day, counted from the calls."""
    start, end = day_starts[0], day_starts[-1]
    base = select(
        attempts.c.by, attempts.c.at, attempts.c.outcome, _bucket(attempts.c.at, day_starts).label("day")
    ).where(attempts.c.at >= start, attempts.c.at < end, attempts.c.site.in_(scope.sites))
    if scope.specialties:  # else the index (at, site, by, outcome) alone answers it
        base = base.join(tasks, tasks.c.id == attempts.c.task_id).where(tasks.c.specialty.in_(scope.specialties))
    base = base.subquery("calls")
    query = select(
        base.c.by,
        base.c.day,
        func.count().label("attempts"),
        func.sum(case((base.c.outcome.in_(CALL_REACHED), 1), else_=0)).label("reached"),
        func.min(base.c.at).label("first"),
        func.max(base.c.at).label("last"),
    ).group_by(base.c.by, base.c.day)
    return query


def _hours(session: Session, first: Any, last: Any) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", last - first) / 3600.0
    return (func.julianday(last) - func.julianday(first)) * 24.0


def _coordinator_totals(session: Session, per_day: Any) -> list[dict[str, Any]]:
    """Per coordinator: the sums of ``per_day`` (by, day, attempts, reached, first, last) and the
    calling hours, each day's span from the first call to the last, at least 1 h; in SQL."""
    d = per_day.subquery("per_day")
    span = _hours(session, d.c.first, d.c.last)
    query = select(
        d.c.by,
        func.sum(d.c.attempts).label("attempts"),
        func.sum(d.c.reached).label("reached"),
        func.sum(case((span > 1.0, span), else_=1.0)).label("hours"),
    ).group_by(d.c.by)
    out = []
    for by, calls, reached, hours in session.execute(query).all():
        hours = float(hours or 0)
        out.append({
            "coordinator": by,
            "attempts": _int(calls),
            "reached": _int(reached),
            "calling_hours": round(hours, 2),
            "calls_per_hour": rate(_int(calls), hours, 2),
        })
    out.sort(key=lambda e: (-e["attempts"], e["coordinator"]))
    return out


def unreachable(session: Session, scope: Scope, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    """Due tasks given up as unsuccessful, or still open after an unreachable last call.

    Rows: task id, site, specialty, procedure, milestone, due, status, attempts, the patient's
    id, name and phone, the last call's outcome and time. The latest attempt is looked up only
    for the tasks that could be on the list (unsuccessful, or open with at least one attempt).
    On PostgreSQL the patients come in a second query by id: joined, the planner hashes the
    whole patients table for a few thousand rows.
    """
    pg = session.get_bind().dialect.name == "postgresql"
    t = tasks.c
    task_columns = (t.id, t.site, t.specialty, t.procedure, t.milestone, t.due_at, t.status, t.attempts)
    patient_columns = (patients.c.external_id, patients.c.name, patients.c.phone)
    query = select(*task_columns, *((tasks.c.patient_id,) if pg else patient_columns)).select_from(tasks)
    if not pg:
        query = query.join(patients, patients.c.id == tasks.c.patient_id)
    query, latest = _with_last_attempt(query, pg)
    query = (
        query.add_columns(latest.outcome, latest.at)
        .where(
            *_due_where(scope, start, end),
            tasks.c.status.in_((TaskStatus.UNSUCCESSFUL, TaskStatus.OPEN)),
            tasks.c.attempts > 0,
            or_(tasks.c.status == TaskStatus.UNSUCCESSFUL, latest.outcome.in_(UNREACHABLE_OUTCOMES)),
        )
        .order_by(tasks.c.site, tasks.c.due_at, tasks.c.id)
    )
    rows = [tuple(row) for row in session.execute(query).all()]
    if not pg or not rows:
        return rows
    ids = sorted({row[8] for row in rows})
    by_id = {
        pid: rest
        for pid, *rest in session.execute(
            select(patients.c.id, *patient_columns)
            .where(patients.c.id == any_(bindparam("ids", ids, type_=ARRAY(Integer))))
        ).all()
    }
    return [(*row[:8], *by_id[row[8]], *row[9:]) for row in rows]


def channel_figures(session: Session, sites: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per message channel in a period: sent, delivered, failed, answered (questionnaires) and the response rate.

    ``sent``: messages that left in the period (a delivered one was sent first); ``failed``: messages
    queued in the period that ended failed; ``answered``: questionnaires submitted in the period from a
    message of the channel; ``response_rate`` = answered / sent.
    """
    from sqlalchemy import and_, case, func, select

    from core.db.models import OutboxMessage

    outbox = OutboxMessage.__table__
    from core.vocab import MessageStatus as MS

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    in_period = (lambda column: and_(column >= start, column < end))  # noqa: E731
    rows = session.execute(
        select(outbox.c.channel, count(in_period(outbox.c.sent_at)),
               count(in_period(outbox.c.delivered_at)),
               count(and_(outbox.c.status == MS.FAILED, in_period(outbox.c.queued_at))),
               count(in_period(outbox.c.answered_at)))
        .where(outbox.c.site.in_(sites))
        .group_by(outbox.c.channel).order_by(outbox.c.channel)
    ).all()
    out = []
    for channel, sent, delivered, failed, answered in rows:
        sent, delivered, failed, answered = (int(v or 0) for v in (sent, delivered, failed, answered))
        if sent or delivered or failed or answered:
            out.append({"channel": channel, "sent": sent, "delivered": delivered, "failed": failed,
                        "answered": answered, "response_rate": rate(answered, sent)})
    return out


def _median(values: list[float]) -> float:
    """statistics.median, without importing statistics (and fractions, decimal) into every report."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
