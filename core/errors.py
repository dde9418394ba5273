"""The base of every error a user may meet: the CLI prints its message, never a traceback.

An error a coordinator meets in daily work names a message of the catalogue
(``core.messages``) with its values, so the CLI can print it in the
coordinator's language; ``str()`` stays the English text. Errors without a key
(configuration, plugins: read by administrators) are shown as ``str()``.
"""

from __future__ import annotations

from typing import Any


class _Catalogued:
    """Mixin: an optional catalogue key and values, rendered by :meth:`render`."""

    msg: Any = None

    def _text(self, text: str | None, key: str | None, values: dict[str, Any] | None) -> str | None:
        if key is None:
            return text
        from core.messages import Msg

        self.msg = Msg(key, **(values or {}))
        return text if text is not None else str(self.msg)

    def render(self, locale: str | None) -> str:
        """The message in ``locale`` when it has a catalogue key, else the English ``str()``."""
        return self.msg.render(locale) if self.msg is not None else str(self)

    @property
    def localized(self) -> bool:
        return self.msg is not None


class FollowupError(_Catalogued, Exception):
    """An error whose ``str()`` says what went wrong, where, and how to fix it.

    ``FollowupError("text")`` is English only; ``FollowupError(key="no_task", values={"id": 7})``
    is rendered from the catalogue in the reader's language (``str()`` is its English text).
    """

    def __init__(self, text: str | None = None, *, key: str | None = None,
                 values: dict[str, Any] | None = None) -> None:
        text = self._text(text, key, values)
        super().__init__(*(() if text is None else (text,)))


class InvalidValue(_Catalogued, ValueError):
    """A value a user typed (an answer, a cell) that does not fit; a ``ValueError`` for every caller."""

    def __init__(self, text: str | None = None, *, key: str | None = None,
                 values: dict[str, Any] | None = None) -> None:
        text = self._text(text, key, values)
        super().__init__(*(() if text is None else (text,)))


TEXT_LIMIT = 4000  # characters of one free-text value a user types (a note, a response, a reason)


def checked_text(option: str, text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """Free text from the command line, refused when longer than ``limit`` or holding a control character."""
    if text is None:
        return None
    if len(text) > limit:
        raise FollowupError(key="text_too_long", values={"option": option, "n": limit, "length": len(text)})
    if not text.isprintable() and any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f" for c in text):
        raise FollowupError(key="text_control_char", values={"option": option})
    return text
