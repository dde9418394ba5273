"""Sandboxed Jinja rendering of scripts and reports.

Templates are looked up site folders → plugin folders → core, each with one
sub-folder per locale, falling back to ``en``; the patient's locale comes first,
so a site that rewrote only the English script does not make a Chinese patient
hear English. The environment is an ``ImmutableSandboxedEnvironment`` with
``StrictUndefined``: a template cannot reach Python internals or change the
variables it is given, and a missing variable is an error, never a blank line
read to a patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    BytecodeCache,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.bccache import Bucket
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from core.errors import FollowupError  # noqa: E402

CORE_TEMPLATES = Path(__file__).parent / "templates"


class TemplateRenderError(FollowupError):
    """A template failed to render; the message names the template and the problem."""


_ESCAPED = select_autoescape(["html", "htm", "xml"])


def _autoescape(name: str | None) -> bool:
    """HTML and XML are escaped, also when named ``report.html.j2``; call scripts (``.j2``) are plain text."""
    if name and name.lower().endswith((".j2", ".jinja", ".jinja2")):
        name = name.rsplit(".", 1)[0]
    return _ESCAPED(name)


def _where(exc: TemplateError) -> str:
    """The template file and line where rendering failed, which may be a parent or an included template."""
    filename, lineno = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    if filename is None:
        tb = exc.__traceback__
        while tb is not None:
            code_file = tb.tb_frame.f_code.co_filename
            if not code_file.endswith(".py") and Path(code_file).is_file():
                filename, lineno = code_file, tb.tb_lineno
            tb = tb.tb_next
    if filename is None:
        return ""
    return f" (at {filename}:{lineno})" if lineno else f" (in {filename})"


@lru_cache(maxsize=64)
def _environment(dirs: tuple[str, ...], locale: str) -> SandboxedEnvironment:
    roots = [Path(d) for d in dirs] + [CORE_TEMPLATES]
    search = [str(r / locale) for r in roots if (r / locale).is_dir()]
    fallback = [str(r / "en") for r in roots if (r / "en").is_dir()]
    # Immutable: a template can neither reach Python internals nor change the lists and
    # dicts it is given (the same questions and aftercare feed the next script).
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(search), FileSystemLoader(fallback)]),
        undefined=StrictUndefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        bytecode_cache=_SignedBytecodeCache(),
    )
    return env


class _SignedBytecodeCache(BytecodeCache):
    """Compiled templates kept in the per-user cache (core/cache.py), signed: a template is parsed and
    compiled once per change of its source, not on every ``followup script``."""

    def load_bytecode(self, bucket: Bucket) -> None:
        from core import cache

        body = cache.get_bytes("template", [bucket.key, bucket.checksum])
        if body is not None:
            bucket.bytecode_from_string(body)

    def dump_bytecode(self, bucket: Bucket) -> None:
        from core import cache

        cache.put_bytes("template", [bucket.key, bucket.checksum], bucket.bytecode_to_string())


def render(name: str, variables: dict[str, Any], *, locale: str, dirs: Sequence[str | Path] = ()) -> str:
    """Render template ``name`` in ``locale``; ``dirs`` are searched before core's own templates."""
    env = _environment(tuple(str(d) for d in dirs), locale)
    try:
        text = env.get_template(name).render(**variables)
    except TemplateNotFound as exc:
        looked = [p for loader in env.loader.loaders for p in loader.searchpath]  # type: ignore[union-attr]
        raise TemplateRenderError(
            f"template {exc.name!r} ({locale}): not found; looked in {', '.join(looked)}"
        ) from exc
    except TemplateError as exc:
        raise TemplateRenderError(f"template {name!r} ({locale}): {exc}{_where(exc)}") from exc
    # Collapse the blank lines left by skipped blocks.
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
