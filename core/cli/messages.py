"""Message commands: ``send`` (the outbox's sender, for cron or a service), ``outbox`` (the list), ``serve``."""

from __future__ import annotations

import time

import click

from core.cli.main import App
from core.cli.output import emit, format_option, locale_option, to_json
from core.messages import message


def _sites(app: App, site: str | None) -> list[str]:
    """The sites whose messages the user may send: a coordinator's own, an admin's all (core/access.py)."""
    from core import access

    return access.sites_for(app.config, app.user, access.CALLS, site)


@click.command("send")
@click.option("--site", help="Only this site's messages.")
@click.option("--channel", type=click.Choice(["sms", "wechat", "email"]), help="Only this channel.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Send at most this many messages per run.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent now; send and change nothing.")
@click.option("--loop", is_flag=True, help="Keep running: send what is due every --interval seconds.")
@click.option("--interval", type=click.IntRange(5, 86400), default=60, show_default=True,
              help="Seconds between runs with --loop.")
@click.option("--resend", "resend_ids", type=int, multiple=True, metavar="MESSAGE_ID",
              help="Queue a new copy of this message on purpose (repeatable), then send what is due.")
@format_option("table", "json")
@locale_option()
@click.pass_obj
def send_cmd(app: App, site: str | None, channel: str | None, limit: int, dry_run: bool, loop: bool,
             interval: int, resend_ids: tuple[int, ...], fmt: str, locale: str | None) -> None:
    """Send the messages that are due (SMS, WeChat, email): never at night, never twice."""
    from core.outbox import send_due

    url = app.ready_db()
    sites = _sites(app, site)
    if resend_ids and not dry_run:
        from core.calls import check_site_access
        from core.db.engine import session_scope
        from core.db.models import OutboxMessage
        from core.errors import FollowupError
        from core.outbox import resend

        with session_scope(url) as session:
            for message_id in resend_ids:
                old = session.get(OutboxMessage, message_id)
                if old is None:
                    raise FollowupError(f"no message {message_id} (see followup outbox)")
                check_site_access(app.config, app.user, old.site)
                resend(session, app.config, app.plugins, message_id, user=app.user, now=app.now)
    while True:
        summary = send_due(url, app.config, app.plugins, now=app.now, sites=sites, channel=channel, limit=limit,
                           dry_run=dry_run, sender=f"send:{app.user}")
        if fmt == "json":
            click.echo(to_json(summary.as_dict()))
        else:
            lang = app.ui_locale(locale)
            if dry_run:
                click.echo(message("send_dry_run", lang, n=len(summary.messages)))
            else:
                click.echo(message("send_summary", lang, **{k: v for k, v in summary.as_dict().items()
                                                           if k != "messages"}))
            if summary.messages:
                emit(summary.messages, ["id", "task_id", "site", "channel", "kind", "to", "status", "tries", "error"],
                     "table")
        if not loop or dry_run:
            return
        time.sleep(interval)


@click.command("outbox")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "delivered", "failed", "expired"]),
              help="Only messages in this status.")
@click.option("--patient", help="Only this patient's messages (patient id).")
@format_option("table", "json", "csv")
@click.pass_obj
def outbox_cmd(app: App, status: str | None, patient: str | None, fmt: str) -> None:
    """Messages to patients: channel, kind, status, tries; addresses masked."""
    from core import access
    from core.db.engine import session_scope
    from core.outbox import OUTBOX_KEYS, list_outbox

    allowed = access.sites_for(app.config, app.user, access.TASKS_READ)
    sites = None if len(allowed) == len(app.config.sites) else allowed
    with session_scope(app.ready_db()) as session:
        rows = list_outbox(session, app.config, status=status, patient=patient, sites=sites)
    if fmt == "json":
        click.echo(to_json([{k: r[k] for k in OUTBOX_KEYS} for r in rows]))
        return
    emit(rows, [*OUTBOX_KEYS[:8], "to", "queued_at", "sent_at", "delivered_at", "error"], fmt)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@locale_option()
@click.pass_obj
def serve_cmd(app: App, host: str, port: int, locale: str | None) -> None:
    """Serve the patients' questionnaires (/q/<token>) and providers' delivery reports (/hooks/<channel>)."""
    from core.errors import FollowupError

    try:
        from core.web import serve
    except ImportError:  # pragma: no cover - werkzeug is the web extra
        raise FollowupError("followup serve needs the web extra: pip install 'clinic-followup[web]'") from None
    url = app.ready_db()
    fixed = app.now if app._now else None
    click.echo(message("serving", app.ui_locale(locale), host=host, port=port))
    serve(url, app.config, app.plugins, host, port, clock=(lambda: fixed) if fixed else None)
