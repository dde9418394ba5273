"""Setup commands: ``config check``, ``plugins list``, ``db upgrade``, ``protocols``."""

from __future__ import annotations

import difflib
from typing import Any

import click

from core.cli.main import App
from core.cli.output import emit, format_option, to_json
from core.errors import FollowupError


@click.group("config")
def config_group() -> None:
    """Check the clinic configuration."""


@config_group.command("check")
@format_option("table", "json")
@click.pass_obj
def config_check(app: App, fmt: str) -> None:
    """Validate the chain file and its sites against the installed plugins."""
    config = app.config
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
        click.secho(f"Warning: plugin {failed.name!r} failed to load: {failed.error}", fg="yellow", err=True)
    for warning in config.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    staff = [{"username": m.username, "role": m.role, "sites": list(m.sites) or ["*"]} for m in config.model.staff]
    if fmt == "json":
        click.echo(to_json({"sites": sites, "warnings": config.warnings, "staff": staff,
                            "single_user": not staff}))
        return
    if staff:
        roles = ", ".join(f"{n} {r}" for r in ("coordinator", "doctor", "manager", "admin")
                          if (n := sum(m["role"] == r for m in staff)))
        click.echo(f"{config.path}: OK — {len(sites)} sites, {len(staff)} staff ({roles})")
    else:
        click.echo(f"{config.path}: OK — {len(sites)} sites, single-user (no staff list: "
                   "whoever runs followup may do everything)")
    emit(
        [{**s, "specialties": ", ".join(s["specialties"])} for s in sites],
        ["code", "name", "timezone", "locale", "specialties"], "table",
    )


@click.group("plugins")
def plugins_group() -> None:
    """Installed specialty plugins."""


@plugins_group.command("list")
@format_option("table", "json")
@click.pass_obj
def plugins_list(app: App, fmt: str) -> None:
    """Each plugin: name, version, source, specialties, hooks, and why it failed if it did."""
    rows = app.plugins.list_plugins()
    if fmt == "json":
        click.echo(to_json(rows))
        return
    emit(
        [
            {
                **r,
                "specialties": ", ".join(r["specialties"]),
                "hooks": ", ".join(h.removeprefix("followup_") for h in r["hooks"]),
                "status": "ok" if r["status"] == "ok" else "FAILED (see below)",
            }
            for r in rows
        ],
        ["name", "version", "source", "specialties", "hooks", "status"], "table",
    )
    for r in rows:
        if r["status"] != "ok":
            click.secho(f"{r['name']}: failed to load: {r['error']}", fg="red")


@click.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@click.pass_obj
def db_upgrade(app: App) -> None:
    """Apply every pending migration (safe to run again)."""
    from core.cli.main import _safe_url
    from core.db.engine import analyze
    from core.db.migrate import current_revision, upgrade

    try:
        upgrade(app.db_url)
        _count_days_in_chain_timezone(app)
        analyze(app.db_url)  # new indexes are only chosen once the planner knows the tables
        click.echo(f"{_safe_url(app.db_url)}: at revision {current_revision(app.db_url)}")
    except FollowupError:
        raise
    except Exception as exc:
        raise FollowupError(f"cannot upgrade {_safe_url(app.db_url)}: {exc}") from None


@db_group.command("recount")
@click.option("--check", is_flag=True, help="Only compare the day counts with a recount; exit 1 if they differ.")
@click.pass_obj
def db_recount(app: App, check: bool) -> None:
    """Recount the reports' per-day counts from the tasks, calls and answers.

    Triggers keep them exact; this is for after a restore from a partial backup, or to check.
    """
    from core.cli.main import _safe_url
    from core.db import rollups
    from core.db.engine import get_engine

    url = app.ready_db()
    try:
        with get_engine(url).begin() as conn:
            if check:
                differences = rollups.verify(conn)
            else:
                rollups.rebuild(conn)
                differences = {}
    except Exception as exc:
        raise FollowupError(f"cannot recount in {_safe_url(url)}: {exc}") from None
    if check and differences:
        for table, rows in differences.items():
            click.echo(f"{table}: {len(rows)} day rows differ from a recount, e.g. {rows[0]}", err=True)
        click.echo("run 'followup db recount' to recount them", err=True)
        raise SystemExit(1)
    click.echo("report day counts agree with the rows" if check else "report day counts recounted")


def _count_days_in_chain_timezone(app: App) -> None:
    """The reports' per-day counts follow the chain's timezone (recounted if it changed)."""
    from core.db.migrate import set_day_offset

    try:
        config = app.config
    except FollowupError:  # no chain file: the database alone is upgraded
        return
    from zoneinfo import ZoneInfo

    if set_day_offset(app.db_url, ZoneInfo(config.model.defaults.timezone)):
        click.echo("report day counts recounted for the chain's timezone")


def effective_protocols(app: App, selector: str | None, site_code: str | None) -> list[dict[str, Any]]:
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
            milestones = site.apply_overrides(key, proc.code, found) if site else found
            for ms in milestones:
                overridden = bool(site and f"{key}.{proc.code}.{ms.key}" in site.overrides)
                rows.append({
                    "specialty": key,
                    "procedure": proc.code,
                    "milestone": ms.key,
                    "purpose": ms.purpose,
                    "offset": str(ms.offset),
                    "window": [str(ms.window.earliest), str(ms.window.latest)],
                    "urgency": ms.urgency,
                    "channel": ms.channel,
                    "overridden": overridden,
                    "name": ms.names.get(site.locale if site else default_locale),
                })
    return rows


@click.command("protocols")
@click.argument("selector", required=False, metavar="[SPECIALTY[.PROCEDURE]]")
@click.option("--site", "site_code", help="Apply this site's overrides.")
@format_option("table", "json")
@click.pass_obj
def protocols(app: App, selector: str | None, site_code: str | None, fmt: str) -> None:
    """The effective milestones, after a site's overrides, so a clinic can review what it configured."""
    rows = effective_protocols(app, selector, site_code)
    if fmt == "json":
        click.echo(to_json(rows))
        return
    emit(
        [{**r, "window": f"{r['window'][0]}–{r['window'][1]}", "offset": r["offset"] + (" *" if r["overridden"] else "")}
         for r in rows],
        ["specialty", "procedure", "milestone", "name", "offset", "window", "urgency", "channel"], "table",
        title="* = changed by the site's configuration" if any(r["overridden"] for r in rows) else None,
    )
