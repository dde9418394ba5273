"""Constants that core builds without validating (``model_construct``) are what validation would give.

Validating them on import built a validator for each model in every command (core/general.py,
core/config.py, core/protocol.py, core/planner.py, core/content.py): these tests keep them honest.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from core.config import AttemptPolicy, _no_pydantic_plugins
from core.general import GENERAL_QUESTIONS, GENERAL_RULES, ON_REQUEST_QUESTIONS
from core.planner import EXTRA_CALL_WINDOW
from core.protocol import AftercarePoint


def validated(model: BaseModel) -> Any:
    return type(model).model_validate(model.model_dump())


@pytest.mark.parametrize("constant", [*GENERAL_QUESTIONS, *ON_REQUEST_QUESTIONS, *GENERAL_RULES],
                         ids=lambda c: getattr(c, "key", None) or c.when[0].question)
def test_general_questions_and_rules_are_valid(constant: BaseModel) -> None:
    again = validated(constant)
    assert again == constant
    assert again.model_dump() == constant.model_dump()


def test_defaults_built_without_validation_are_valid() -> None:
    policy = AttemptPolicy()
    assert validated(policy) == policy
    assert (policy.min_gap.amount, policy.min_gap.unit) == (2, "h")
    assert (policy.claim_hold.amount, policy.claim_hold.unit) == (30, "min")
    point = AftercarePoint.model_validate({"text": {"zh_CN": "冰敷", "en": "Ice"}})
    assert point.start == type(point.start).model_validate({"amount": 0, "unit": "d"})
    assert validated(EXTRA_CALL_WINDOW) == EXTRA_CALL_WINDOW


def test_a_changed_constant_would_be_caught() -> None:
    """The check above fails for a constant that validation would reject or change."""
    from pydantic import ValidationError

    broken = GENERAL_QUESTIONS[0].model_copy(update={"min": 9, "max": 1})
    with pytest.raises(ValidationError):
        validated(broken)


def test_pydantic_still_loads_its_plugins_when_one_is_installed(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Any) -> None:
    """Pydantic is spared its search for plugins only when none is installed."""
    from importlib import metadata

    from pydantic.plugin import _loader

    monkeypatch.setenv("FOLLOWUP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_loader, "_plugins", None)
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: ["a pydantic plugin"])
    _no_pydantic_plugins(["installed", 1])
    assert _loader._plugins is None  # left to pydantic, which loads the plugin
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [])
    _no_pydantic_plugins(["installed", 1])  # the cache still knows: one is installed
    assert _loader._plugins is None
    _no_pydantic_plugins(["installed", 2])  # another environment, without one
    assert _loader._plugins == {}


def test_the_shipped_specialties_are_what_validation_gives() -> None:
    """A protocol plugin's specialties and procedures are built from its validated protocol file."""
    from core.plugins import build_plugins

    specialties = build_plugins().specialties()
    assert {"dental", "aesthetic", "inpatient", "hair"} <= set(specialties)
    for _, spec in specialties.values():
        assert validated(spec) == spec
        assert spec.procedures and all(validated(proc) == proc for proc in spec.procedures)


def test_a_bulk_write_pauses_collection_and_gives_it_back_as_it_was() -> None:
    """Scheduling and a call history pause cyclic collection (core.db.uow.collection_paused): afterwards,
    also after an error, collection is on again if it was on, and stays off if it was off."""
    import gc

    from core.db.uow import collection_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with pytest.raises(RuntimeError), collection_paused():
            assert not gc.isenabled()
            raise RuntimeError("a bad row")
        assert gc.isenabled()
        gc.disable()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
