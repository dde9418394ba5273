"""``followup init [DIR]``: a starter chain so that an installed CLI has something to run on."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli.main import App
from core.cli.output import locale_option
from core.messages import message


@click.command("init")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing chain.yaml / sites/main.yaml.")
@locale_option("Language of the chain (its default for everyone) and of these messages (default: zh_CN).")
@click.pass_obj
def init_cmd(app: App, folder: Path | None, force: bool, locale: str | None) -> None:
    """Write chain.yaml and one site (sites/main.yaml) into FOLDER (default: your config folder)."""
    from core.chainfile import LOCAL, user_config_dir, write_starter

    loc = locale or "zh_CN"
    target = folder or user_config_dir()
    written = write_starter(target, specialties=sorted(app.plugins.specialties()),
                            user=app._as or app.os_user, locale=loc, force=force)  # the chain's first admin
    click.echo(message("init_written", loc, files=", ".join(map(str, written))))
    chain = written[0]
    if folder is None or chain.resolve() == LOCAL.resolve():
        click.echo(message("init_found", loc))
    else:
        click.echo(message("init_point", loc, path=chain))
