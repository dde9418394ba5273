"""The base of every error a user may meet: the CLI prints its message, never a traceback."""

from __future__ import annotations


class FollowupError(Exception):
    """An error whose ``str()`` says what went wrong, where, and how to fix it."""
