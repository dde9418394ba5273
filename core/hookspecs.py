"""The plugin contract: every seam where a specialty plugin contributes. Start reading here.

A plugin is any object (usually a module-level instance of
:class:`core.ProtocolPlugin`) registered under the entry-point group
``followup``. It implements some of the hooks below, decorated with
``core.hookimpl``; an implementation may accept any subset of a hook's
parameters, by name.

Two kinds of hook, chosen deliberately:

* **collected** hooks: every plugin's result is gathered. Core validates each item
  with the pydantic model named below, tags it with the plugin that produced it,
  and rejects a duplicate key naming both plugins.
* **first result** hooks (``firstresult=True``): implementations are called in
  pluggy's order (``tryfirst`` first, core's defaults ``trylast``) and the first
  one that does not return ``None`` wins. A chain's own plugin overrides a
  specialty plugin with ``@hookimpl(tryfirst=True)``.

Hooks are never called with ORM objects: plugins see :class:`core.TaskContext`
and friends, so they cannot reach into the database or a patient's phone number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from core.channels import Channel
    from core.protocol import Action, Aftercare, Milestone, PatientInfo, Question, Specialty, TaskContext

PROJECT = "followup"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def followup_specialties() -> list[Specialty]:
    """The specialties this plugin provides, with their procedures (collected).

    Called once when the plugin manager is built and whenever the catalogue is
    needed (config check, import, schedule). Return a list of
    :class:`core.Specialty` (or dicts of the same shape). A specialty key provided by
    two plugins is an error naming both.
    """


@hookspec
def followup_milestones(specialty: str, procedure: str) -> list[Milestone] | None:
    """The milestones (planned follow-ups) of one procedure (collected).

    Called when scheduling an episode and by ``followup protocols``. Return
    :class:`core.Milestone` items, or ``None`` when the procedure is not yours. A
    chain plugin may add milestones to another plugin's procedure; a duplicate
    milestone key is an error naming both plugins. Site YAML overrides (offset,
    window, disabled) are applied by core afterwards.
    """


@hookspec(firstresult=True)
def followup_aftercare(
    specialty: str, procedure: str, locale: str, milestone: Milestone | None
) -> Aftercare | None:
    """The aftercare text of a procedure in a locale (first result wins).

    ``milestone`` is given when a script asks for the points due at that
    milestone, ``None`` for the full list. Return :class:`core.Aftercare` or
    ``None`` to let another plugin answer.
    """


@hookspec(firstresult=True)
def followup_salutation(patient: PatientInfo, locale: str, age_bands: dict[str, int]) -> str | None:
    """How the coordinator addresses the patient, e.g. 王奶奶 / 李先生 / 小朋友 (first result wins).

    Core provides the default by age band and gender (``trylast``).
    """


@hookspec(firstresult=True)
def followup_script(
    context: TaskContext,
    milestone: Milestone,
    questions: list[Question],
    aftercare: list[str],
    salutation: str,
    locale: str,
    variables: dict[str, Any],
    render: Callable[[str, dict[str, Any]], str],
) -> str | None:
    """The call script of one task in one locale, as the coordinator will read it (first result wins).

    ``variables`` are the standard script variables core prepared (salutation,
    clinic, patient, procedure, milestone, days_since, doctor, questions,
    aftercare, failed_attempts...; see :func:`core.scripts.script_variables`).
    ``render(template_name, variables)`` renders a template through core's
    sandboxed Jinja environment (site folders, then plugin folders, then core;
    undefined variables are errors). Core's default renders ``milestone.script``.
    Return the text, or ``None``.
    """


@hookspec
def followup_questions(specialty: str, procedure: str, milestone: str) -> list[Question] | None:
    """The satisfaction and check-in questions of a task (collected, merged by key).

    Core contributes general questions (overall satisfaction, recommendation,
    staff praise, suggestions); a specialty adds its own; a chain plugin may
    redefine a key (the implementation called first wins). The milestone's
    ``questions`` list decides the specialty questions asked, in order, followed by
    core's general ones.
    """


@hookspec
def followup_actions(context: TaskContext, answers: dict[str, Any]) -> list[Action] | None:
    """What should happen after a reached call, from its answers (collected).

    Called after every reached call. Return :class:`core.Action` items:
    ``escalate`` (to the attending doctor), ``complaint`` (with a category),
    ``referral`` (invitation), ``extra_call`` (with ``after``), ``record_dates``.
    """


@hookspec
def followup_template_dirs() -> list[str] | None:
    """Folders holding this plugin's templates, each with one sub-folder per locale (collected)."""


@hookspec(firstresult=True)
def followup_calendar(country: str) -> Any:
    """A working-day calendar for a holiday country (first result wins).

    Return an object with ``is_working_day(date) -> bool`` and
    ``is_published(date) -> bool``; core's default covers CN and every country
    the ``holidays`` package knows.
    """


@hookspec
def followup_channels() -> list[type[Channel]]:
    """The message channels this plugin provides (collected).

    Return a list of :class:`core.channels.Channel` subclasses, each with a
    unique ``name`` (``sms``, ``wechat``, ``email``, ``file``...), its
    ``capabilities`` (the address it needs, length limit, links, provider
    templates, delivery reports), a pydantic ``Settings`` model for its part of
    the chain YAML (``channels:``) and ``send(message) -> Receipt``. A channel
    name provided by two plugins is an error naming both. See docs/channels.md.
    """
