"""Setup commands: ``config check``, ``plugins list``, ``db upgrade``, ``protocols``."""

from __future__ import annotations

import difflib
from typing import Any

import click

from core.cli.main import App
from core.cli.output import Column, format_option, locale_option, print_table, to_json
from core.errors import FollowupError
from core.messages import FALLBACK, Msg, message


@click.group("config")
def config_group() -> None:
    """Check the clinic configuration."""


@config_group.command("check")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def config_check(app: App, locale: str | None, fmt: str) -> None:
    """Validate the chain file and its sites against the installed plugins."""
    from core.words import Names, header

    config = app.config
    loc = app.ui_locale(locale)
    sites = [
        {
            "code": s.code,
            "name": s.name.get(s.locale),
            "timezone": str(s.timezone),
            "locale": s.locale,
            "specialties": list(s.specialties),
        }
        for s in config.sites.values()
    ]
    for failed in app.plugins.failed():
        click.secho(message("warning", loc, warning=Msg("plugin_failed", name=failed.name, error=failed.error)),
                    fg="yellow", err=True)
    for warning in config.warnings:
        click.secho(message("warning", loc, warning=warning), fg="yellow", err=True)
    staff = [{"username": m.username, "role": m.role, "sites": list(m.sites) or ["*"]} for m in config.model.staff]
    if fmt == "json":
        click.echo(to_json({"sites": sites, "warnings": [str(w) for w in config.warnings], "staff": staff,
                            "single_user": not staff}))
        return
    click.echo(message("config_ok", loc, path=config.path, n=len(sites)))
    if staff:
        roles = ("、" if loc == "zh_CN" else ", ").join(
            f"{message('role.' + r, loc)} {n}" for r in ("coordinator", "doctor", "manager", "admin")
            if (n := sum(m["role"] == r for m in staff)))
        click.echo(message("config_staff", loc, n=len(staff), roles=roles))
    else:
        click.echo(message("config_single_user", loc))
    names = Names(app.plugins, loc)
    columns = ["code", "name", "timezone", "locale", "specialties"]
    print_table(
        [Column(c, header(c, loc), keep=c in ("code", "timezone", "locale")) for c in columns],
        [[s["code"], s["name"], s["timezone"], s["locale"], "、".join(names.specialty(k) for k in s["specialties"])
          if loc == "zh_CN" else ", ".join(names.specialty(k) for k in s["specialties"])] for s in sites],
    )


@click.group("plugins")
def plugins_group() -> None:
    """Installed specialty plugins."""


@plugins_group.command("list")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def plugins_list(app: App, locale: str | None, fmt: str) -> None:
    """Each plugin: name, version, source, specialties, hooks, and why it failed if it did."""
    from core.words import word

    rows = app.plugins.list_plugins()
    if fmt == "json":
        click.echo(to_json(rows))
        return
    loc = app.error_locale() if locale is None else locale

    def source(text: str) -> str:
        prefix = "entry point "
        if text.startswith(prefix):
            return message("plugin_source_entry_point", loc, value=text[len(prefix):])
        return word("plugin_source", text, loc)

    columns = ["name", "version", "source", "specialties", "hooks", "status"]
    print_table(
        [Column(c, header_of(c, loc), keep=c in ("name", "version")) for c in columns],
        [[r["name"], r["version"] or "", source(r["source"] or ""), ", ".join(r["specialties"]),
          ", ".join(r["hooks"]), word("plugin_status", "ok" if r["status"] == "ok" else "failed", loc)]
         for r in rows],
    )
    for r in rows:
        if r["status"] != "ok":
            click.secho(message("plugin_failed_row", loc, name=r["name"], error=r["error"]), fg="red")


def header_of(column: str, locale: str | None) -> str:
    from core.words import header

    return header(column, locale)


@click.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@locale_option("Language of the summary (default: English, as for every administrator's command).")
@click.pass_obj
def db_upgrade(app: App, locale: str | None) -> None:
    """Apply every pending migration (safe to run again)."""
    from core.cli.main import _safe_url
    from core.db.engine import analyze
    from core.db.migrate import current_revision, upgrade

    try:
        upgrade(app.db_url)
        _count_days_in_chain_timezone(app)
        analyze(app.db_url)  # new indexes are only chosen once the planner knows the tables
        click.echo(message("db_at_revision", locale or FALLBACK, url=_safe_url(app.db_url),
                           revision=current_revision(app.db_url)))
    except FollowupError:
        raise
    except Exception as exc:
        raise FollowupError(f"cannot upgrade {_safe_url(app.db_url)}: {exc}") from None


@db_group.command("recount")
@click.option("--check", is_flag=True, help="Only compare the day counts with a recount, and each task's attempt "
              "counters with its attempt rows; exit 1 if they differ.")
@locale_option("Language of the summary (default: English, as for every administrator's command).")
@click.pass_obj
def db_recount(app: App, check: bool, locale: str | None) -> None:
    """Recount the reports' per-day counts from the tasks, calls and answers.

    Triggers keep them exact; this is for after a restore from a partial backup, or to check.
    """
    from core.cli.main import _safe_url
    from core.db import counters, rollups
    from core.db.engine import get_engine

    url = app.ready_db()
    mismatches: list[counters.Mismatch] = []
    try:
        with get_engine(url).begin() as conn:
            if check:
                differences = rollups.verify(conn)
                mismatches = counters.mismatches(conn)
            else:
                rollups.rebuild(conn)
                differences = {}
    except Exception as exc:
        raise FollowupError(f"cannot recount in {_safe_url(url)}: {exc}") from None
    if check and (differences or mismatches):
        for table, rows in differences.items():
            click.echo(f"{table}: {len(rows)} day rows differ from a recount, e.g. {rows[0]}", err=True)
        if differences:
            click.echo("run 'followup db recount' to recount them", err=True)
        if mismatches:
            click.echo(f"tasks: {len(mismatches)} tasks' attempt counters differ from their attempt rows:", err=True)
            for mismatch in mismatches[:20]:
                click.echo(f"  {mismatch}", err=True)
            if len(mismatches) > 20:
                click.echo(f"  ... and {len(mismatches) - 20} more", err=True)
        raise SystemExit(1)
    click.echo(message("db_counts_agree" if check else "db_recounted", locale or FALLBACK))


def _count_days_in_chain_timezone(app: App) -> None:
    """The reports' per-day counts follow the chain's timezone (recounted if it changed)."""
    from core.db.migrate import set_day_offset

    try:
        config = app.config
    except FollowupError:  # no chain file: the database alone is upgraded
        return
    from zoneinfo import ZoneInfo

    if set_day_offset(app.db_url, ZoneInfo(config.model.defaults.timezone)):
        click.echo(message("db_recounted_timezone", app.locale or FALLBACK))


def effective_protocols(app: App, selector: str | None, site_code: str | None,
                        locale: str | None = None) -> list[dict[str, Any]]:
    """Milestones after a site's overrides; without --site no chain file is needed (plugin authors)."""
    from core.yamlfile import ConfigError

    plugins = app.plugins
    try:
        config = app.config
        default_locale = config.model.defaults.locale
    except ConfigError:
        if site_code:
            raise
        config, default_locale = None, "zh_CN"
    installed = plugins.specialties()
    spec_filter, proc_filter = (selector.split(".", 1) + [None])[:2] if selector else (None, None)
    if spec_filter and spec_filter not in installed:
        near = difflib.get_close_matches(spec_filter, list(installed), n=1)
        hint = f" — did you mean {near[0]!r}?" if near else ""
        raise FollowupError(f"unknown specialty {spec_filter!r}{hint} (installed: {', '.join(installed)})")
    site = config.site(site_code) if site_code and config else None
    rows = []
    for key, (_plugin, spec) in installed.items():
        if spec_filter and key != spec_filter:
            continue
        if site is not None and key not in site.specialties:
            continue
        codes = [p.code for p in spec.procedures]
        if proc_filter and proc_filter not in codes:
            near = difflib.get_close_matches(proc_filter, codes, n=1)
            hint = f" — did you mean {near[0]!r}?" if near else ""
            raise FollowupError(f"no procedure {proc_filter!r} in {key}{hint}")
        for proc in spec.procedures:
            if proc_filter and proc.code != proc_filter:
                continue
            found = [m for _, m in plugins.milestones(key, proc.code)]
            milestones = (site.apply_overrides(key, proc.code, found, proc.events) if site
                          else [m.model_copy(update={"event_at": proc.events.get(m.before)}) if m.before else m
                                for m in found])
            for ms in milestones:
                overridden = bool(site and f"{key}.{proc.code}.{ms.key}" in site.overrides)
                rows.append({
                    "specialty": key,
                    "procedure": proc.code,
                    "trigger": proc.trigger,
                    "milestone": ms.key,
                    "purpose": ms.purpose,
                    "offset": str(ms.offset),
                    "window": [str(ms.window.earliest), str(ms.window.latest)],
                    "urgency": ms.urgency,
                    "channel": ms.channel,
                    "overridden": overridden or bool(
                        site and ms.before and f"{key}.{proc.code}.{ms.before}" in site.events),
                    # a reminder: the event it prepares and when that happens (after this site's events:)
                    "before": {"event": ms.before, "at": str(ms.event_at)} if ms.before and ms.event_at else None,
                    "name": ms.names.get(locale or (site.locale if site else default_locale)),
                    "_milestone": ms,  # for the table's durations; not in the JSON
                })
    return rows


@click.command("protocols")
@click.argument("selector", required=False, metavar="[SPECIALTY[.PROCEDURE]]")
@click.option("--site", "site_code", help="Apply this site's overrides.")
@locale_option()
@format_option("table", "json")
@click.pass_obj
def protocols(app: App, selector: str | None, site_code: str | None, locale: str | None, fmt: str) -> None:
    """The effective milestones, after a site's overrides, so a clinic can review what it configured."""
    from core.words import Names, duration, header, word

    loc = locale or app.error_locale()
    rows = effective_protocols(app, selector, site_code, loc if locale else None)
    if fmt == "json":
        click.echo(to_json([{k: v for k, v in r.items() if k != "_milestone"} for r in rows]))
        return
    names = Names(app.plugins, loc)

    def span(r: dict) -> tuple[str, str, str]:  # type: ignore[type-arg]
        ms = r["_milestone"]
        return duration(ms.offset, loc), duration(ms.window.earliest, loc), duration(ms.window.latest, loc)

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:  # one table per procedure, named in its title: the columns stay wide enough to read
        groups.setdefault((r["specialty"], r["procedure"]), []).append(r)
    if any(r["overridden"] for r in rows):
        click.echo(message("protocols_changed", loc))
    columns = ["milestone", "offset", "window", "urgency", "channel", "key"]
    keep = ("offset", "window", "urgency", "channel", "key")
    for (specialty, procedure), group in groups.items():
        cells = []
        for r in group:
            offset, earliest, latest = span(r)
            cells.append([r["_milestone"].names.get(loc), offset + (" *" if r["overridden"] else ""),
                          f"{earliest}–{latest}", word("urgency", r["urgency"], loc),
                          word("channel", r["channel"], loc),
                          r["milestone"]])
        print_table([Column(c, header(c, loc), keep=c in keep) for c in columns], cells,
                    title=f"{names.procedure(specialty, procedure)} ({specialty}.{procedure})")
