"""One report as one plain dict: the JSON shape every format is rendered from.

Every renderer (table, JSON, CSV, XLSX, HTML) reads this dict and nothing else,
so the same figure has the same value in every format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from core.config import ChainConfig
from core.privacy import mask_phone, scrub_phones
from core.reports import queries as q
from core.reports.followups import followup_figures, qa_by_coordinator
from core.reports.labels import CATEGORIES, DIMENSIONS, OUTCOMES, definitions, label, localized
from core.reports.period import Period
from core.tasklist import local_iso
from core.vocab import SALES_TRIGGERS  # the tasks of these episodes have their own index

# Sales follow-ups (DOMAIN.md §1): leads who consulted but never came, and visits that did not buy.
# Other bookable procedures (a dental invitation, a missed appointment) rebook patients, not leads.
HEADLINE_RATES = (
    "coverage",
    "follow_up_rate",
    "on_time_rate",
    "avg_attempts_per_reached",
    "overall_satisfaction_rate",
    "nps",
)
RATE_BASES = {
    "coverage": "due",
    "follow_up_rate": "due",
    "on_time_rate": "reached",
    "avg_attempts_per_reached": "reached",
    "overall_satisfaction_rate": "satisfaction_n",
    "nps": "nps_n",
}


@dataclass
class ReportRequest:
    period: Period
    scope: q.Scope
    by: str | None
    locale: str
    now: datetime
    # Periods in the trend, the report's own included (the HTML chart's; 0: no trend). Each
    # period adds its tasks and answers to the two grouped passes (docs/performance.md).
    trend: int = 0
    user: str | None = None  # who asks: core/access.py checks every site of the scope (None: a trusted caller)


def scope_from_plugins(plugins: Any, sites: list[str], specialties: list[str] | None) -> q.Scope:
    """The 1–5 scale questions and the sales procedures, as the installed plugins define them.

    ``plugins`` may be a function returning them (core.plugins.LazyPlugins): the catalogue then comes from
    the per-user cache while core and the plugins are unchanged."""
    found = report_catalogue(plugins)
    return q.Scope(
        sites=sites,
        specialties=specialties or None,
        scale_questions={k: sorted(v) for k, v in found["scale"].items()},
        sales_procedures=sorted(tuple(s) for s in found["sales"]),
    )


def report_catalogue(plugins: Any) -> dict[str, Any]:
    """``{"specialties": [...], "scale": {specialty: [question, ...]}, "sales": [[specialty, procedure], ...]}``."""
    if callable(plugins):
        from core import cache
        from core.config import plugins_key

        key = plugins_key() if cache.folder() is not None else None
        stored = cache.get("report-catalogue", key) if key is not None else None
        if isinstance(stored, dict) and {"specialties", "scale", "sales"} <= set(stored):
            return stored
        found = _report_catalogue(plugins())
        if key is not None:
            cache.put("report-catalogue", key, found)
        return found
    return _report_catalogue(plugins)


def _report_catalogue(plugins: Any) -> dict[str, Any]:
    scale: dict[str, set[str]] = {}
    sales: list[tuple[str, str]] = []
    for key, (_, spec) in plugins.specialties().items():
        keys = scale.setdefault(key, set())
        for proc in spec.procedures:
            if proc.allows_booking and proc.trigger in SALES_TRIGGERS:
                sales.append((key, proc.code))
            for _, milestone in plugins.milestones(key, proc.code):
                for question in plugins.questions(key, proc.code, milestone.key).values():
                    if question.type == "scale" and question.min == 1 and question.max == 5:
                        keys.add(question.key)
    return {"specialties": list(plugins.specialties()), "scale": {k: sorted(v) for k, v in scale.items()},
            "sales": [list(s) for s in sorted(sales)]}


def _figures(counts: dict[str, int], scores: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one period (or one site) from its task counts and answer scores."""
    return {**q.headline(counts), **scores}


def _headline_figures(counts: dict[str, int], scores: dict[str, Any]) -> dict[str, Any]:
    figures = _figures(counts, scores)
    figures["small_sample"] = {name: figures[RATE_BASES[name]] < 30 for name in HEADLINE_RATES}
    return figures


@dataclass
class Summary:
    """The task counts and answer scores of the trend's periods, the current one last."""

    tasks: dict[tuple[int, str], dict[str, int]]
    answers: dict[tuple[int, str, str, str, str], dict[str, float]]

    def __post_init__(self) -> None:
        # per (period, site): a report asks for every site's figures, each in one lookup
        self._answers: dict[tuple[int, str], list[tuple[str, str, str, dict[str, float]]]] = {}
        for (b, s, spec, question, dim), v in self.answers.items():
            self._answers.setdefault((b, s), []).append((spec, question, dim, v))

    def counts(self, bucket: int, site: str | None = None) -> dict[str, int]:
        if site is not None:
            return dict(self.tasks.get((bucket, site), {}))
        return q.add_counts(c for (b, _), c in self.tasks.items() if b == bucket)

    def _answer_groups(self, bucket: int, site: str | None) -> list[tuple[str, str, str, dict[str, float]]]:
        if site is not None:
            return self._answers.get((bucket, site), [])
        return [g for (b, _), groups in self._answers.items() if b == bucket for g in groups]

    def scores(self, bucket: int, site: str | None = None) -> dict[str, Any]:
        return q.scores_headline((question, v) for _, question, _, v in self._answer_groups(bucket, site))

    def satisfaction(self, scope: q.Scope, bucket: int) -> list[dict[str, Any]]:
        return q.satisfaction_rows(scope, self._answer_groups(bucket, None))


def summarize(session: Session, req: ReportRequest) -> tuple[list[Period], Summary]:
    """The report's period, the one before and the trend's: their figures in two grouped queries.

    The periods come oldest first, the report's own last.
    """
    count = max(2, req.trend)
    periods = [req.period.shifted(i) for i in range(-(count - 1), 1)]
    bounds = [p.start for p in periods] + [cutoff(req.period, req.now)]
    return periods, Summary(
        q.task_summary(session, req.scope, bounds), q.answer_summary(session, req.scope, bounds)
    )


def running(period: Period, now: datetime) -> bool:
    """A period not over yet: its figures are of the tasks due so far."""
    return period.start <= now < period.end


def cutoff(period: Period, now: datetime) -> datetime:
    """Where a period's due tasks end: its end, or ``now`` while it is still running (not-yet-due tasks are
    not late, so they do not lower the rates)."""
    return min(period.end, now) if period.start <= now else period.end


def _delta(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("due", "reached", *HEADLINE_RATES):
        a, b = now.get(name), before.get(name)
        out[name] = None if a is None or b is None else round(a - b, 1 if name == "nps" else 4)
    return out


def build_report(
    session: Session, config: ChainConfig, plugins: Any, req: ReportRequest
) -> dict[str, Any]:
    from core import access

    access.sites_for(config, req.user, access.REPORTS, req.scope.sites)  # each site the user's to read
    period, scope, locale, now = req.period, req.scope, req.locale, req.now
    tz = period.tz
    periods, summary = summarize(session, req)
    current, before = len(periods) - 1, len(periods) - 2
    counts = summary.counts(current)
    figures = _headline_figures(counts, summary.scores(current))
    previous = _headline_figures(summary.counts(before), summary.scores(before))
    texts = q.text_answers(session, q.answer_rows(session, scope, period.start, period.end))
    staff = q.staff_from_answers(texts)

    satisfaction = [
        {**row, "label": label(row["dimension"], locale, DIMENSIONS)}
        for row in summary.satisfaction(scope, current)
    ]
    complaints = q.complaint_figures(session, scope, period.start, period.end, now)
    for row in complaints["by_category"]:
        row["label"] = label(row["category"], locale, CATEGORIES)
    staff_names = {s.username: s.name for s in config.model.staff}
    qa = qa_by_coordinator(session, scope, period.start, period.end)
    coordinators = [
        {**row, "name": staff_names.get(row["coordinator"], row["coordinator"]),
         **qa.get(row["coordinator"], {"qa_reviewed": 0, "qa_avg_score": None})}
        for row in q.coordinator_figures(session, scope, period.day_starts())
    ]

    is_running = running(period, now)
    return {
        "period": {
            **period.as_dict(),
            # still running: figures count the tasks due by "through" (now), not the whole period
            "running": is_running,
            "through": now.astimezone(tz).isoformat(timespec="minutes") if is_running else None,
            "previous": period.previous().label,
            "generated_at": now.astimezone(tz).isoformat(timespec="minutes"),
            "sites": scope.sites,
            "specialties": scope.specialties or [],
            "by": req.by,
            "locale": locale,
            "title": label(f"report_{period.kind}", locale),
            "chain": localized(config.model.name, locale),
        },
        "figures": figures,
        "previous": previous,
        "delta": _delta(figures, previous),
        "satisfaction": satisfaction,
        "complaints": complaints,
        "escalations": q.escalation_figures(session, scope, period.start, period.end, now),
        # messages per channel (core/outbox.py): sent, delivered, failed, answered, response rate
        "channels": _channel_rows(session, scope, period),
        # free text: a number typed in the praise or criticism answer is masked like any other
        "staff": [{**row, "staff": scrub_phones(row["staff"])} for row in staff],
        "sales": q.sales_figures(counts),
        "coordinators": coordinators,
        "followups": followup_figures(session, scope, period.start, period.end),
        "lists": {
            "unreachable": _unreachable_list(session, scope, period, locale, plugins, now),
            "suggestions": _suggestion_list(texts, tz),
            "open_complaints": _complaint_list(session, scope, period, now, locale),
            "open_escalations": _escalation_list(session, scope, period, now),
        },
        "breakdown": breakdown(session, config, plugins, req, staff) if req.by else [],
        "sites": _site_rows(config, req, summary, current),
        "trend": [
            {"period": p.label, "first_day": p.first.isoformat(), "last_day": p.last.isoformat(),
             **_figures(summary.counts(i), summary.scores(i))}
            for i, p in enumerate(periods)
            if i >= len(periods) - req.trend
        ],
        "definitions": definitions(locale),
    }


def _channel_rows(session: Session, scope: q.Scope, period: Any) -> list[dict[str, Any]]:
    return q.channel_figures(session, scope.sites, period.start, period.end)


# -- breakdowns ------------------------------------------------------------------------------------
def _group_label(
    config: ChainConfig, plugins: Any, by: str, key: tuple[Any, ...], locale: str
) -> tuple[str, str]:
    """The stable key of a group and its label in the locale."""
    if by == "site":
        code = key[0]
        return code, localized(config.sites[code].name, locale) if code in config.sites else code
    if by == "specialty":
        spec = plugins.specialty(key[0])
        return key[0], localized(spec.names, locale) if spec else key[0]
    if by == "procedure":
        spec = plugins.specialty(key[0])
        proc = spec.procedure(key[1]) if spec else None
        return f"{key[0]}.{key[1]}", localized(proc.names, locale) if proc else key[1]
    if by == "coordinator":
        if key[0] is None:
            return "", label("unassigned", locale)
        staff = config.staff(key[0])
        return key[0], staff.name if staff else key[0]
    value = key[0] or ""
    return value, value or "—"


def breakdown(
    session: Session,
    config: ChainConfig,
    plugins: Any,
    req: ReportRequest,
    staff_counts: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The headline figures per group; ``by == "staff"`` adds each doctor's row of ``staff_counts``
    (the report's praise and criticism per text, ``queries.staff_from_answers``)."""
    by = req.by
    assert by is not None
    start, end = req.period.start, cutoff(req.period, req.now)
    pg = session.get_bind().dialect.name == "postgresql"
    base = q.due_rows(req.scope, start, end, last=by == "coordinator", doctor=by == "staff", pg=pg)
    answers = q.answer_rows(session, req.scope, start, end, doctor=by == "staff")
    tasks = q.task_figures(session, base, by)
    scores = q.answer_headline(session, answers, by)
    empty_scores = q.nps_figures(0, 0, 0, 0, 0)
    staff = {r["staff"]: r for r in staff_counts}
    rows = []
    for key in sorted(
        set(tasks) | set(scores), key=lambda k: tuple("" if v is None else str(v) for v in k)
    ):
        if by == "coordinator" and key == (None,) and key not in tasks:
            continue
        stable, text = _group_label(config, plugins, by, key, req.locale)
        figures = {**(tasks.get(key) or q.headline({})), **scores.get(key, empty_scores)}
        row = {"by": by, "key": stable, "label": text, **figures}
        if by == "staff":
            named = staff.get(stable, {})
            row.update(praise=named.get("praise", 0), criticism=named.get("criticism", 0))
        rows.append(row)
    return rows


def _site_rows(config: ChainConfig, req: ReportRequest, summary: Summary, bucket: int) -> list[dict]:
    """Follow-up by site for the HTML bar chart: one row per site in scope, zeros included."""
    rows = []
    for code in req.scope.sites:
        name = localized(config.sites[code].name, req.locale) if code in config.sites else code
        figures = _figures(summary.counts(bucket, code), summary.scores(bucket, code))
        rows.append({"key": code, "label": name, **figures})
    return rows


# -- lists -----------------------------------------------------------------------------------------
def _who(r: Any) -> dict[str, Any]:
    """The task and patient columns the unreachable and suggestion lists start with; phone masked."""
    return {
        "task_id": r.task_id,
        "patient_id": r.external_id,
        "patient_name": r.name,
        "phone": mask_phone(r.phone),
        "site": r.site,
    }


def _unreachable_list(session: Session, scope: q.Scope, period: Period, locale: str, plugins: Any = None,
                      now: datetime | None = None) -> list[dict[str, Any]]:
    from core.words import Names

    tz = period.tz
    labels: dict[str, str] = {}
    names = Names(plugins, locale) if plugins is not None else None
    out = []
    end = cutoff(period, now) if now is not None else period.end
    # plain tuples: thousands of rows at a chain's size, attribute access per value is measurable
    for (task_id, site, specialty, procedure, milestone, due_at, status, n_attempts, external_id, name, phone,
         last_outcome, last_at) in q.unreachable(session, scope, period.start, end):
        if last_outcome and last_outcome not in labels:
            labels[last_outcome] = label(last_outcome, locale, OUTCOMES)
        out.append({
            "task_id": task_id,
            "patient_id": external_id,
            "patient_name": name,
            "phone": mask_phone(phone),
            "site": site,
            "procedure": f"{specialty}.{procedure}",
            "procedure_label": names.procedure(specialty, procedure) if names else procedure,
            "milestone": milestone,
            "milestone_label": names.milestone(specialty, procedure, milestone) if names else milestone,
            "due_at": local_iso(due_at, tz),
            "status": status,
            "attempts": int(n_attempts or 0),
            "last_outcome": last_outcome,
            "last_outcome_label": labels[last_outcome] if last_outcome else None,
            "last_attempt_at": local_iso(last_at, tz),
        })
    return out


def _suggestion_list(texts: list[Any], tz: ZoneInfo) -> list[dict[str, Any]]:
    return [
        {
            **_who(r),
            "date": r.at.astimezone(tz).date().isoformat(),
            "text": scrub_phones(r.text),
        }
        for r in texts
        if r.question == q.SUGGESTIONS
    ]


def _escalation_list(session: Session, scope: q.Scope, period: Period, now: datetime) -> list[dict[str, Any]]:
    """Escalations still open when the report is made; overdue ones first (core/escalations.py)."""
    out = []
    for r in q.open_escalations(session, scope, period.end, now):
        e = r["escalation"]
        tz = period.tz
        out.append({
            "escalation_id": e.id,
            "task_id": e.task_id,
            "patient_id": r["patient_id"],
            "patient_name": r["patient_name"],
            "phone": mask_phone(r["phone"]),
            "site": e.site,
            "severity": e.severity,
            "assignee": e.assignee,
            "status": e.status,
            "escalated_at": local_iso(e.opened_at, tz),
            "handle_by": local_iso(e.due_at, tz),
            "overdue": r["overdue"],
            "reason": scrub_phones(e.reason),
        })
    return out


def _complaint_list(
    session: Session, scope: q.Scope, period: Period, now: datetime, locale: str
) -> list[dict[str, Any]]:
    tz = period.tz
    return [
        {
            "complaint_id": r["complaint"].id,
            "task_id": r["complaint"].task_id,
            "patient_id": r["patient_id"],
            "patient_name": r["patient_name"],
            "phone": mask_phone(r["phone"]),
            "site": r["complaint"].site,
            "category": r["complaint"].category,
            "category_label": label(r["complaint"].category, locale, CATEGORIES),
            "staff": r["complaint"].staff,
            "status": r["complaint"].status,
            "opened_at": local_iso(r["complaint"].opened_at, tz),
            "deadline": local_iso(r["complaint"].due_at, tz),
            "overdue": r["overdue"],
            "description": scrub_phones(r["complaint"].description),
        }
        for r in q.open_complaints(session, scope, period.end, now)
    ]
