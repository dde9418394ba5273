"""``followup plugin new NAME``: a ready-to-install specialty plugin project.

The files of the new project live in ``core/scaffold/`` as ``*.j2`` files (so
they ship as package data) and are listed in :data:`FILES`, the one place that
says what a new project contains. They are filled in by plain ``@token@``
replacement rather than Jinja, because some of them are Jinja templates
themselves (the plugin's call scripts).

The project is written to a temporary folder next to its destination and
renamed into place at the end, so a failure never leaves half a project behind.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from core.errors import FollowupError

SCAFFOLD = Path(__file__).parent / "scaffold"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 40
RESERVED = frozenset({"core"})  # the name core's own plugin is registered under

# scaffold file -> path in the new project ({name} and {package} filled in)
FILES: dict[str, str] = {
    "pyproject.toml.j2": "pyproject.toml",
    "README.md.j2": "README.md",
    "gitignore.j2": ".gitignore",
    "init.py.j2": "{package}/__init__.py",
    "protocol.yaml.j2": "{package}/protocol.yaml",
    "call.zh_CN.j2": "{package}/templates/zh_CN/{name}/call.j2",
    "call.en.j2": "{package}/templates/en/{name}/call.j2",
    "test_plugin.py.j2": "tests/test_{name}.py",
}
_TOKEN = re.compile(r"@([a-z_]+)@")


class ScaffoldError(FollowupError):
    """The plugin project cannot be created; the message says why and what to do."""


@dataclass(frozen=True)
class PluginProject:
    """The names a new plugin project uses, all derived from the plugin's name."""

    name: str

    @property
    def package(self) -> str:
        return f"followup_{self.name}"

    @property
    def distribution(self) -> str:
        return f"followup-{self.name}"

    @property
    def directory(self) -> str:
        return f"followup-{self.name}"

    def tokens(self) -> dict[str, str]:
        version = _core_version()
        release = ".".join(version.split(".")[:2]) if version else None
        title = self.name.replace("_", " ").strip().title()
        return {
            "name": self.name,
            "package": self.package,
            "dist": self.distribution,
            "title_en": title,
            "title_zh": f"{self.name}专科",
            "core_version": version or "(development)",
            "core_requirement": f"clinic-followup>={release}" if release else "clinic-followup",
        }


def check_name(name: str, installed: set[str] | frozenset[str] = frozenset()) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` can name a new plugin, suggesting a fix."""
    rule = "a plugin name is a lowercase identifier: a letter, then letters, digits or _, e.g. ophthalmology"
    if not name:
        raise ScaffoldError(f"the plugin name is empty: {rule}")
    if not NAME_RE.match(name):
        fixed = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
        hint = f" — did you mean {fixed!r}?" if NAME_RE.match(fixed) else ""
        raise ScaffoldError(f"invalid plugin name {name!r}: {rule}{hint}")
    if name.startswith("followup_"):
        short = name.removeprefix("followup_")
        raise ScaffoldError(
            f"invalid plugin name {name!r}: leave out 'followup_', the package name adds it (try {short!r})"
        )
    if len(name) > MAX_NAME:
        raise ScaffoldError(f"plugin name {name!r} is longer than {MAX_NAME} characters")
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} cannot name a plugin (reserved): choose another name")
    if name in installed:
        raise ScaffoldError(
            f"a plugin named {name!r} is already installed (see 'followup plugins list'), "
            "and two plugins cannot share a name: choose another"
        )


def installed_plugin_names() -> set[str]:
    """Names in the ``followup`` entry-point group, read from metadata without importing any plugin."""
    from core.plugins import ENTRY_POINT_GROUP

    return {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def render_files(project: PluginProject) -> dict[str, str]:
    """Every file of the new project: relative path -> text."""
    tokens = project.tokens()

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in tokens:  # a bug in a scaffold file, caught by the tests
            near = difflib.get_close_matches(key, list(tokens), n=1)
            hint = f" (did you mean @{near[0]}@?)" if near else ""
            raise ScaffoldError(f"scaffold: unknown token @{key}@{hint}")
        return tokens[key]

    files = {}
    for source, target in FILES.items():
        text = (SCAFFOLD / source).read_text(encoding="utf-8")
        files[target.format(name=project.name, package=project.package)] = _TOKEN.sub(fill, text)
    return files


def create_plugin(
    name: str, parent: Path | str = ".", *, installed: set[str] | frozenset[str] = frozenset()
) -> Path:
    """Write the project ``followup-NAME`` under ``parent`` and return its path.

    Refuses a bad name and an existing destination; creates ``parent`` if needed.
    """
    check_name(name, installed)
    project = PluginProject(name)
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise ScaffoldError(f"{parent} is a file, not a folder: pass a folder with --dir")
    target = parent / project.directory
    if target.exists() or target.is_symlink():
        raise ScaffoldError(
            f"{target} already exists: nothing was overwritten; remove it or choose another --dir"
        )
    files = render_files(project)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{project.directory}-", dir=parent))
    except OSError as exc:
        raise ScaffoldError(
            f"cannot create the project under {parent}: {exc.strerror or exc}"
        ) from None
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; give it a normal folder's mode
        staging.rename(target)
    except OSError as exc:
        raise ScaffoldError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _core_version() -> str | None:
    try:
        return metadata.version("clinic-followup")
    except metadata.PackageNotFoundError:
        return None
