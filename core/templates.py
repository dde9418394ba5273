"""Sandboxed Jinja rendering of scripts and reports.

Templates are looked up site folders → plugin folders → core, each with one
sub-folder per locale, falling back to ``en``. The environment is a
``SandboxedEnvironment`` with ``StrictUndefined``: a template cannot reach
Python internals, and a missing variable is an error, never a blank line read
to a patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from core.errors import FollowupError  # noqa: E402

CORE_TEMPLATES = Path(__file__).parent / "templates"


class TemplateRenderError(FollowupError):
    """A template failed to render; the message names the template and the problem."""


@lru_cache(maxsize=64)
def _environment(dirs: tuple[str, ...], locale: str) -> SandboxedEnvironment:
    roots = [Path(d) for d in dirs] + [CORE_TEMPLATES]
    search = [str(r / locale) for r in roots if (r / locale).is_dir()]
    fallback = [str(r / "en") for r in roots if (r / "en").is_dir()]
    env = SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(search), FileSystemLoader(fallback)]),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "htm", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env


def render(name: str, variables: dict[str, Any], *, locale: str, dirs: Sequence[str | Path] = ()) -> str:
    """Render template ``name`` in ``locale``; ``dirs`` are searched before core's own templates."""
    env = _environment(tuple(str(d) for d in dirs), locale)
    try:
        text = env.get_template(name).render(**variables)
    except TemplateError as exc:
        raise TemplateRenderError(f"template {name!r} ({locale}): {exc}") from exc
    # Collapse the blank lines left by skipped blocks.
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
