"""The integrator kit: ``followup plugin new``, the errors a plugin author meets, the guide.

Three parts:

* the scaffold: what ``followup plugin new NAME`` writes, and the names and
  folders it refuses;
* the errors an author meets when editing the scaffolded plugin (a misspelt
  hook, a result failing validation, a template with an undefined variable, a
  plugin that raises): each names the plugin and what to fix, and a plugin that
  fails while loading is disabled while the others keep working;
* docs/plugins.md: every hook with its exact signature and kind, every
  environment variable, every script variable, and a small example that
  conforms;

and one end-to-end test that installs a scaffolded plugin into a fresh virtual
environment with pip and drives the real ``followup`` command against it.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import core.plugins
from core import hookspecs
from core.cli.main import cli
from core.content import ProtocolPlugin
from core.plugins import PluginError, Plugins, build_plugins, reset_plugins
from core.protocol import ProtocolFile
from core.scaffold import FILES, SCAFFOLD, PluginProject, create_plugin, render_files
from core.testing import SAMPLE_PATIENTS, conformance_problems, sample_context

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --- the scaffold ------------------------------------------------------------------------------


def test_plugin_new_creates_a_ready_to_install_project(tmp_path: Path) -> None:
    result = run_cli("plugin", "new", "eyes", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    project = tmp_path / "followup-eyes"
    assert f"Created {project}" in result.output
    assert "pip install -e ." in result.output
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == sorted(
        [
            ".gitignore",
            "README.md",
            "pyproject.toml",
            "tests/test_eyes.py",
            "followup_eyes/__init__.py",
            "followup_eyes/protocol.yaml",
            "followup_eyes/templates/en/eyes/call.j2",
            "followup_eyes/templates/zh_CN/eyes/call.j2",
        ]
    )


def test_scaffold_pyproject_declares_the_entry_point_and_depends_on_clinic_followup(
    tmp_path: Path,
) -> None:
    project = create_plugin("eyes", tmp_path)
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "followup-eyes"
    assert meta["project"]["entry-points"]["followup"] == {"eyes": "followup_eyes:plugin"}
    assert any(re.match(r"^clinic-followup\b", dep) for dep in meta["project"]["dependencies"])
    data = meta["tool"]["setuptools"]["package-data"]["*"]
    assert "*.yaml" in data and "*.j2" in data  # protocol.yaml and templates travel in the wheel


def test_scaffold_package_uses_protocol_plugin_and_shows_a_custom_hook(tmp_path: Path) -> None:
    init = (create_plugin("eyes", tmp_path) / "followup_eyes" / "__init__.py").read_text(
        encoding="utf-8"
    )
    assert "plugin = ProtocolPlugin(__name__)" in init
    assert "#     @hookimpl" in init and "def followup_actions(" in init


def test_scaffold_protocol_has_one_example_procedure_with_everything_a_protocol_uses(
    tmp_path: Path,
) -> None:
    path = create_plugin("eyes", tmp_path) / "followup_eyes" / "protocol.yaml"
    protocol = ProtocolFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert protocol.specialty.key == "eyes"
    (procedure,) = protocol.procedures
    assert len(procedure.milestones) == 2
    assert protocol.questions and procedure.aftercare
    assert any(rule.action == "escalate" for rule in protocol.rules)
    assert {m.script for m in procedure.milestones} == {"eyes/call.j2"}


def test_scaffolded_plugin_conforms(
    tmp_path: Path, register_plugin: Callable[..., Plugins]
) -> None:
    project = create_plugin("eyes", tmp_path)
    plugins = register_plugin(
        ProtocolPlugin("followup_eyes", root=project / "followup_eyes"), "eyes"
    )
    assert conformance_problems("eyes", plugins) == []


def test_scaffold_readme_and_tests_name_the_plugin(tmp_path: Path) -> None:
    project = create_plugin("eye_care", tmp_path)
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# followup-eye_care")
    assert "pip install -e ." in readme and "followup plugins list" in readme
    tests = (project / "tests" / "test_eye_care.py").read_text(encoding="utf-8")
    assert 'NAME = "eye_care"' in tests and "assert_conformance(NAME" in tests


def test_every_scaffold_file_is_used_and_fully_filled_in() -> None:
    assert sorted(p.name for p in SCAFFOLD.iterdir() if p.is_file()) == sorted(FILES)
    for relative, text in render_files(PluginProject("eyes")).items():
        assert not re.search(r"@[a-z_]+@", text), f"{relative} keeps a token"


def test_scaffold_files_are_package_data_so_the_wheel_carries_them() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = meta["tool"]["setuptools"]["package-data"]["*"]
    for name in FILES:
        assert any(fnmatch.fnmatch(name, g) for g in globs), (
            f"core/scaffold/{name} matches no package-data glob"
        )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Eye-Care", "invalid plugin name 'Eye-Care': a plugin name is a lowercase identifier"),
        ("Eye-Care", "did you mean 'eye_care'?"),
        ("3d_imaging", "invalid plugin name '3d_imaging'"),
        ("eyes.v2", "did you mean 'eyes_v2'?"),
        ("followup_eyes", "leave out 'followup_'"),
        ("core", "'core' cannot name a plugin (reserved)"),
        ("dental", "a plugin named 'dental' is already installed"),
        ("e" * 41, "longer than 40 characters"),
    ],
)
def test_plugin_new_rejects_a_bad_name_with_a_clear_error(
    tmp_path: Path, name: str, expected: str
) -> None:
    result = run_cli("plugin", "new", name, "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert expected in result.output
    assert list(tmp_path.iterdir()) == []


def test_plugin_new_never_overwrites_an_existing_directory(tmp_path: Path) -> None:
    existing = tmp_path / "followup-eyes"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine", encoding="utf-8")
    result = run_cli("plugin", "new", "eyes", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "already exists: nothing was overwritten" in result.output
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["followup-eyes"]  # no staging folder left


def test_plugin_new_creates_a_missing_dir_and_refuses_a_file(tmp_path: Path) -> None:
    assert run_cli("plugin", "new", "eyes", "--dir", str(tmp_path / "a" / "b")).exit_code == 0
    assert (tmp_path / "a" / "b" / "followup-eyes" / "pyproject.toml").is_file()
    (tmp_path / "file").write_text("", encoding="utf-8")
    result = run_cli("plugin", "new", "eyes", "--dir", str(tmp_path / "file"))
    assert result.exit_code == 1 and "is a file, not a folder" in result.output


def test_plugin_new_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("plugin", "new", "eyes").exit_code == 0
    assert (tmp_path / "followup-eyes" / "followup_eyes" / "protocol.yaml").is_file()


# --- errors an author meets, starting from the scaffold -----------------------------------------


@pytest.fixture
def scaffold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    """Create a plugin project and make its package importable; forget the package afterwards."""
    names: list[str] = []

    def make(name: str) -> Path:
        project = create_plugin(name, tmp_path)
        monkeypatch.syspath_prepend(str(project))
        names.append(name)
        return project / f"followup_{name}"

    yield make
    for name in names:
        for module in [
            m for m in sys.modules if m == f"followup_{name}" or m.startswith(f"followup_{name}.")
        ]:
            del sys.modules[module]


@pytest.fixture
def fresh() -> Plugins:
    """Core alone, as build_plugins starts."""
    from core.general import CorePlugin

    plugins = Plugins()
    plugins.register(CorePlugin(), "core")
    return plugins


def with_entry_points(
    monkeypatch: pytest.MonkeyPatch, *pairs: tuple[str, str], **points: str
) -> None:
    """Make core.plugins see exactly these ``followup`` entry points, after the built-in dental plugin."""
    everything = [("dental", "plugins.dental:plugin"), *pairs, *points.items()]
    found = [
        importlib.metadata.EntryPoint(n, v, core.plugins.ENTRY_POINT_GROUP) for n, v in everything
    ]
    monkeypatch.setattr(
        core.plugins,
        "metadata",
        SimpleNamespace(
            entry_points=lambda group: [p for p in found if p.group == group],
            version=importlib.metadata.version,
            PackageNotFoundError=importlib.metadata.PackageNotFoundError,
        ),
    )
    monkeypatch.delenv("FOLLOWUP_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("FOLLOWUP_STRICT_PLUGINS", raising=False)


def edit(path: Path, old: str, new: str) -> None:
    """Break one thing in a scaffolded file, as an author's edit would; fail if the scaffold changed."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def uncommented_hook_example(init: Path) -> str:
    """The scaffold's commented custom-hook example, as the author gets it by uncommenting it."""
    lines = init.read_text(encoding="utf-8").splitlines()
    start = lines.index("# from typing import Any")
    return (
        "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines[start:])
        + "\n"
    )


def test_uncommented_hook_example_works(
    scaffold: Callable[[str], Path], register_plugin: Callable[..., Plugins]
) -> None:
    package = scaffold("eyes_hook")
    (package / "__init__.py").write_text(
        uncommented_hook_example(package / "__init__.py"), encoding="utf-8"
    )
    from followup_eyes_hook import plugin  # type: ignore[import-not-found]

    plugins = register_plugin(plugin, "eyes_hook")
    assert conformance_problems("eyes_hook", plugins) == []
    elderly = sample_context(
        "eyes_hook", "example_procedure", "next_day", plugins, patient=SAMPLE_PATIENTS[1]
    )
    adult = sample_context(
        "eyes_hook", "example_procedure", "next_day", plugins, patient=SAMPLE_PATIENTS[2]
    )
    answers = {"pain_level": 5, "wound_ok": True}
    assert [(p, a.kind) for p, a in plugins.actions(elderly, answers)] == [
        ("eyes_hook", "escalate")
    ]
    assert plugins.actions(adult, answers) == []


def test_misspelt_hook_names_the_plugin_and_the_right_hook(
    scaffold: Callable[[str], Path], fresh: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = scaffold("eyes_typo")
    code = uncommented_hook_example(package / "__init__.py").replace(
        "def followup_actions(", "def followup_action("
    )
    (package / "__init__.py").write_text(code, encoding="utf-8")
    from followup_eyes_typo import plugin  # type: ignore[import-not-found]

    with pytest.raises(PluginError) as info:
        fresh.register(plugin, "eyes_typo")
    assert str(info.value).startswith(
        "plugin 'eyes_typo', hook followup_action: unknown hook 'followup_action'"
    )
    assert "did you mean followup_actions?" in str(info.value)

    with_entry_points(monkeypatch, eyes_typo="followup_eyes_typo:plugin")
    plugins = build_plugins()
    assert plugins.infos["eyes_typo"].status == "failed"
    assert "did you mean followup_actions?" in (plugins.infos["eyes_typo"].error or "")
    assert plugins.infos["dental"].status == "ok"


def test_invalid_protocol_disables_the_plugin_naming_file_line_and_field(
    scaffold: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = scaffold("eyes_yaml")
    protocol = package / "protocol.yaml"
    text = protocol.read_text(encoding="utf-8")
    line = text.splitlines().index("      - key: review") + 1  # the milestone the error is about
    edit(protocol, "offset: 7d", "offset: 12d")
    with_entry_points(monkeypatch, eyes_yaml="followup_eyes_yaml:plugin")
    plugins = build_plugins()
    info = plugins.infos["eyes_yaml"]
    assert info.status == "failed"
    # named as the plugin, not as its package
    assert (info.error or "").startswith("plugin 'eyes_yaml', hook protocol.yaml:")
    assert f"protocol.yaml:{line}: procedures.0.milestones.1" in (info.error or "")
    assert "offset 12d lies outside its window [6d, 9d]" in (info.error or "")
    assert list(plugins.specialties()) == ["dental"]  # the rest keeps working
    monkeypatch.setenv("FOLLOWUP_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="offset 12d lies outside"):
        build_plugins()


def test_kit_does_not_pass_a_registered_plugin_whose_protocol_fails(
    scaffold: Callable[[str], Path], register_plugin: Callable[..., Plugins]
) -> None:
    package = scaffold("eyes_syntax")
    protocol = package / "protocol.yaml"
    edit(protocol, "en: Day-after check-in}", "en: Day-after check-in")
    plugins = register_plugin(ProtocolPlugin("followup_eyes_syntax", root=package), "eyes_syntax")
    (problem,) = conformance_problems("eyes_syntax", plugins)
    assert problem.startswith("plugin 'eyes_syntax', hook followup_specialties:")
    assert f"{protocol}:" in problem and "invalid YAML" in problem


def test_hook_result_failing_validation_disables_the_plugin_at_load(
    scaffold: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = scaffold("eyes_bad")
    (package / "__init__.py").write_text(
        "from core import ProtocolPlugin, hookimpl\n\n\n"
        "class Plugin(ProtocolPlugin):\n"
        "    @hookimpl\n"
        "    def followup_milestones(self, specialty, procedure):\n"
        "        found = super().followup_milestones(specialty, procedure)\n"
        "        if found is None:\n"
        "            return None\n"
        "        month = {'key': 'month_1', 'purpose': 'review', 'names': {'zh_CN': '一个月', 'en': 'One month'},\n"
        "                 'offset': '1mo'}\n"
        "        return [*found, month]\n\n\n"
        "plugin = Plugin(__name__)\n",
        encoding="utf-8",
    )
    with_entry_points(monkeypatch, eyes_bad="followup_eyes_bad:plugin")
    plugins = build_plugins()
    info = plugins.infos["eyes_bad"]
    assert info.status == "failed"
    assert (
        info.error
        == "plugin 'eyes_bad', hook followup_milestones: invalid Milestone: window: Field required"
    )
    assert plugins.infos["dental"].status == "ok" and "dental" in plugins.specialties()


def test_template_with_an_undefined_variable_names_the_plugin_file_and_variable(
    scaffold: Callable[[str], Path], register_plugin: Callable[..., Plugins]
) -> None:
    from core.scripts import prepare_script

    package = scaffold("eyes_tpl")
    template = package / "templates" / "en" / "eyes_tpl" / "call.j2"
    text = template.read_text(encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "{{ milestone.name }}" in s)
    edit(template, "{{ milestone.name }}", "{{ surgeon }}")
    plugins = register_plugin(ProtocolPlugin("followup_eyes_tpl", root=package), "eyes_tpl")

    problems = conformance_problems("eyes_tpl", plugins)
    assert problems and all("(en)" in p for p in problems)  # zh_CN still renders
    assert (
        "plugin 'eyes_tpl', hook followup_script: template 'eyes_tpl/call.j2' (en): 'surgeon' is undefined"
        in problems[0]
    )
    assert f"{template}:{line}" in problems[0]
    assert "a script may use only these variables: aftercare," in problems[0]

    context = sample_context("eyes_tpl", "example_procedure", "review", plugins)
    milestone = {m.key: m for _, m in plugins.milestones("eyes_tpl", "example_procedure")}["review"]
    with pytest.raises(PluginError) as info:
        prepare_script(plugins, context, milestone, "en")
    assert (info.value.plugin, info.value.hook) == ("eyes_tpl", "followup_script")
    assert prepare_script(plugins, context, milestone, "zh_CN").text  # the rest keeps working


def test_milestone_naming_a_missing_template_names_the_plugin(
    scaffold: Callable[[str], Path], register_plugin: Callable[..., Plugins]
) -> None:
    package = scaffold("eyes_missing")
    protocol = package / "protocol.yaml"
    edit(protocol, "eyes_missing/call.j2  #", "eyes_missing/cal.j2  #")
    plugins = register_plugin(ProtocolPlugin("followup_eyes_missing", root=package), "eyes_missing")
    problems = conformance_problems("eyes_missing", plugins)
    assert (
        "plugin 'eyes_missing', hook followup_script: template 'eyes_missing/cal.j2' (zh_CN): not found"
        in problems[0]
    )
    assert "check the milestone's script:" in problems[0]


def test_plugin_raising_on_import_is_listed_as_failed_and_the_rest_work(
    scaffold: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = scaffold("eyes_import")
    init = package / "__init__.py"
    init.write_text(
        init.read_text(encoding="utf-8") + "\nraise RuntimeError('lens catalogue unavailable')\n",
        encoding="utf-8",
    )
    with_entry_points(monkeypatch, eyes_import="followup_eyes_import:plugin")
    reset_plugins()
    try:
        listed = json.loads(run_cli("plugins", "list", "--format", "json").output)
        table = run_cli("plugins", "list").output
    finally:
        reset_plugins()
    by_name = {p["name"]: p for p in listed}
    assert by_name["eyes_import"]["status"] == "failed"
    assert by_name["eyes_import"]["error"] == "RuntimeError: lens catalogue unavailable"
    assert by_name["dental"]["status"] == "ok"
    assert "eyes_import: failed to load: RuntimeError: lens catalogue unavailable" in table


def test_two_plugins_claiming_one_name_are_reported_not_picked_silently(
    scaffold: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scaffold("eyes_dup")
    with_entry_points(monkeypatch, ("dental", "followup_eyes_dup:plugin"))
    plugins = build_plugins()
    assert plugins.infos["dental"].status == "ok"  # the first one keeps working
    (failed,) = plugins.failed()
    assert (failed.name, failed.source) == ("dental", "entry point followup_eyes_dup:plugin")
    assert failed.error == (
        "the plugin name 'dental' is already taken by entry point plugins.dental:plugin: "
        "rename the entry point in followup_eyes_dup:plugin"
    )


def test_plugin_raising_in_a_hook_is_named_and_the_rest_work(
    scaffold: Callable[[str], Path], register_plugin: Callable[..., Plugins]
) -> None:
    package = scaffold("eyes_raise")
    (package / "__init__.py").write_text(
        "from core import ProtocolPlugin, hookimpl\n\n\n"
        "class Plugin(ProtocolPlugin):\n"
        "    @hookimpl\n"
        "    def followup_actions(self, context, answers):\n"
        "        return [] if answers['lens_type'] else None\n\n\n"
        "plugin = Plugin(__name__)\n",
        encoding="utf-8",
    )
    from followup_eyes_raise import plugin  # type: ignore[import-not-found]

    plugins = register_plugin(plugin, "eyes_raise")
    context = sample_context("eyes_raise", "example_procedure", "next_day", plugins)
    with pytest.raises(
        PluginError,
        match=r"^plugin 'eyes_raise', hook followup_actions: raised KeyError: 'lens_type'$",
    ):
        plugins.actions(context, {"pain_level": 3})
    assert [m.key for _, m in plugins.milestones("eyes_raise", "example_procedure")] == [
        "next_day",
        "review",
    ]
    assert plugins.milestones("dental", "implant")  # other plugins unaffected


# --- the guide ---------------------------------------------------------------------------------


def hookspec_signatures() -> dict[str, str]:
    """Each hook's signature line as written in core/hookspecs.py: ``def name(params) -> result``."""
    tree = ast.parse(Path(hookspecs.__file__).read_text(encoding="utf-8"))
    return {
        node.name: f"def {node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("followup_")
    }


def guide_sections() -> dict[str, str]:
    text = GUIDE.read_text(encoding="utf-8")
    return {part.split("\n", 1)[0].strip(): part for part in text.split("\n### ")[1:]}


def test_hookspecs_are_all_found() -> None:
    hooks = [n for n in dir(hookspecs) if n.startswith("followup_")]
    assert sorted(hookspec_signatures()) == sorted(hooks)


@pytest.mark.parametrize("hook", sorted(hookspec_signatures()))
def test_every_hook_is_in_the_guide_with_its_exact_signature_and_kind(hook: str) -> None:
    sections = guide_sections()
    assert hook in sections, f"docs/plugins.md has no '### {hook}' section"
    section = sections[hook]
    assert hookspec_signatures()[hook] in section, (
        f"docs/plugins.md: {hook}'s signature differs from core/hookspecs.py"
    )
    first = getattr(hookspecs, hook).followup_spec.get("firstresult", False)
    assert ("**Kind:** first result wins" if first else "**Kind:** collected") in section


def test_guide_names_every_environment_variable_core_reads() -> None:
    used = set()
    for path in (ROOT / "core").rglob("*.py"):
        used |= set(re.findall(r"FOLLOWUP_[A-Z_]+", path.read_text(encoding="utf-8")))
    guide = GUIDE.read_text(encoding="utf-8")
    assert used and sorted(v for v in used if f"`{v}" not in guide) == []


def test_guide_lists_every_script_variable(
    register_plugin: Callable[..., Plugins], tmp_path: Path
) -> None:
    from core.scripts import script_variables

    plugins = register_plugin(
        ProtocolPlugin("followup_eyes", root=create_plugin("eyes", tmp_path) / "followup_eyes"),
        "eyes",
    )
    context = sample_context("eyes", "example_procedure", "next_day", plugins)
    milestone = plugins.milestones("eyes", "example_procedure")[0][1]
    variables = script_variables(context, milestone, [], [], "王奶奶", "zh_CN", "示例治疗")
    guide = GUIDE.read_text(encoding="utf-8")
    assert [v for v in variables if f"`{v}`" not in guide] == []


def test_guide_example_plugin_and_its_tests_work(tmp_path: Path) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    example = guide.split("## A complete small example", 1)[1].split("\n## ", 1)[0]
    protocol = re.search(r"```yaml\n(.*?)```", example, re.S)
    template = re.search(r"```jinja\n(.*?)```", example, re.S)
    assert protocol and template
    (tmp_path / "protocol.yaml").write_text(protocol.group(1), encoding="utf-8")
    for locale in ("zh_CN", "en"):
        folder = tmp_path / "templates" / locale / "ophthalmology"
        folder.mkdir(parents=True)
        (folder / "call.j2").write_text(template.group(1), encoding="utf-8")
    plugins = build_plugins()
    plugins.register(ProtocolPlugin("ophthalmology", root=tmp_path), "ophthalmology")
    assert conformance_problems("ophthalmology", plugins) == []

    testing = guide.split("## Testing your plugin", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", testing, re.S)
    assert code
    tests: dict[str, Any] = {}
    exec(compile(code.group(1), str(GUIDE), "exec"), tests)

    def register_plugin(obj: object, name: str) -> Plugins:
        plugins.register(obj, name)
        return plugins

    tests["test_plugin_conforms"](plugins)
    tests["test_eye_pain_is_escalated"](plugins)
    tests["test_chain_salutation"](register_plugin)


# --- end to end: pip install the scaffolded plugin into a fresh virtual environment --------------


def _offline_build_problem() -> str | None:
    """Why ``pip install --no-build-isolation`` cannot build a setuptools project here, or None."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed"
    major, minor = (int(x) for x in re.findall(r"\d+", version)[:2])
    if (major, minor) >= (70, 1):
        return None  # setuptools builds wheels by itself
    try:
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return f"setuptools {version} needs the 'wheel' package to build without network (pip install wheel)"
    return None


class Venv:
    """A virtual environment that sees this interpreter's packages (clinic-followup and its dependencies)."""

    def __init__(self, path: Path):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        self.python = path / "bin" / "python"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FOLLOWUP_", "PYTHON", "PIP_", "PYTEST_", "VIRTUAL_ENV"))
        }
        self.env.update(
            PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1"
        )
        purelib = self.run(
            "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
        # Not --system-site-packages: that would show the base interpreter's packages, not this
        # environment's. site.addsitedir also runs their .pth files (the editable install of
        # clinic-followup among them), and the new environment's own packages still come first.
        ours = [
            p
            for p in sys.path
            if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()
        ]
        assert ours, "no site-packages on sys.path"
        lines = [f"import site; site.addsitedir({p!r})" for p in dict.fromkeys(ours)]
        (Path(purelib) / "_followup_host.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
        # The `followup` command, as pip writes a console script for clinic-followup's entry point.
        self.followup = path / "bin" / "followup"
        self.followup.write_text(
            f"#!{self.python}\nimport sys\nfrom core.cli.main import main\nsys.exit(main())\n",
            encoding="utf-8",
        )
        self.followup.chmod(0o755)

    def run(
        self, *args: str, cwd: Path | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.python), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if ok:
            assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
        return done

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.followup), *args, ok=ok)


CHAIN = """\
name: {zh_CN: 测试连锁, en: Test chain}
defaults: {timezone: Asia/Shanghai, locale: zh_CN}
allow_now: true   # a test replays a day: --now for commands that write
sites:
  - code: EYE-1
    name: {zh_CN: 眼科诊所, en: Eye Clinic}
    phone: 021-0000-1111
    specialties: [eyes]
"""
PATIENTS = """\
patient_id,name,gender,birth_date,phone,site
P1,王秀英,F,1951-04-12,13812345601,EYE-1
P2,李强,M,1986-09-03,13912345602,EYE-1
"""
EPISODES = """\
episode_id,patient_id,site,specialty,procedure,occurred_at,doctor
E1,P1,EYE-1,eyes,example_procedure,2026-03-02 09:30,陈医生
E2,P2,EYE-1,eyes,example_procedure,2026-03-03 15:00,
"""


def test_scaffolded_plugin_installs_with_pip_and_works_end_to_end(tmp_path: Path) -> None:
    """About 25 s: a venv, ``pip install -e`` of the scaffold, then the real ``followup`` and ``pytest``."""
    problem = _offline_build_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot build plugins offline: {problem}")
        pytest.skip(f"cannot build plugins offline: {problem}")
    project = create_plugin("eyes", tmp_path)
    venv = Venv(tmp_path / "venv")
    venv.run(
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-e",
        str(project),
    )

    listed = {
        p["name"]: p for p in json.loads(venv.cli("plugins", "list", "--format", "json").stdout)
    }
    assert listed["eyes"]["status"] == "ok", listed["eyes"]
    assert listed["eyes"]["source"] == "distribution followup-eyes"
    assert (listed["eyes"]["version"], listed["eyes"]["specialties"]) == ("0.1.0", ["eyes"])
    assert "followup_milestones" in listed["eyes"]["hooks"]
    assert "eyes" in venv.cli("plugins", "list").stdout

    chain = tmp_path / "chain"
    chain.mkdir()
    (chain / "chain.yaml").write_text(CHAIN, encoding="utf-8")
    (chain / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (chain / "episodes.csv").write_text(EPISODES, encoding="utf-8")
    opts = [
        "--config",
        str(chain / "chain.yaml"),
        "--db",
        f"sqlite:///{chain / 'followup.db'}",
        "--as",
        "tester",
    ]
    march = [*opts, "--now", "2026-03-04T09:00+08:00"]

    milestones = json.loads(venv.cli(*march, "protocols", "eyes", "--format", "json").stdout)
    assert [(m["procedure"], m["milestone"], m["offset"]) for m in milestones] == [
        ("example_procedure", "next_day", "1d"),
        ("example_procedure", "review", "7d"),
    ]

    venv.cli(*march, "import", str(chain / "patients.csv"))
    venv.cli(*march, "import", str(chain / "episodes.csv"))
    scheduled = json.loads(venv.cli(*march, "schedule", "--format", "json").stdout)
    assert (scheduled["created"], scheduled["problems"]) == (4, [])
    tasks = json.loads(venv.cli(*march, "tasks", "--format", "json").stdout)
    assert sorted((t["episode_id"], t["milestone"], t["status"]) for t in tasks) == [
        ("E1", "next_day", "open"),
        ("E1", "review", "open"),
        ("E2", "next_day", "open"),
        ("E2", "review", "open"),
    ]
    first = next(t for t in tasks if (t["episode_id"], t["milestone"]) == ("E1", "next_day"))

    script = venv.cli(*march, "script", str(first["id"])).stdout
    assert "【如有异常】疼痛评分7分及以上" in script  # the plugin's own template
    assert "48小时内保持伤口清洁干燥" in script  # its aftercare
    recorded = json.loads(
        venv.cli(
            *march,
            "record",
            str(first["id"]),
            "--outcome",
            "reached",
            "--answer",
            "pain_level=8",
            "--answer",
            "wound_ok=yes",
            "--format",
            "json",
        ).stdout
    )
    assert [(a["kind"], a["plugin"]) for a in recorded["actions"]] == [("escalate", "eyes")]

    has_report = venv.cli("report", "--help", ok=False).returncode == 0  # it may not exist yet
    if has_report:
        april = [*opts, "--now", "2026-04-02T09:00+08:00"]
        report = json.loads(venv.cli(*april, "report", "month", "--format", "json").stdout)
        assert "EYE-1" in json.dumps(report)
        figures = report.get("figures", {})
        if "reached" in figures:
            assert figures["reached"] == 1

    tests = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert re.search(r"\b5 passed\b", tests.stdout), tests.stdout
