"""clinic-followup core: the public API plugins may import.

Plugins import only what this module exports; everything else in ``core`` is
internal and may change. Names are resolved lazily (PEP 562) so that
``followup --help`` does not pay for pydantic, SQLAlchemy or pluggy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ProtocolPlugin": "core.content",
    "hookimpl": "core.hookspecs",
    "hookspec": "core.hookspecs",
    "PluginError": "core.plugins",
    # names as a patient hears them: 欧阳 is one surname, a minor is reached through a guardian, 陈医生 / Dr Chen
    **{name: "core.names" for name in ("doctor_title", "salutation", "split_han_name")},
    **{
        name: "core.channels"
        for name in ("Capabilities", "Channel", "DeliveryReport", "Message", "ProviderTemplate", "Receipt",
                     "SignatureError")
    },
    **{
        name: "core.protocol"
        for name in (
            "Action", "Aftercare", "AftercarePoint", "Choice", "Condition", "Duration", "EpisodeAttribute",
            "LocalizedText", "Milestone", "PatientInfo", "Procedure", "Question", "Rule",
            "Specialty", "TaskContext", "Window",
        )
    },
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
