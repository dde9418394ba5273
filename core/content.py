"""``ProtocolPlugin``: a specialty plugin made of data.

A plugin package keeps its clinical content in ``protocol.yaml`` (validated by
:class:`core.protocol.ProtocolFile`) and its scripts in ``templates/<locale>/``;
its ``__init__.py`` is then two lines::

    from core import ProtocolPlugin
    plugin = ProtocolPlugin(__name__)

and ``pyproject.toml`` points the ``followup`` entry point at ``package:plugin``.
Subclass it and add ``@hookimpl`` methods for behaviour the data cannot express.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import VERSION as _PYDANTIC
from pydantic import ValidationError

from core.hookspecs import hookimpl
from core.plugins import PluginError
from core.protocol import (
    Action,
    Aftercare,
    Milestone,
    Procedure,
    ProtocolFile,
    ProtocolProcedure,
    Question,
    Specialty,
    TaskContext,
)
from core.yamlfile import load_located, located_errors


class ProtocolPlugin:
    """Hook implementations backed by a package's ``protocol.yaml`` and templates."""

    def __init__(self, package: str, filename: str = "protocol.yaml", root: Path | None = None):
        self.package = package
        if root is None:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ImportError(f"{package} is not a package")
            root = Path(list(spec.submodule_search_locations)[0])
        self.root = root
        self.path = root / filename

    @cached_property
    def protocol(self) -> ProtocolFile:
        """The validated ``protocol.yaml``; read back from the per-user cache (core/cache.py) while the file,
        core's protocol models and pydantic are unchanged, so a command does not parse and validate it again."""
        from core import cache

        key = [str(self.path), *cache.stamp([self.path, Path(__file__).with_name("protocol.py")]), _PYDANTIC]
        found = cache.get_object("protocol", key)
        if isinstance(found, ProtocolFile):
            return found
        source = load_located(self.path)
        try:
            protocol = ProtocolFile.model_validate(source.data)
        except ValidationError as err:
            problems = located_errors(err, source, ProtocolFile)
            raise PluginError(self.package, "protocol.yaml", "\n  " + "\n  ".join(problems)) from None
        cache.put_object("protocol", key, protocol)
        return protocol

    @property
    def key(self) -> str:
        return self.protocol.specialty.key

    def _procedure(self, specialty: str, procedure: str) -> ProtocolProcedure | None:
        if specialty != self.key:
            return None
        return next((p for p in self.protocol.procedures if p.code == procedure), None)

    @hookimpl
    def followup_specialties(self) -> list[Specialty]:
        return list(self._specialties)

    @cached_property
    def _specialties(self) -> list[Specialty]:
        # Built from the protocol file's validated models, without validating them again (that would build
        # two more validators in every command that loads the plugins); tests/test_general.py checks
        # they equal their validated form.
        fields = set(Procedure.model_fields)
        procedures = [Procedure.model_construct(**{k: v for k, v in p if k in fields})
                      for p in self.protocol.procedures]
        header = self.protocol.specialty
        return [
            Specialty.model_construct(
                key=header.key, names=header.names, procedures=tuple(procedures),
                attributes=self.protocol.attributes,
            )
        ]

    @hookimpl
    def followup_milestones(self, specialty: str, procedure: str) -> list[Milestone] | None:
        proc = self._procedure(specialty, procedure)
        return list(proc.milestones) if proc else None

    @hookimpl
    def followup_aftercare(self, specialty: str, procedure: str, locale: str,
                           milestone: Milestone | None) -> Aftercare | None:
        proc = self._procedure(specialty, procedure)
        if proc is None:
            return None
        offset = milestone.offset if milestone is not None else None
        points = tuple(p.text.get(locale) for p in proc.aftercare if p.due_at(offset))
        return Aftercare(locale=locale, points=points)

    @hookimpl
    def followup_questions(self, specialty: str, procedure: str, milestone: str) -> list[Question] | None:
        if specialty != self.key:
            return None
        return list(self.protocol.questions)

    @hookimpl
    def followup_actions(self, context: TaskContext, answers: dict[str, Any]) -> list[Action] | None:
        if context.specialty != self.key:
            return None
        actions = []
        for rule in self.protocol.rules:
            action = rule.evaluate(answers, context.days_since, context.procedure)
            if action is not None:
                actions.append(action)
        return actions

    @hookimpl
    def followup_template_dirs(self) -> list[str]:
        folder = self.root / "templates"
        return [str(folder)] if folder.is_dir() else []
