"""``followup plugin new NAME``: start a specialty plugin project (see docs/plugins.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("plugin")
def plugin_group() -> None:
    """Create a new specialty plugin project."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path),
    default=Path("."),
    help="Folder to create the project in (default: the current folder).",
)
def plugin_new(name: str, parent: Path) -> None:
    """Create followup-NAME/: a plugin project ready to `pip install -e`.

    NAME is the plugin's and the specialty's name, a lowercase identifier
    (e.g. ophthalmology). The project holds pyproject.toml with the `followup`
    entry point, the package followup_NAME (ProtocolPlugin, protocol.yaml with an
    example procedure, call scripts in zh_CN and en), a README and tests that
    run the conformance kit.
    """
    from core.scaffold import PluginProject, create_plugin, installed_plugin_names

    target = create_plugin(name, parent, installed=installed_plugin_names() | {"core"})
    project = PluginProject(name)
    click.echo(f"Created {target}/ (plugin {name!r}, package {project.package}).")
    click.echo("Next:")
    click.echo(f"  cd {target}")
    click.echo("  pip install -e .          # registers the plugin through its entry point")
    click.echo(f"  followup plugins list    # {name} is listed")
    click.echo("  pytest                   # the conformance kit and the example tests")
    click.echo(
        f"Then replace the example in {project.package}/protocol.yaml and the call scripts "
        f"in {project.package}/templates/; the guide is docs/plugins.md."
    )
