"""The ``followup`` command: one click group whose subcommands load lazily.

``followup --help`` imports only click: each subcommand's module (and with it
SQLAlchemy, pydantic, pluggy) is imported when that subcommand runs.
"""

from __future__ import annotations

import getpass
import importlib
from typing import Any

import click

# name -> (module:attribute, one-line help shown by --help without importing)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("core.cli.demo:demo", "Create a demo database, import sample patients, schedule and show today."),
    "init": ("core.cli.init:init_cmd", "Write a starter chain configuration (chain.yaml and one site)."),
    "config": ("core.cli.setup:config_group", "Check the clinic configuration."),
    "plugins": ("core.cli.setup:plugins_group", "List installed specialty plugins."),
    "db": ("core.cli.setup:db_group", "Database migrations."),
    "protocols": ("core.cli.setup:protocols", "Show the effective milestones of a site after its overrides."),
    "import": ("core.cli.data:import_cmd", "Import patients or episodes from CSV, XLSX or JSON."),
    "schedule": ("core.cli.data:schedule_cmd", "Turn episodes into follow-up tasks (idempotent)."),
    "tasks": ("core.cli.data:tasks_cmd", "List follow-up tasks."),
    "worklist": ("core.cli.work:worklist_cmd", "Today's calls for a site or coordinator, one line per patient."),
    "claim": ("core.cli.work:claim_cmd", "Take the next patients' calls (held for you for a while)."),
    "script": ("core.cli.work:script_cmd", "Preparation card and call script of a task."),
    "call": ("core.cli.work:call_cmd", "Work through your claimed calls interactively."),
    "record": ("core.cli.work:record_cmd", "Record a call's outcome and answers non-interactively."),
    "escalations": ("core.cli.manage:escalations_group", "Red flags sent to attending doctors: list, resolve."),
    "complaints": ("core.cli.manage:complaints_group", "Complaints (3-day deadline): list, show, respond, close."),
    "patients": ("core.cli.manage:patients_group",
                 "Patients: do-not-contact, opt out of a message channel, export (PIPL copy), erase."),
    "send": ("core.cli.messages:send_cmd", "Send the due SMS, WeChat and email messages (for cron or a service)."),
    "outbox": ("core.cli.messages:outbox_cmd", "Messages to patients and their status, addresses masked."),
    "serve": ("core.cli.messages:serve_cmd", "Serve patients' questionnaires and providers' delivery reports."),
    "audit": ("core.cli.manage:audit_cmd", "Who changed what, and when."),
    "qa": ("core.cli.quality:qa_group", "Call quality: sample the week's calls per coordinator, score them."),
    "report": ("core.cli.report:report_cmd", "Weekly, monthly and quarterly figures: table, JSON, CSV, XLSX, HTML."),
    "plugin": ("core.cli.plugin:plugin_group", "Create a new specialty plugin project (plugin new NAME)."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args, 1):  # a NUL byte would reach PostgreSQL as a query error
            if not arg.isprintable() and any((ord(c) < 32 and c not in "\t\n\r") or c == "\x7f" for c in arg):
                raise click.UsageError(f"argument {i} holds a control character (such as a NUL byte)", ctx)
        rest = super().parse_args(ctx, args)
        protected = ctx.__dict__.get("_protected_args", ctx.__dict__.get("protected_args", []))  # the command name
        ctx.meta["followup.writes"] = writes([*protected, *ctx.args])
        return rest

    def invoke(self, ctx: click.Context) -> Any:
        from core.errors import FollowupError

        try:
            return super().invoke(ctx)
        except FollowupError as exc:
            click.secho(_error_line(ctx.obj, exc), fg="red", err=True)
            ctx.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # read through `head` or a pager that quit: nothing is wrong, nothing to say
            import os
            import sys

            try:  # the exit's flush must not fail again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):  # no file descriptor (a test's runner)
                pass
            ctx.exit(0)
        except Exception as exc:  # no input ends in a traceback, and none prints a query's parameters
            import os

            if os.environ.get("FOLLOWUP_DEBUG") == "1":
                raise
            click.secho(_unexpected_line(ctx.obj, exc), fg="red", err=True)
            ctx.exit(1)


# Commands (and subcommands) that never write to the database: --now may set their clock anywhere.
READ_ONLY = {"config", "plugins", "plugin", "protocols", "tasks", "worklist", "report", "db", "init", "outbox",
             "escalations", "escalations list", "complaints", "complaints list", "complaints show",
             "audit", "audit verify"}
SUBCOMMANDS = {"list", "show", "verify", "resolve", "respond", "close", "open", "ack", "dnc", "export", "erase",
               "optout"}


def writes(args: list[str]) -> bool:
    """Does the command line ``args`` (after the global options) write? ``--now`` is refused for those
    unless the chain allows it (core/access.py, docs/security.md)."""
    if not args:
        return False
    name = args[0]
    sub = next((a for a in args[1:] if a in SUBCOMMANDS), None)
    if name == "import" and "--dry-run" in args:
        return False
    return (f"{name} {sub}" if sub else name) not in READ_ONLY


def _error_line(app: Any, exc: Any) -> str:
    """An error in the reader's language when it is in the catalogue; an administrator's error stays English."""
    from core.messages import FALLBACK, message
    from core.privacy import mask_text

    locale = app.error_locale() if exc.localized and isinstance(app, App) else FALLBACK
    return hide_password(mask_text(message("error", locale, error=exc)) or "", app)


def _unexpected_line(app: Any, exc: Exception) -> str:
    """One line for an error nobody foresaw: its kind and first line, never a query's parameters
    (they hold patient data), never a password; the transaction was rolled back."""
    from core.privacy import mask_text

    try:
        from sqlalchemy.exc import DBAPIError, StatementError

        if isinstance(exc, DBAPIError) and exc.orig is not None:
            inner: BaseException = exc.orig
            what = "database error"
        elif isinstance(exc, StatementError) and exc.orig is not None:
            inner, what = exc.orig, "database error"
        else:
            inner, what = exc, "internal error"
    except ImportError:  # pragma: no cover
        inner, what = exc, "internal error"
    first = (str(inner).strip().splitlines() or [""])[0][:300]
    text = f"Error: {what} ({type(inner).__name__}: {first}); nothing was saved (FOLLOWUP_DEBUG=1 shows the traceback)"
    return hide_password(mask_text(text) or "", app)


def hide_password(text: str, app: Any) -> str:
    """A database URL's password never appears in output: replaced by *** wherever it occurs."""
    from sqlalchemy.engine import make_url

    for url in {getattr(app, "_db", None), _configured_url(app)}:
        try:
            password = make_url(url).password if url else None
        except Exception:
            password = None
        if password:
            text = text.replace(str(password), "***")
    return text


def _configured_url(app: Any) -> str | None:
    try:
        return app.config.database_url if isinstance(app, App) and app._config is not None else None
    except Exception:
        return None


class App:
    """Global options, and lazily built config, plugins and database URL."""

    def __init__(self, config_path: str | None, db: str | None, now: str | None, user: str | None,
                 writes: bool = True):
        self.config_option = config_path  # --config or FOLLOWUP_CONFIG; None: looked for (find_config)
        self._db = db
        self._now = now
        self._as = user  # --as / FOLLOWUP_USER
        self.os_user = _os_user()
        self._user: str | None = None
        self.writes = writes  # the command writes to the database (--now refused unless the chain allows it)
        self._config: Any = None
        self._plugins: Any = None
        self.locale: str | None = None  # the command's --locale, set while its options are parsed

    @property
    def user(self) -> str:
        """Who is acting: the OS user; ``--as`` names someone else only for an admin or in a chain with
        ``allow_as: true``. Whether they may do what they ask is core's answer (core/access.py)."""
        if self._user is None:
            from core.errors import FollowupError

            name = self._as or self.os_user
            from core.access import is_system

            if is_system(name):  # only core acts as these (a patient's questionnaire, the sender)
                raise FollowupError(key="as_reserved", values={"user": name})
            try:
                config = self.config if name != self.os_user else None
            except FollowupError:  # no chain (followup init): nothing to act on, nobody to act as
                config = None
            if config is not None and config.model.staff and not config.model.allow_as:
                me = config.staff(self.os_user)
                if me is None or me.role != "admin":
                    raise FollowupError(key="as_refused", values={"os_user": self.os_user, "user": name,
                                                                  "path": config.path})
            self._user = name
        return self._user

    def ui_locale(self, locale: str | None = None) -> str:
        """The language this user reads: --locale, else the staff member's own, else the chain's."""
        from core.messages import ui_locale

        config = self.config
        return ui_locale(locale or self.locale, config.staff(self._as or self.os_user), config.model.defaults.locale)

    def error_locale(self) -> str:
        """:meth:`ui_locale`; when the configuration does not load, --locale if given, else English."""
        from core.messages import FALLBACK

        try:
            return self.ui_locale()
        except Exception:
            return self.locale or _environment_locale() or FALLBACK

    @property
    def plugins(self) -> Any:
        """The plugins, loaded when a hook needs them: their catalogue (specialties, milestones, names) comes
        from the per-user cache while nothing changed (core.plugins.LazyPlugins)."""
        if self._plugins is None:
            from core.plugins import LazyPlugins

            self._plugins = LazyPlugins()
        return self._plugins

    @property
    def config(self) -> Any:
        if self._config is None:
            from core.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def config_path(self) -> Any:
        from core.chainfile import find_config

        return find_config(self.config_option)

    @property
    def db_url(self) -> str:
        if self._db:
            return self._db
        try:
            url = self.config.database_url
        except Exception:  # the config's own error is reported where the config is needed
            url = None
        return url or "sqlite:///followup.db"

    @property
    def now(self) -> Any:
        from datetime import UTC, datetime
        from zoneinfo import ZoneInfo

        from core.errors import FollowupError

        if not self._now:
            return datetime.now(UTC)
        if self.writes and not self.config.model.allow_now:
            raise FollowupError(key="now_refused", values={"now": self._now, "path": self.config.path})
        try:
            moment = datetime.fromisoformat(self._now)
        except ValueError:
            raise FollowupError(f"--now {self._now!r} is not an ISO-8601 time (e.g. 2026-11-23T09:30+08:00)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.config.model.defaults.timezone))
        return moment.astimezone(UTC)

    def ready_db(self) -> str:
        """The database URL, migrated to the current schema on SQLite (PostgreSQL must be upgraded explicitly)."""
        from core.db.migrate import current_revision, head_revision, upgrade
        from core.errors import FollowupError

        url = self.db_url
        try:
            current = current_revision(url)
        except Exception as exc:
            raise FollowupError(f"cannot open database {_safe_url(url)}: {exc}") from None
        if current != head_revision():
            if url.startswith("sqlite"):
                try:
                    upgrade(url)
                    from zoneinfo import ZoneInfo

                    from core.db.migrate import set_day_offset

                    set_day_offset(url, ZoneInfo(self.config.model.defaults.timezone))
                except FollowupError:
                    raise
                except Exception as exc:  # migrations run in one transaction: nothing half-applied
                    raise FollowupError(f"cannot upgrade {_safe_url(url)}: {exc}") from None
            else:
                raise FollowupError(f"database {_safe_url(url)} is not up to date: run 'followup db upgrade'")
        resume_collection()
        return url


def _environment_locale() -> str | None:
    """zh_CN when the system speaks Chinese (LANG / LC_ALL / LC_MESSAGES zh_*): before any chain is found."""
    import os

    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else None
    return None


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid URL>"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="FOLLOWUP_CONFIG",
              help="Chain configuration file (default: ./config/chain.yaml, else chain.yaml in your config folder; "
              "create one with 'followup init').")
@click.option("--db", envvar="FOLLOWUP_DATABASE_URL", help="Database URL (default: the chain file's, else sqlite:///followup.db).")
@click.option("--now", envvar="FOLLOWUP_NOW", help="The clock every command uses (ISO 8601), for demos and tests.")
@click.option("--as", "user", envvar="FOLLOWUP_USER", help="Act as this user (default: the OS user).")
@click.version_option(package_name="clinic-followup", prog_name="followup")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db: str | None, now: str | None, user: str | None) -> None:
    """Patient follow-up (回访 / 随访) for clinic chains."""
    from core.privacy import install_log_masking

    install_log_masking()  # no log line shows a phone number or a query's parameters
    ctx.obj = App(config_path, db, now, user, ctx.meta.get("followup.writes", True))


def main() -> None:
    import gc

    # Start-up (imports, configuration) builds objects that live until the command ends: collecting
    # cycles among them only costs time. Collection resumes once the database is ready (App.ready_db).
    gc.disable()
    from core import cache

    cache.MEMO = {}  # one command: the files it depends on do not change while it runs
    try:
        cli(prog_name="followup")
    finally:
        import sys

        engine = sys.modules.get("core.db.engine")
        if engine is not None:  # at exit nothing would close them: collection skips what start-up built
            engine.close_all()


def resume_collection() -> None:
    """Collect garbage again after start-up (see :func:`main`), without walking what start-up built."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        # A command still imports what it needs (models, pydantic classes, templates) after this: with
        # Python's default of a collection every 700 new objects, start-up would pay for dozens of
        # collections finding nothing. Every 50,000 keeps a long run's garbage bounded all the same.
        gc.set_threshold(50_000, 20, 10)
        gc.enable()


if __name__ == "__main__":  # pragma: no cover
    main()
