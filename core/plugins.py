"""The plugin manager: built-ins and third-party plugins load the same way.

Every plugin, including the four shipped in ``plugins/``, is found through the
``followup`` entry-point group. Core's own defaults (general questions, the
salutation, the base script) are registered directly as the ``core`` plugin.

This module is the one place that calls hooks. It calls each implementation
itself so that a result or an exception is always attributed to its plugin,
validates every result with pydantic, tags it with the plugin, and rejects
duplicate keys naming both plugins.

Environment:

* ``FOLLOWUP_LOAD_PLUGINS=dental,hair``: load only these entry-point plugins
  (an empty value loads none).
* ``FOLLOWUP_STRICT_PLUGINS=1``: a plugin that fails to load raises instead of
  being reported and skipped (for plugin authors).
* ``FOLLOWUP_TRACE_PLUGINS=1``: print every hook call, its arguments and results
  to stderr.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, TypeVar

import pluggy
from pydantic import BaseModel, TypeAdapter, ValidationError

from core import hookspecs
from core.errors import FollowupError
from core.privacy import mask_name, scrub_phones
from core.protocol import Action, Aftercare, Milestone, Question, Specialty

ENTRY_POINT_GROUP = "followup"
OWN_DISTRIBUTION = "clinic-followup"
M = TypeVar("M", bound=BaseModel)


class PluginError(FollowupError):
    """A plugin broke the contract. The message names the plugin, the hook and what to fix."""

    def __init__(self, plugin: str, hook: str, message: str):
        self.plugin, self.hook = plugin, hook
        super().__init__(f"plugin {plugin!r}, hook {hook}: {message}")


@dataclass
class PluginInfo:
    name: str
    version: str | None
    source: str
    hooks: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    status: str = "ok"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "specialties": self.specialties,
            "channels": self.channels,
            "hooks": self.hooks,
            "status": self.status,
            "error": self.error,
        }


def _format_validation(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(value)"
        parts.append(f"{loc}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


class _Manager(pluggy.PluginManager):
    """pluggy's manager, asking about a plugin's attributes more cheaply.

    pluggy looks at every attribute of every plugin (``inspect.getattr_static`` each: a quarter of loading
    the plugins). An attribute without the ``@hookimpl`` mark cannot be a hook implementation: found in the
    instance's or its classes' ``__dict__`` (never calling a property) and unmarked, it is skipped here.
    """

    _MARK = f"{hookspecs.PROJECT}_impl"

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        for namespace in (getattr(plugin, "__dict__", {}), *(k.__dict__ for k in type(plugin).__mro__)):
            if name in namespace:
                value = namespace[name]
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if getattr(value, self._MARK, None) is None:
                    return None
                break
        return super().parse_hookimpl_opts(plugin, name)


class Plugins:
    """A loaded set of plugins and validated access to every hook."""

    def __init__(self) -> None:
        self.pm = _Manager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.trace = os.environ.get("FOLLOWUP_TRACE_PLUGINS") == "1"
        self._specialty_cache: dict[str, tuple[str, Specialty]] | None = None

    # -- loading -------------------------------------------------------------
    def register(self, plugin: object, name: str, *, version: str | None = None, source: str = "registered") -> None:
        """Register a plugin object; unknown ``followup_*`` hooks are an error naming the close match."""
        problem = self._check_hook_names(plugin)
        if problem:
            raise PluginError(name, problem[0], problem[1])
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:  # e.g. a parameter the hook does not have
            match = re.search(r"for hook '(\w+)'", str(exc))
            detail = " ".join(str(exc).splitlines()[1:]) or str(exc)
            raise PluginError(name, match.group(1) if match else "register", detail) from None
        problem = self._check_registered(name)
        if problem:
            self.pm.unregister(name=name)
            raise PluginError(name, problem[0], problem[1])
        self.infos[name] = PluginInfo(name=name, version=version, source=source, hooks=self._hooks_of(name))
        self._specialty_cache = None
        try:
            self.infos[name].specialties = sorted(s.key for s in self._collect_specialties_of(name))
        except PluginError:
            pass  # reported where the catalogue is used (load_entry_points disables the plugin)

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)
        self.infos.pop(name, None)
        self._specialty_cache = None

    def load_entry_points(self, strict: bool = False) -> None:
        allow = os.environ.get("FOLLOWUP_LOAD_PLUGINS")
        allowed = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
        for ep_name, ep_value, _, (dist, version) in entry_points_found():
            if allowed is not None and ep_name not in allowed:
                continue
            if dist is None:
                source = f"entry point {ep_value}"
            else:
                source = "built-in" if dist == OWN_DISTRIBUTION else f"distribution {dist}"
            if ep_name in self.infos:
                taken = self.infos[ep_name]
                if taken.source != source:  # two distributions claim one name: say so, never pick silently
                    reason = (f"the plugin name {ep_name!r} is already taken by {taken.source}: "
                              f"rename the entry point in {dist or ep_value}")
                    if strict:
                        raise PluginError(ep_name, "entry point", reason)
                    self.infos[f"{ep_name} ({source})"] = PluginInfo(
                        name=ep_name, version=version, source=source, status="failed", error=reason
                    )
                continue
            try:
                obj = EntryPoint(ep_name, ep_value, ENTRY_POINT_GROUP).load()
                self.register(obj, ep_name, version=version, source=source)
            except Exception as exc:  # a broken plugin must not take the CLI down
                # Its text may quote anything, patient data included: numbers masked, never a traceback.
                reason = scrub_phones(str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}")
                if strict:
                    raise PluginError(ep_name, "import", reason) from None
                self.infos[ep_name] = PluginInfo(
                    name=ep_name, version=version, source=source, status="failed", error=reason
                )
        # A plugin whose catalogue is invalid is disabled with the reason, the rest keep working.
        for name in [n for n, i in self.infos.items() if i.status == "ok"]:
            try:
                self._check_catalogue(name)
                self._collect_channels_of(name)
            except PluginError as exc:
                if strict:
                    raise
                old = self.infos[name]
                self.unregister(name)
                self.infos[name] = PluginInfo(
                    name=name, version=old.version, source=old.source, hooks=old.hooks, status="failed", error=str(exc)
                )
        for name, info in self.infos.items():
            if info.status == "ok":
                info.specialties = sorted(s.key for s in self._collect_specialties_of(name))
                info.channels = sorted(c.name for c in self._collect_channels_of(name))

    @staticmethod
    def _known_hooks() -> list[str]:
        return [n for n in dir(hookspecs) if n.startswith("followup_")]

    @classmethod
    def _unknown_hook(cls, attr: str) -> tuple[str, str]:
        near = difflib.get_close_matches(attr, cls._known_hooks(), n=1)
        hint = f" — did you mean {near[0]}?" if near else ""
        return attr, f"unknown hook {attr!r}{hint}"

    def _check_hook_names(self, plugin: object) -> tuple[str, str] | None:
        """Before registering: a ``followup_*`` callable must be a known hook marked ``@hookimpl``."""
        known = self._known_hooks()
        for attr in dir(plugin):
            if not attr.startswith("followup_"):
                continue
            try:
                value = inspect.getattr_static(plugin, attr)
            except AttributeError:  # pragma: no cover - dir() and getattr_static disagree
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if not callable(value):
                continue
            if attr not in known:
                return self._unknown_hook(attr)
            if getattr(value, f"{hookspecs.PROJECT}_impl", None) is None:
                # pluggy would silently ignore it: the plugin author believes it is called.
                return attr, f"{attr} is not marked with @hookimpl, so it would never be called"
        return None

    def _check_registered(self, name: str) -> tuple[str, str] | None:
        """After registering: every implementation (also via ``specname``) must match a hookspec."""
        plugin = self.pm.get_plugin(name)
        for caller in self.pm.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                return self._unknown_hook(caller.name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name and (impl.hookwrapper or impl.wrapper):
                    return caller.name, "hook wrappers are not supported: return a value instead"
        return None

    def _hooks_of(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    def failed(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.status == "failed"]

    def list_plugins(self) -> list[dict[str, Any]]:
        return [self.infos[n].as_dict() for n in sorted(self.infos)]

    # -- calling -------------------------------------------------------------
    def _impls(self, hook: str, only: Iterable[str] | None = None) -> list[tuple[str, Callable[..., Any], list[str]]]:
        caller = getattr(self.pm.hook, hook)
        wanted = set(only) if only is not None else None
        result = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy's call order
            if wanted is not None and impl.plugin_name not in wanted:
                continue
            result.append((impl.plugin_name, impl.function, list(impl.argnames)))
        return result

    def _call(
        self, hook: str, kwargs: dict[str, Any], *, first: bool = False, only: Iterable[str] | None = None
    ) -> list[tuple[str, Any]]:
        results: list[tuple[str, Any]] = []
        for name, function, argnames in self._impls(hook, only):
            try:
                value = function(**{a: kwargs[a] for a in argnames})
            except PluginError as exc:
                if exc.plugin in self.infos:  # already names a plugin as `plugins list` shows it
                    raise
                # e.g. ProtocolPlugin names its package: name the plugin as it was registered
                detail = str(exc).removeprefix(f"plugin {exc.plugin!r}, hook {exc.hook}: ")
                raise PluginError(name, exc.hook, detail) from exc
            except Exception as exc:
                raise PluginError(name, hook, f"raised {type(exc).__name__}: {exc}") from exc
            if self.trace:
                print(_traced(f"[followup trace] {hook}({kwargs}) <- {name}: {value!r}", kwargs), file=sys.stderr)
            if value is None:
                continue
            results.append((name, value))
            if first:
                break
        return results

    @staticmethod
    def _validate(plugin: str, hook: str, model: type[M], value: Any) -> M:
        if type(value) is model:  # already validated (a ProtocolPlugin's data): pydantic would return it as is
            return value
        try:
            return TypeAdapter(model).validate_python(value)
        except ValidationError as err:
            raise PluginError(plugin, hook, f"invalid {model.__name__}: {_format_validation(err)}") from None

    def _validate_list(self, plugin: str, hook: str, model: type[M], value: Any) -> list[M]:
        if isinstance(value, (BaseModel, dict)) or not isinstance(value, (list, tuple)):
            raise PluginError(plugin, hook, f"expected a list of {model.__name__}, got {type(value).__name__}")
        return [self._validate(plugin, hook, model, item) for item in value]

    # -- specialties ---------------------------------------------------------
    def _check_catalogue(self, plugin_name: str) -> None:
        """A plugin's specialties and the milestones of its own procedures must validate.

        Checked at load time so that a plugin returning bad milestones is disabled
        with the reason, instead of failing the first ``schedule`` that meets it.
        """
        hook = "followup_milestones"
        for spec in self._collect_specialties_of(plugin_name):
            for proc in spec.procedures:
                kwargs = {"specialty": spec.key, "procedure": proc.code}
                for name, value in self._call(hook, kwargs, only=[plugin_name]):
                    self._validate_list(name, hook, Milestone, value)

    def _collect_specialties_of(self, plugin_name: str) -> list[Specialty]:
        out = []
        for name, value in self._call("followup_specialties", {}, only=[plugin_name]):
            out.extend(self._validate_list(name, "followup_specialties", Specialty, value))
        return out

    # -- channels ------------------------------------------------------------
    def _collect_channels_of(self, plugin_name: str | None) -> list[Any]:
        from core.channels import Capabilities, Channel

        hook = "followup_channels"
        out = []
        for name, value in self._call(hook, {}, only=None if plugin_name is None else [plugin_name]):
            if not isinstance(value, (list, tuple)):
                raise PluginError(name, hook, f"expected a list of Channel classes, got {type(value).__name__}")
            for item in value:
                if not (isinstance(item, type) and issubclass(item, Channel)):
                    raise PluginError(name, hook, f"expected a subclass of core.channels.Channel, got {item!r}")
                if not re.match(r"^[a-z][a-z0-9_]*$", str(getattr(item, "name", ""))):
                    raise PluginError(name, hook, f"{item.__name__}.name must be a lowercase key, e.g. 'sms'")
                if not isinstance(getattr(item, "capabilities", None), Capabilities):
                    raise PluginError(name, hook, f"{item.__name__}.capabilities must be a core.channels.Capabilities")
                item.plugin = name  # type: ignore[attr-defined]
                out.append(item)
        return out

    def channels(self) -> dict[str, Any]:
        """Every installed channel class by name; a name provided twice is an error naming both plugins."""
        found: dict[str, Any] = {}
        for cls in self._collect_channels_of(None):
            if cls.name in found:
                raise PluginError(cls.plugin, "followup_channels",
                                  f"channel {cls.name!r} is also provided by plugin {found[cls.name].plugin!r}")
            found[cls.name] = cls
        return dict(sorted(found.items()))

    def specialties(self) -> dict[str, tuple[str, Specialty]]:
        """Every installed specialty by key, with the plugin providing it."""
        if self._specialty_cache is None:
            found: dict[str, tuple[str, Specialty]] = {}
            for name, value in self._call("followup_specialties", {}):
                for spec in self._validate_list(name, "followup_specialties", Specialty, value):
                    if spec.key in found:
                        raise PluginError(
                            name, "followup_specialties",
                            f"specialty {spec.key!r} is also provided by plugin {found[spec.key][0]!r}",
                        )
                    found[spec.key] = (name, spec)
            self._specialty_cache = dict(sorted(found.items()))
        return self._specialty_cache

    def specialty(self, key: str) -> Specialty | None:
        entry = self.specialties().get(key)
        return entry[1] if entry else None

    # -- milestones ----------------------------------------------------------
    def milestones(self, specialty: str, procedure: str) -> list[tuple[str, Milestone]]:
        """Milestones of a procedure from every plugin, ordered by offset, each with its plugin."""
        found: dict[str, tuple[str, Milestone]] = {}
        hook = "followup_milestones"
        for name, value in self._call(hook, {"specialty": specialty, "procedure": procedure}):
            for ms in self._validate_list(name, hook, Milestone, value):
                if ms.key in found:
                    raise PluginError(
                        name, hook,
                        f"milestone {specialty}.{procedure}.{ms.key} is also provided by plugin {found[ms.key][0]!r}",
                    )
                found[ms.key] = (name, ms)
        return sorted(found.values(), key=lambda item: (item[1].offset.approx_minutes, item[1].key))

    # -- first-result hooks --------------------------------------------------
    def aftercare(self, specialty: str, procedure: str, locale: str, milestone: Milestone | None = None) -> list[str]:
        hook = "followup_aftercare"
        kwargs = {"specialty": specialty, "procedure": procedure, "locale": locale, "milestone": milestone}
        for name, value in self._call(hook, kwargs, first=True):
            return list(self._validate(name, hook, Aftercare, value).points)
        return []

    def salutation(self, patient: Any, locale: str, age_bands: dict[str, int]) -> str:
        hook = "followup_salutation"
        for name, value in self._call(hook, {"patient": patient, "locale": locale, "age_bands": age_bands}, first=True):
            if not isinstance(value, str) or not value.strip():
                raise PluginError(name, hook, f"expected a non-empty string, got {value!r}")
            return value
        return patient.name

    def script(self, **kwargs: Any) -> str:
        hook = "followup_script"
        try:
            found = self._call(hook, kwargs, first=True)
        except PluginError as exc:
            raise self._blame_template(exc, kwargs) from exc.__cause__
        for name, value in found:
            if not isinstance(value, str) or not value.strip():
                raise PluginError(name, hook, f"expected the script text, got {type(value).__name__}")
            return value
        raise PluginError("core", hook, "no plugin rendered a script")

    def _blame_template(self, exc: PluginError, kwargs: dict[str, Any]) -> PluginError:
        """Core's default script failed rendering a template: name the plugin whose template it is.

        The template file where rendering failed belongs to the plugin whose
        template folder holds it; failing that (e.g. a template not found), to the
        plugin that provides the milestone naming the template.
        """
        from core.templates import CORE_TEMPLATES, TemplateRenderError

        cause = exc.__cause__
        if exc.plugin != "core" or not isinstance(cause, TemplateRenderError):
            return exc
        owner, folder_of = None, {}
        try:
            for name, dirs in self._call("followup_template_dirs", {}):
                folder_of.update({Path(d).resolve(): name for d in dirs})
            failed_in = _template_file(cause.__cause__)
            if failed_in is not None:
                owner = next((n for d, n in folder_of.items() if failed_in.is_relative_to(d)), None)
                if owner is None and failed_in.is_relative_to(CORE_TEMPLATES.resolve()):
                    owner = "core"
            context, milestone = kwargs.get("context"), kwargs.get("milestone")
            if owner is None and failed_in is None and context is not None and milestone is not None:
                provided = self.milestones(context.specialty, context.procedure)
                owner = next((n for n, m in provided if m.key == milestone.key), None)
        except PluginError:
            owner = None
        if owner is None or owner == "core":
            return exc
        from jinja2 import TemplateNotFound

        if isinstance(cause.__cause__, TemplateNotFound):
            fix = "check the milestone's script: in the protocol and the template folders (templates/<locale>/)"
        else:
            fix = "a script may use only these variables: " + ", ".join(sorted(kwargs.get("variables") or {}))
        return PluginError(owner, "followup_script", f"{cause} — {fix}")

    def calendar(self, country: str) -> Any:
        hook = "followup_calendar"
        for name, value in self._call(hook, {"country": country}, first=True):
            if not callable(getattr(value, "is_working_day", None)):
                raise PluginError(name, hook, "the calendar has no is_working_day(date) method")
            return value
        raise PluginError("core", hook, f"no calendar for country {country!r}")

    # -- questions and actions ------------------------------------------------
    def questions(self, specialty: str, procedure: str, milestone: str) -> dict[str, Question]:
        """All questions that may be asked for this task, by key; the first implementation wins a key."""
        hook = "followup_questions"
        merged: dict[str, Question] = {}
        kwargs = {"specialty": specialty, "procedure": procedure, "milestone": milestone}
        for name, value in self._call(hook, kwargs):
            for q in self._validate_list(name, hook, Question, value):
                merged.setdefault(q.key, q)
        return merged

    def general_question_keys(self) -> list[str]:
        """Core's general questions, asked at the end of every reached call, in order."""
        keys: list[str] = []
        anywhere = {"specialty": "", "procedure": "", "milestone": ""}
        from core.general import ON_REQUEST

        for name, value in self._call("followup_questions", anywhere, only=["core"]):
            keys.extend(q.key for q in self._validate_list(name, "followup_questions", Question, value)
                        if q.key not in ON_REQUEST)
        return keys

    def actions(self, context: Any, answers: dict[str, Any]) -> list[tuple[str, Action]]:
        hook = "followup_actions"
        out: list[tuple[str, Action]] = []
        for name, value in self._call(hook, {"context": context, "answers": answers}):
            out.extend((name, a) for a in self._validate_list(name, hook, Action, value))
        return out

    def template_dirs(self, only: Iterable[str] | None = None) -> list[str]:
        """Every plugin's template folders (or only those of the plugins named in ``only``)."""
        dirs: list[str] = []
        for name, value in self._call("followup_template_dirs", {}, only=only):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, os.PathLike)) for v in value):
                raise PluginError(name, "followup_template_dirs", f"expected a list of paths, got {value!r}")
            dirs.extend(str(v) for v in value)
        return dirs


def _template_file(error: BaseException | None) -> Path | None:
    """The template file where a Jinja error was raised (the innermost template frame)."""
    found = getattr(error, "filename", None)
    tb = error.__traceback__ if error is not None else None
    while tb is not None:
        code_file = tb.tb_frame.f_code.co_filename
        if not code_file.endswith(".py") and os.path.isfile(code_file):
            found = code_file
        tb = tb.tb_next
    return Path(found).resolve() if found else None


def _traced(line: str, kwargs: dict[str, Any]) -> str:
    """A trace line without patient data: the patient's name masked (王*英), every phone number masked."""
    for value in kwargs.values():
        for patient in (value, getattr(value, "patient", None)):
            name = getattr(patient, "name", None) if hasattr(patient, "external_id") else None
            if isinstance(name, str) and name:
                line = line.replace(name, mask_name(name))
    return scrub_phones(line) or ""


def build_plugins(strict: bool | None = None) -> Plugins:
    """A fresh manager: core's defaults plus every entry-point plugin allowed."""
    from core.general import CorePlugin

    plugins = Plugins()
    plugins.register(CorePlugin(), "core", version=_own_version(), source="core")
    if strict is None:
        strict = os.environ.get("FOLLOWUP_STRICT_PLUGINS") == "1"
    plugins.load_entry_points(strict=strict)
    return plugins


@lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin manager, built on first use (never at import time)."""
    return build_plugins()


def reset_plugins() -> None:
    get_plugins.cache_clear()


class LazyPlugins:
    """:func:`get_plugins`, loaded on first use. Called, it returns them.

    What the plugins contribute as data — specialties, procedures and milestones — comes from a catalogue
    kept in the per-user cache (core/cache.py, keyed by core's and every plugin's files, see
    :func:`core.config.plugins_key`), so a command that needs only those never loads the plugins; any other
    hook loads them. Names (core.words.Names) and the report's questions work the same way.

    A call script's data (each milestone's questions and aftercare, core's general questions, the template
    folders) is kept likewise (:func:`_script_content`), with which plugins implement each hook: the
    salutation and the script, while only core implements them, come from core alone. So ``followup
    script`` renders without loading the plugins. Once they are loaded, they answer every call.
    """

    def __init__(self) -> None:
        self._catalogue: dict[str, Any] | None = None
        self._script: dict[str, Any] | None = None

    def __call__(self) -> Plugins:
        return get_plugins()

    def __getattr__(self, name: str) -> Any:
        return getattr(get_plugins(), name)

    def _data(self) -> dict[str, Any]:
        if self._catalogue is None:
            self._catalogue = _catalogue()
        return self._catalogue

    def specialties(self) -> dict[str, tuple[str, Specialty]]:
        return self._data()["specialties"]

    def specialty(self, key: str) -> Specialty | None:
        entry = self.specialties().get(key)
        return entry[1] if entry else None

    def milestones(self, specialty: str, procedure: str) -> list[tuple[str, Milestone]]:
        found = self._data()["milestones"].get((specialty, procedure))
        return list(found) if found is not None else get_plugins().milestones(specialty, procedure)

    # -- a call script's data: the script command need not load the plugins either ----------------------
    def _script_data(self) -> dict[str, Any] | None:
        """:func:`_script_content` from the cache; ``None`` once the plugins are loaded (then they answer)."""
        if get_plugins.cache_info().currsize:
            return None
        if self._script is None:
            self._script = _script_content() or {}
        return self._script or None

    def questions(self, specialty: str, procedure: str, milestone: str) -> dict[str, Question]:
        data = self._script_data()
        found = data["questions"].get((specialty, procedure, milestone)) if data else None
        return dict(found) if found is not None else get_plugins().questions(specialty, procedure, milestone)

    def general_question_keys(self) -> list[str]:
        data = self._script_data()
        return list(data["general"]) if data else get_plugins().general_question_keys()

    def aftercare(self, specialty: str, procedure: str, locale: str, milestone: Milestone | None = None) -> list[str]:
        data = self._script_data()
        key = (specialty, procedure, locale, milestone.key if milestone is not None else None)
        for kept, points in (data["aftercare"].get(key, ()) if data else ()):
            if kept == milestone:  # the task's own copy of the milestone (its offset) may differ
                return list(points)
        return get_plugins().aftercare(specialty, procedure, locale, milestone)

    def template_dirs(self, only: Iterable[str] | None = None) -> list[str]:
        data = self._script_data()
        return list(data["template_dirs"]) if data and only is None else get_plugins().template_dirs(only)

    def salutation(self, patient: Any, locale: str, age_bands: dict[str, int]) -> str:
        return self._for("followup_salutation").salutation(patient, locale, age_bands)

    def script(self, **kwargs: Any) -> str:
        plugins = self._for("followup_script")
        try:
            return plugins.script(**kwargs)
        except PluginError:
            if plugins is get_plugins():
                raise
            return get_plugins().script(**kwargs)  # raises again, blaming the plugin whose template failed

    def _for(self, hook: str) -> Plugins:
        """Core alone when only core implements ``hook`` (as kept in the cache), else every plugin."""
        data = self._script_data()
        return _core_only() if data and data["hooks"].get(hook) == ["core"] else get_plugins()


def _catalogue() -> dict[str, Any]:
    """Every specialty and every procedure's milestones, from the cache or (then stored) from the plugins."""
    from core import cache
    from core.config import plugins_key

    key = plugins_key() if cache.folder() is not None else None
    found = cache.get_object("catalogue", key) if key is not None else None
    if isinstance(found, dict) and {"specialties", "milestones"} <= set(found):
        return found
    plugins = get_plugins()
    catalogue: dict[str, Any] = {"specialties": plugins.specialties(), "milestones": {}}
    for spec_key, (_, spec) in catalogue["specialties"].items():
        for proc in spec.procedures:
            try:
                catalogue["milestones"][(spec_key, proc.code)] = plugins.milestones(spec_key, proc.code)
            except PluginError:  # raised again, with its plugin named, where these milestones are used
                continue
    if key is not None:
        cache.put_object("catalogue", key, catalogue)
    return catalogue


def _script_content() -> dict[str, Any] | None:
    """What a call script takes from the plugins as data, from the cache (``None`` without one).

    Every catalogue milestone's questions and aftercare (in each locale), core's general questions, the
    template folders, and which plugins implement each hook. Built from the plugins and stored on a miss.
    """
    from core import cache
    from core.config import plugins_key
    from core.protocol import LOCALES

    key = plugins_key() if cache.folder() is not None else None
    if key is None:
        return None
    found = cache.get_object("script-content", key)
    if isinstance(found, dict) and {"questions", "general", "aftercare", "template_dirs", "hooks"} <= set(found):
        return found
    plugins = get_plugins()
    try:
        content: dict[str, Any] = {
            "questions": {}, "aftercare": {}, "general": plugins.general_question_keys(),
            "template_dirs": plugins.template_dirs(),
            "hooks": {hook: [name for name, _, _ in plugins._impls(hook)] for hook in Plugins._known_hooks()},
        }
    except PluginError:  # nothing kept: the plugins answer, and raise where the script needs the answer
        return None
    for (specialty, procedure), milestones in _catalogue()["milestones"].items():
        for _, milestone in milestones:
            try:
                content["questions"][(specialty, procedure, milestone.key)] = plugins.questions(
                    specialty, procedure, milestone.key)
                for locale in LOCALES:
                    points = plugins.aftercare(specialty, procedure, locale, milestone)
                    content["aftercare"].setdefault((specialty, procedure, locale, milestone.key), []).append(
                        (milestone, points))
            except PluginError:  # raised again, with its plugin named, where the script is made
                continue
    cache.put_object("script-content", key, content)
    return content


@lru_cache(maxsize=1)
def _core_only() -> Plugins:
    """Core's own plugin alone: the hooks only core implements (the salutation, the script) need no more."""
    from core.general import CorePlugin

    plugins = Plugins()
    plugins.register(CorePlugin(), "core", source="core")
    return plugins


def entry_points_found(installed: Any = None) -> list[list[Any]]:
    """Every installed plugin entry point by name (the first found first): ``[name, value, module, [distribution,
    version]]``.

    Reading every distribution's ``entry_points.txt`` costs more than the rest of loading the plugins, so
    the list is kept in the per-user cache, keyed by the site-packages folders (``installed``: installing or
    removing a distribution changes its folder). A ``metadata`` other than importlib's (a test's) is read
    every time."""
    from core import cache

    real = metadata is sys.modules.get("importlib.metadata")
    if real and installed is None:
        installed = cache.stamp([p for p in sys.path if p and os.path.isdir(p)])
    found = cache.get("plugin-entry-points", installed) if real else None
    if not isinstance(found, list):
        found = [[ep.name, ep.value, ep.module, list(_distribution(ep.dist))]
                 for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)]
        if real:
            cache.put("plugin-entry-points", installed, found)
    return found


def _distribution(dist: Any) -> tuple[str | None, str | None]:
    """A distribution's name and version. Parsing its metadata costs milliseconds: both are kept in the
    per-user cache, keyed by its metadata folder (``name-version.dist-info``), which a reinstall replaces."""
    if dist is None:
        return None, None
    from core import cache

    where = getattr(dist, "_path", None)
    key = cache.stamp([where]) if where is not None else None
    stored = cache.get("distribution", key) if key is not None else None
    if isinstance(stored, list) and len(stored) == 2:
        return stored[0], stored[1]
    name, version = dist.metadata["Name"], dist.version
    if key is not None:
        cache.put("distribution", key, [name, version])
    return name, version


def _own_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        return _distribution(distribution(OWN_DISTRIBUTION))[1]
    except PackageNotFoundError:
        return None
